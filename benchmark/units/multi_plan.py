"""Planning multi-teacher transfer (docs/methods.md#multi-teacher): one student, an ordered teacher list, modes.

`make_multi_plan` returns plan rows (pairs.plan's columns, version 2): one unit per mode x method
x seed with `teachers` the comma-joined list, `teacher` its first entry and `mode` the mode, plus,
by default, the single-teacher units of the same method with every teacher (the baselines of the
multi-teacher table, and the ingredients of soups, which reuse them by key).
"""
import json

import numpy as np
import pandas as pd

from pairs.catalog import Zoo
from pairs.keys import unit_key
from pairs.plan import PLAN_COLUMNS, PlanError, make_plan
from results.errors import InputError

MODES = ("sequential", "sequential_desc", "parallel", "soup")
DP_METHODS = ("kl_dp", "kl_dp_unsup")
DEFAULT_MODES = ("sequential", "parallel", "soup")
# the methods each mode accepts (None: any single-teacher method)
MODE_METHODS = {"sequential": None, "sequential_desc": None, "parallel": DP_METHODS,
                "soup": DP_METHODS}


def check_mode(mode: str, method: str) -> None:
    if mode not in MODES:
        raise InputError(f"unknown multi-teacher mode {mode!r}; modes: {', '.join(MODES)}")
    allowed = MODE_METHODS[mode]
    if allowed is not None and method not in allowed:
        raise InputError(f"mode {mode!r} runs {' or '.join(allowed)}, not {method!r}")


def make_multi_plan(zoo: Zoo, student: str, teachers: list[str], modes=DEFAULT_MODES,
                    methods: dict[str, dict] | None = None, seeds=(0,), compat: str | None = None,
                    singles: bool = True) -> pd.DataFrame:
    """Multi-teacher units of `student` with `teachers` (in this order) for each mode.

    `methods` maps a method to its resolved parameters (default: kl_dp with the zoo's transfer
    defaults); parallel and soup take kl_dp / kl_dp_unsup only, sequential any method. With
    `singles`, the plan also holds each teacher's single-teacher unit of every method.
    """
    if methods is None:
        from benchmark.methods import resolve_params
        methods = {"kl_dp": resolve_params("kl_dp", zoo.transfer_defaults)}
    teachers = list(teachers)
    if len(teachers) < 2 or len(set(teachers)) != len(teachers):
        raise PlanError(f"a multi-teacher unit needs at least two distinct teachers, got {teachers}")
    if student in teachers:
        raise PlanError(f"student {student!r} is also among its teachers")
    if any("," in name for name in teachers):
        raise PlanError("teacher names must not contain ','")
    modes = list(dict.fromkeys(modes))
    seeds = list(dict.fromkeys(int(s) for s in seeds))
    if not modes or not methods or not seeds:
        raise PlanError("a multi-teacher plan needs at least one mode, one method and one seed")
    for mode in modes:
        for method in methods:
            try:
                check_mode(mode, method)
            except InputError as e:
                raise PlanError(str(e)) from None
    fingerprints = {name: zoo.get(name).fingerprint() for name in [student, *teachers]}
    rows = []
    for mode in modes:
        for method, params in methods.items():
            params_json = json.dumps(params, sort_keys=True)
            for seed in seeds:
                key = unit_key("transfer", compat=compat or "", dataset=zoo.dataset,
                               method=method, params=params_json, seed=seed,
                               student=fingerprints[student],
                               teachers=[fingerprints[t] for t in teachers], mode=mode)
                rows.append({"key": key, "zoo": zoo.name, "dataset": zoo.dataset,
                             "teacher": teachers[0], "student": student, "method": method,
                             "params": params_json, "seed": np.int64(seed),
                             "compat": compat or "", "teachers": ",".join(teachers),
                             "mode": mode})
    plans = [pd.DataFrame(rows)]
    if singles:
        plans.insert(0, make_plan(zoo, [(t, student) for t in teachers], methods, seeds, compat))
    return merge_plans(plans)


def merge_plans(plans) -> pd.DataFrame:
    """One plan from several (same zoo): rows by key once, the plan id over all keys."""
    plan = pd.concat([p.drop(columns="plan", errors="ignore") for p in plans],
                     ignore_index=True).drop_duplicates("key").reset_index(drop=True)
    if plan["zoo"].nunique() != 1:
        raise PlanError(f"a plan must use one zoo, got {', '.join(plan['zoo'].unique())}")
    plan.insert(0, "plan", unit_key("plan", keys=sorted(plan["key"])))
    plan["seed"] = plan["seed"].astype(np.int64)
    return plan[PLAN_COLUMNS]


def parse_multi(spec: str) -> tuple[str, list[str]]:
    """`STUDENT:T1,T2,T3` -> (student, [T1, T2, T3])."""
    student, sep, teachers = spec.partition(":")
    names = [t.strip() for t in teachers.split(",") if t.strip()]
    if not sep or not student.strip() or not names:
        raise PlanError(f"--multi takes STUDENT:TEACHER1,TEACHER2,..., got {spec!r}")
    return student.strip(), names
