"""Plans: the (teacher, student, method, params, seed) rows a launch runs, as Parquet.

Each row is one transfer unit with its deterministic key (`transfer_keys`, the one recipe of a
transfer key). Method parameters arrive already resolved (defaults included), so the key changes
whenever anything that changes a result does. A `Plan` holds the rows and what a launch, its
status and a dry run work out of them (zoo, pairs, kept students), each once.

Light at import (the command line takes `KEEP_STUDENTS` from here): pandas loads when a plan is
made or split.
"""
from __future__ import annotations

import hashlib
import json
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pairs.catalog import ModelEntry, Zoo, get_zoo, preprocessing_fields
from pairs.keys import unit_key
from results.errors import InputError
from results.store import atomic_path

if TYPE_CHECKING:
    import pandas as pd

# version 2 added `teachers` (comma-joined, ordered; == teacher for a single-teacher unit) and
# `mode` ('' for single-teacher units; sequential, sequential_desc, parallel or soup, see
# pairs/multi.py). Version 1 plans are still read, as single-teacher units.
PLAN_VERSION = "2"
READABLE_PLAN_VERSIONS = ("1", PLAN_VERSION)
PLAN_COLUMNS = ["plan", "key", "zoo", "dataset", "teacher", "student", "method", "params",
                "seed", "compat", "teachers", "mode"]
# which transfer units keep their final student (results/students/<key>.safetensors):
# none, the ingredients of the plan's soups, or every single-teacher unit
KEEP_STUDENTS = ("none", "soup", "all")


class PlanError(InputError):
    """A plan that cannot be run: missing, empty, malformed or from another schema version."""


def predict_key(entry: ModelEntry, dataset: str) -> str:
    """The key of a model's predict unit on a dataset (its `models` row marks it done)."""
    return unit_key("predict", model=entry.fingerprint(), dataset=dataset,
                    **preprocessing_fields(entry, dataset))


def decodes(zoo: Zoo, names) -> dict[str, str]:
    """model name -> what a key records of the decode it is fed on the zoo's dataset, for the
    `names` fed one of their own (`pairs.catalog.preprocessing_fields`)."""
    fields = {name: preprocessing_fields(zoo.get(name), zoo.dataset) for name in names}
    return {name: f["preprocessing"] for name, f in fields.items() if f}


def all_pairs(names: list[str]) -> list[tuple[str, str]]:
    return [(t, s) for t in names for s in names if t != s]


def random_pairs(names: list[str], n: int, seed: int) -> list[tuple[str, str]]:
    """`n` distinct ordered pairs drawn uniformly without replacement, reproducible from `seed`."""
    m = len(names)
    total = m * (m - 1)
    if not 0 < n <= total:
        raise InputError(f"--pairs must be between 1 and {total} for {m} models, got {n}")
    flat = np.random.default_rng(seed).choice(total, size=n, replace=False)
    teacher, offset = np.divmod(flat, m - 1)
    student = offset + (offset >= teacher)      # skip the diagonal
    return [(names[t], names[s]) for t, s in zip(teacher, student)]


