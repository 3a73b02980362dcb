"""Plans: the (teacher, student, method, params, seed) rows a launch runs, as Parquet.

Each row is one transfer unit with its deterministic key. Method parameters arrive already
resolved (defaults included), so the key changes whenever anything that changes a result does.
"""
import json
import os
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pairs.catalog import Zoo
from pairs.keys import unit_key

PLAN_VERSION = "1"
PLAN_COLUMNS = ["plan", "key", "zoo", "dataset", "teacher", "student", "method", "params",
                "seed", "compat"]


class PlanError(ValueError):
    """A plan that cannot be run: missing, empty, malformed or from another schema version."""


def all_pairs(names: list[str]) -> list[tuple[str, str]]:
    return [(t, s) for t in names for s in names if t != s]


def random_pairs(names: list[str], n: int, seed: int) -> list[tuple[str, str]]:
    """`n` distinct ordered pairs drawn uniformly without replacement, reproducible from `seed`."""
    m = len(names)
    total = m * (m - 1)
    if not 0 < n <= total:
        raise ValueError(f"--pairs must be between 1 and {total} for {m} models, got {n}")
    flat = np.random.default_rng(seed).choice(total, size=n, replace=False)
    teacher, offset = np.divmod(flat, m - 1)
    student = offset + (offset >= teacher)      # skip the diagonal
    return [(names[t], names[s]) for t, s in zip(teacher, student)]


def make_plan(zoo: Zoo, pairs: list[tuple[str, str]], methods: dict[str, dict],
              seeds: list[int], compat: str | None = None) -> pd.DataFrame:
    """Pairs x methods x seeds. `methods` maps a method name to its resolved parameters."""
    if not pairs or not methods or not seeds:
        raise PlanError("a plan needs at least one pair, one method and one seed")
    fingerprints = {m.name: m.fingerprint() for m in zoo.models}
    for name in {n for pair in pairs for n in pair} - set(fingerprints):
        zoo.get(name)   # raises the unknown-model error
    rows = []
    for teacher, student in pairs:
        for method, params in methods.items():
            params_json = json.dumps(params, sort_keys=True)
            for seed in seeds:
                key = unit_key("transfer", teacher=fingerprints[teacher],
                               student=fingerprints[student], dataset=zoo.dataset,
                               method=method, params=params_json, seed=seed, compat=compat or "")
                rows.append((key, zoo.name, zoo.dataset, teacher, student, method, params_json,
                             seed, compat or ""))
    df = pd.DataFrame(rows, columns=PLAN_COLUMNS[1:]).drop_duplicates("key")
    df.insert(0, "plan", unit_key("plan", keys=sorted(df["key"])))
    return df.reset_index(drop=True)


def write_plan(plan: pd.DataFrame, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(plan[PLAN_COLUMNS], preserve_index=False)
    table = table.replace_schema_metadata({b"ktbench_plan_version": PLAN_VERSION.encode()})
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
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
    if version != PLAN_VERSION:
        raise PlanError(f"plan {path} has schema version {version or 'none'}, this ktbench "
                        f"reads version {PLAN_VERSION}; re-create it with `ktbench plan`")
    plan = table.to_pandas()
    if missing := set(PLAN_COLUMNS) - set(plan.columns):
        raise PlanError(f"plan {path} lacks columns {sorted(missing)}")
    if plan.empty:
        raise PlanError(f"plan {path} is empty")
    return plan
