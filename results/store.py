"""Atomic Parquet part files and DuckDB views over them.

A table is a folder of part files named by the key of the unit that wrote them. A part is
written to a hidden temporary file in the same folder and renamed into place, so a killed writer
never leaves a half file where the `*.parquet` glob can see it, and a unit that runs twice
replaces its own part instead of adding a second one.
"""
import contextlib
import os
import re
import uuid
from pathlib import Path
from typing import Iterator

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from results.schema import TABLES
from results.views import VIEWS_SQL

_PART_NAME = re.compile(r"^[A-Za-z0-9_.=-]+$")


def default_results_dir() -> Path:
    return Path(os.environ.get("KTBENCH_RESULTS", "ktbench-results"))


def table_dir(results_dir, table: str) -> Path:
    if table not in TABLES:
        raise KeyError(f"unknown table {table!r}; tables: {', '.join(TABLES)}")
    return Path(results_dir) / table


@contextlib.contextmanager
def atomic_path(final, suffix: str = "") -> Iterator[Path]:
    """Write `final` atomically: the block writes the path it is given, a hidden temporary file
    beside `final` (`.<name>.<pid>.<random>.tmp<suffix>`); when the block succeeds the file is
    synced to disk and renamed onto `final`, so a reader sees the old file or the whole new one,
    never half of it; when it fails, the temporary file is removed."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp{suffix}")
    try:
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)


def write_part(results_dir, table: str, df: pd.DataFrame, part: str) -> Path:
    """Write `df` as part `part` of `table`, atomically; columns must match the table schema."""
    if not _PART_NAME.match(part):
        raise ValueError(f"part name {part!r} must be letters, digits, '_', '.', '=' or '-'")
    schema = TABLES[table]
    missing = set(schema.names) - set(df.columns)
    extra = set(df.columns) - set(schema.names)
    if missing or extra:
        raise ValueError(f"{table}: columns missing {sorted(missing)}, unexpected {sorted(extra)}")
    arrow = pa.Table.from_pandas(df[schema.names], schema=schema, preserve_index=False)
    final = table_dir(results_dir, table) / f"{part}.parquet"
    with atomic_path(final) as tmp, open(tmp, "wb") as f:
        pq.write_table(arrow, f)
    return final


def read_table(results_dir, table: str) -> pd.DataFrame:
    """The whole table as pandas, one row per natural key (see `connect`)."""
    con = connect(results_dir)
    try:
        return con.execute(f'SELECT * FROM "{table}"').df()
    finally:
        con.close()


def connect(results_dir) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with one view per table over the results folder.

    The views are those of `results/views.sql` (rendered from the schema; the same file serves
    the duckdb CLI). Each keeps one row per natural key (`TABLE_KEYS`): a part rewritten by a
    relaunch or written twice by racing jobs counts once. A table with no parts yet is an empty
    view with the right columns, so SQL over a fresh folder runs and returns nothing.
    """
    con = duckdb.connect(":memory:")
    con.execute("SET VARIABLE results = ?", [str(results_dir)])
    con.execute(VIEWS_SQL.read_text())
    return con


def predictions_matrix(results_dir, dataset: str, models: list[str]):
    """Cached predictions as arrays: (labels [N], preds [M, N], p_max [M, N]), rows in `models` order.

    Raises KeyError naming the models whose predictions are missing.
    """
    con = connect(results_dir)
    try:
        con.register("_wanted", pd.DataFrame({"model": models, "row": range(len(models))}))
        df = con.execute(
            "SELECT w.row, p.sample, p.label, p.pred, p.p_max FROM predictions p "
            "JOIN _wanted w USING (model) WHERE p.dataset = ? ORDER BY w.row, p.sample",
            [dataset]).df()
    finally:
        con.close()
    missing = sorted(set(models) - set(models[i] for i in df["row"].unique()))
    if missing:
        raise KeyError(f"no predictions on {dataset!r} for {', '.join(missing)}; run predict first")
    n = len(df) // len(models)
    labels = df["label"].to_numpy()[:n]
    return (labels, df["pred"].to_numpy().reshape(len(models), n),
            df["p_max"].to_numpy().reshape(len(models), n))
