"""Planning multi-teacher transfer (docs/methods.md#multi-teacher): one student, an ordered teacher
list, modes.

`make_multi_plan` returns plan rows (`pairs.plan.PLAN_COLUMNS`, version 2): one unit per mode x
method x seed with `teachers` the comma-joined list, `teacher` its first entry and `mode` the
mode, plus, by default, the single-teacher units of the same method with every teacher (the
baselines of the multi-teacher table, and the ingredients of soups, which reuse them by key).

Which methods a mode runs depends on a property of the method (whether it partitions the data
per sample between its sources); methods live in `benchmark.methods`, so the caller names the
partitioning ones (`benchmark.methods.partition_methods()`).
"""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Collection

import numpy as np

from pairs.catalog import Zoo
from pairs.keys import unit_key
from pairs.plan import PLAN_COLUMNS, PlanError, decodes, make_plan, transfer_keys

if TYPE_CHECKING:
    import pandas as pd

MODES = ("sequential", "sequential_desc", "parallel", "soup")
DEFAULT_MODES = ("sequential", "parallel", "soup")
# the modes that distil each sample from one chosen source: they run partitioning methods only
PARTITION_MODES = ("parallel", "soup")


def check_mode(mode: str, method: str, partition_methods: Collection[str]) -> None:
    """PlanError unless `mode` is a mode that runs `method` (`partition_methods`: the methods
    that partition the data per sample)."""
    if mode not in MODES:
        raise PlanError(f"unknown multi-teacher mode {mode!r}; modes: {', '.join(MODES)}")
    if mode in PARTITION_MODES and method not in partition_methods:
        raise PlanError(f"mode {mode!r} runs {' or '.join(sorted(partition_methods))}, "
                        f"not {method!r}")


def make_multi_plan(zoo: Zoo, student: str, teachers: list[str], modes: Collection[str],
                    methods: dict[str, dict], seeds=(0,), compat: str | None = None,
                    singles: bool = True, *, partition_methods: Collection[str]
                    ) -> pd.DataFrame:
    """Multi-teacher units of `student` with `teachers` (in this order) for each mode.

    `methods` maps a method to its resolved parameters; parallel and soup take the
    `partition_methods` only, sequential any method. With `singles`, the plan also holds each
    teacher's single-teacher unit of every method.
    """
    import pandas as pd
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
            check_mode(mode, method, partition_methods)
    fingerprints = {name: zoo.get(name).fingerprint() for name in [student, *teachers]}
    params_json = [json.dumps(params, sort_keys=True) for params in methods.values()]
    # rows in the order mode, then method, then seed
    method_idx = np.repeat(np.arange(len(methods)), len(seeds))
    seed_col = np.tile(np.asarray(seeds, dtype=np.int64), len(methods))
    plans = [pd.DataFrame({
        "key": transfer_keys([teachers] * len(seed_col), [student] * len(seed_col),
                             fingerprints, zoo.dataset, list(methods), params_json, method_idx,
                             seed_col, compat or "", mode=mode,
                             student_decodes=decodes(zoo, [student])),
        "zoo": zoo.name, "dataset": zoo.dataset, "teacher": teachers[0], "student": student,
        "method": np.asarray(list(methods), dtype=object)[method_idx],
        "params": np.asarray(params_json, dtype=object)[method_idx], "seed": seed_col,
        "compat": compat or "", "teachers": ",".join(teachers), "mode": mode})
        for mode in modes]
    if singles:
        plans.insert(0, make_plan(zoo, [(t, student) for t in teachers], methods, seeds, compat))
    return merge_plans(plans)


def merge_plans(plans) -> pd.DataFrame:
    """One plan from several (same zoo): rows by key once, the plan id over all keys."""
    import pandas as pd
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