def make_plan(zoo: Zoo, pairs, methods: dict[str, dict], seeds: list[int],
              compat: str | None = None) -> pd.DataFrame:
    """Pairs x methods x seeds. `pairs` is a sequence of (teacher, student) names (or a
    two-column array); `methods` maps a method name to its resolved parameters.

    Vectorised: 100,000 pairs take well under a second (tests/test_bench_planner.py).
    """
    import pandas as pd
    # a pair or seed listed twice plans its units once
    pairs = pd.DataFrame(np.asarray(pairs, dtype=object).reshape(-1, 2)).drop_duplicates()
    pairs = pairs.to_numpy(dtype=object)
    seeds = list(dict.fromkeys(int(s) for s in seeds))
    if not len(pairs) or not methods or not seeds:
        raise PlanError("a plan needs at least one pair, one method and one seed")
    used = set(pairs.ravel())
    fingerprints = {m.name: m.fingerprint() for m in zoo.models if m.name in used}
    for name in sorted(used - set(fingerprints)):
        zoo.get(name)   # raises the unknown-model error
    n_pairs, n_methods, n_seeds = len(pairs), len(methods), len(seeds)
    params_json = [json.dumps(p, sort_keys=True) for p in methods.values()]
    # rows in the order pair, then method, then seed
    method_idx = np.tile(np.repeat(np.arange(n_methods), n_seeds), n_pairs)
    seed_col = np.tile(np.asarray(seeds, dtype=np.int64), n_pairs * n_methods)
    teacher = np.repeat(pairs[:, 0], n_methods * n_seeds)
    student = np.repeat(pairs[:, 1], n_methods * n_seeds)
    keys = transfer_keys(teacher, student, fingerprints, zoo.dataset, list(methods),
                         params_json, method_idx, seed_col, compat or "",
                         student_decodes=decodes(zoo, set(pairs[:, 1])))
    return pd.DataFrame({
        "plan": unit_key("plan", keys=sorted(keys)), "key": keys, "zoo": zoo.name,
        "dataset": zoo.dataset, "teacher": teacher, "student": student,
        "method": np.asarray(list(methods), dtype=object)[method_idx],
        "params": np.asarray(params_json, dtype=object)[method_idx],
        "seed": seed_col, "compat": compat or "", "teachers": teacher, "mode": "",
    })


def transfer_keys(teacher, student, fingerprints, dataset, method_names, params_json,
                  method_idx, seeds, compat, mode: str = "",
                  student_decodes: dict[str, str] | None = None) -> list[str]:
    """The key of every transfer unit, one per row: `unit_key("transfer", ...)` of its compat,
    dataset, method, params (the JSON text), seed, student and teacher fingerprints; a
    multi-teacher unit (`mode` given) names its `mode` and its ordered `teachers` (each row's
    `teacher` a list of names) instead of one `teacher`; a student in `student_decodes`
    (`decodes`: a run is fed its student's decode) adds it as `preprocessing`.

    Built as one string per row, exactly the JSON `unit_key` hashes (sorted keys, compact
    separators): the parts shared by many rows are encoded once, so a row costs a concatenation
    and a hash.
    """
    dumps = json.dumps
    fp_json = {name: dumps(fp) for name, fp in fingerprints.items()}
    mode_field = f'"mode":{dumps(mode)},' if mode else ""
    heads = [f'{{"compat":{dumps(compat)},"dataset":{dumps(dataset)},"method":{dumps(m)},'
             f'{mode_field}"params":{dumps(p)},' for m, p in zip(method_names, params_json)]
    decode_fields = {name: f'"preprocessing":{dumps(key)},'
                     for name, key in (student_decodes or {}).items()}
    if mode:
        teacher_fields = [f'"teachers":[{",".join(fp_json[t] for t in ts)}]' for ts in teacher]
    else:
        teacher_fields = [f'"teacher":{fp_json[t]}' for t in teacher]
    blobs = [f'{heads[m]}{decode_fields.get(st, "")}"seed":{s},"student":{fp_json[st]},{t}}}'
             for t, st, m, s in
             zip(teacher_fields, student, np.asarray(method_idx).tolist(),
                 np.asarray(seeds).tolist())]
    sha = hashlib.sha256
    return ["transfer-" + sha(b.encode()).hexdigest()[:16] for b in blobs]


def write_plan(plan: pd.DataFrame, path) -> Path:
    path = Path(path)
    table = pa.Table.from_pandas(plan[PLAN_COLUMNS], preserve_index=False)
    table = table.replace_schema_metadata({b"ktbench_plan_version": PLAN_VERSION.encode()})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    return path


def read_plan(path) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise PlanError(f"plan {path} does not exist; write one with `ktbench plan`")
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as e:
        raise PlanError(f"plan {path} is not a readable Parquet file ({e})") from None
    version = (table.schema.metadata or {}).get(b"ktbench_plan_version", b"").decode()
    if version not in READABLE_PLAN_VERSIONS:
        raise PlanError(f"plan {path} has schema version {version or 'none'}, this ktbench "
                        f"reads versions {', '.join(READABLE_PLAN_VERSIONS)}; re-create it "
                        "with `ktbench plan`")
    plan = table.to_pandas()
    if version == "1":     # single-teacher units only
        plan = plan.assign(teachers=plan["teacher"], mode="")
    if missing := set(PLAN_COLUMNS) - set(plan.columns):
        raise PlanError(f"plan {path} lacks columns {sorted(missing)}")
    if plan.empty:
        raise PlanError(f"plan {path} is empty")
    return plan


def soup_singles(zoo: Zoo, soup) -> pd.DataFrame:
    """The single-teacher units a soup unit averages: the same student, method, params, seed
    and compat, one per teacher of its list, with the keys a plan gives them (so a plan's own
    runs are reused). `soup`: a plan row with the plan's columns as attributes."""
    teachers = [t for t in str(soup.teachers).split(",") if t]
    return make_plan(zoo, [(t, soup.student) for t in teachers],
                     {soup.method: json.loads(soup.params)}, [int(soup.seed)],
                     soup.compat or None)


class Plan:
    """A plan's rows (`PLAN_COLUMNS`, one per transfer unit) and what is worked out of them, each
    at most once however many rooms ask: its zoo, its (teacher, student, compat) pairs and
    models, its soups' ingredients and the students it keeps."""

    def __init__(self, rows: pd.DataFrame):
        self.rows = rows

    @classmethod
    def of(cls, plan: Plan | pd.DataFrame) -> Plan:
        """`plan` itself, or its rows as a Plan."""
        return plan if isinstance(plan, Plan) else cls(plan)

    def __len__(self) -> int:
        return len(self.rows)

    @cached_property
    def zoo(self) -> Zoo:
        """The plan's one zoo, as it reads now (a zoo whose dataset moved since is refused)."""
        zoos = self.rows["zoo"].unique()
        if len(zoos) != 1:
            raise PlanError(f"a plan must use one zoo, this one uses {', '.join(zoos)}")
        zoo = get_zoo(zoos[0])
        if other := sorted(set(self.rows["dataset"]) - {zoo.dataset}):
            raise PlanError(f"the plan is for dataset {other[0]!r}, zoo {zoo.name!r} now reads "
                            f"{zoo.dataset!r} (its environment changed since the plan was made?)")
        return zoo

    @property
    def dataset(self) -> str:
        return self.zoo.dataset

    @cached_property
    def pairs(self) -> pd.DataFrame:
        """Distinct (teacher, student, compat), one per teacher of each unit's `teachers` list
        (multi-teacher units need every teacher's predictions and pair statistics)."""
        import pandas as pd
        plan = self.rows
        multi = plan["teachers"].str.contains(",", regex=False)   # the few worth splitting
        many = plan.loc[multi, ["student", "compat"]].assign(
            teacher=plan.loc[multi, "teachers"].str.split(",")).explode("teacher")
        pairs = pd.concat([plan.loc[~multi, ["teacher", "student", "compat"]], many])
        return pairs[["teacher", "student", "compat"]].drop_duplicates().reset_index(drop=True)

    @cached_property
    def models(self) -> list[str]:
        """Every model a pair of the plan names, sorted."""
        return sorted(set(self.pairs["teacher"]) | set(self.pairs["student"]))

    @cached_property
    def soup_ingredients(self) -> pd.DataFrame:
        """The single-teacher units whose students the plan's soups average, one row each (a
        soup runs those missing from the plan itself, keeping their students)."""
        import pandas as pd
        soups = list(self.rows[self.rows["mode"] == "soup"].itertuples(index=False))
        if not soups:
            return pd.DataFrame(columns=PLAN_COLUMNS)
        return pd.concat([soup_singles(self.zoo, soup) for soup in soups]).drop_duplicates("key")

    def kept_students(self, policy: str = "soup") -> set[str]:
        """Keys of the plan's units that keep their final student under `policy`
        (KEEP_STUDENTS)."""
        if policy not in KEEP_STUDENTS:
            raise InputError(f"--keep-students must be one of {', '.join(KEEP_STUDENTS)}, "
                             f"got {policy!r}")
        if policy == "none":
            return set()
        if policy == "all":
            return set(self.rows.loc[self.rows["mode"] == "", "key"])
        return set(self.soup_ingredients["key"]) & set(self.rows["key"])
