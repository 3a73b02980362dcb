"""Atomic Parquet part files and DuckDB views over them.

A table is a folder of part files named by the key of the unit that wrote them (and, once
compacted, of a few large files holding many parts' rows: `results.compact`). A part is written
to a hidden temporary file in the same folder and renamed into place, so a killed writer never
leaves a half file where the `*.parquet` glob can see it, and a unit that runs twice replaces its
own part instead of adding a second one.

Light at import: pandas appears in annotations only (DuckDB and pyarrow convert to it and import
it themselves), so reading through Arrow (`ktbench query`) never loads it.
"""
from __future__ import annotations

import contextlib
import os
import re
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from results.errors import InputError
from results.layout import ResultsLayout
from results.schema import COMPACTED_PREFIX, TABLES
from results.views import GUARD, parts_variable, render_view, tables_in

if TYPE_CHECKING:
    import pandas as pd

_PART_NAME = re.compile(r"^[A-Za-z0-9_.=-]+$")


def default_results_dir() -> Path:
    return Path(os.environ.get("KTBENCH_RESULTS", "ktbench-results"))


def table_dir(results_dir, table: str) -> Path:
    return ResultsLayout(results_dir).table(table)


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


# A part of a few rows (a unit's run row, its epochs) is read once per reader until compacted:
# its footer is most of its cost, so it carries no Arrow schema (the Parquet types give the same
# one back), no statistics, no dictionary and no compression (0.3 instead of 0.5 ms per part
# for DuckDB on 10^5 parts).
SMALL_PART_ROWS = 1000
SMALL_PART = dict(store_schema=False, write_statistics=False, use_dictionary=False,
                  compression="none")


def write_part(results_dir, table: str, df: pd.DataFrame | pa.Table, part: str) -> Path:
    """Write `df` (pandas, or Arrow) as part `part` of `table`, atomically; columns must match
    the table schema."""
    if not _PART_NAME.match(part) or part.startswith(COMPACTED_PREFIX):
        raise ValueError(f"part name {part!r} must be letters, digits, '_', '.', '=' or '-', "
                         f"not starting with {COMPACTED_PREFIX!r}")
    schema = TABLES[table]
    columns = df.column_names if isinstance(df, pa.Table) else df.columns
    missing = set(schema.names) - set(columns)
    extra = set(columns) - set(schema.names)
    if missing or extra:
        raise ValueError(f"{table}: columns missing {sorted(missing)}, unexpected {sorted(extra)}")
    if isinstance(df, pa.Table):
        arrow = df.select(schema.names).cast(schema)
    else:
        arrow = pa.Table.from_pandas(df[schema.names], schema=schema, preserve_index=False)
    final = table_dir(results_dir, table) / f"{part}.parquet"
    with atomic_path(final) as tmp, open(tmp, "wb") as f:
        pq.write_table(arrow, f, **(SMALL_PART if arrow.num_rows <= SMALL_PART_ROWS else {}))
    return final


def read_table(results_dir, table: str, columns: list[str] | None = None) -> pd.DataFrame:
    """The whole table (or these columns of it) as pandas, one row per natural key (see
    `connect`)."""
    selected = ", ".join(f'"{c}"' for c in columns) if columns else "*"
    return query(results_dir, f'SELECT {selected} FROM "{table}"', tables=[table])


def query(results_dir, sql: str, params=None, tables=None) -> pd.DataFrame:
    """The result of `sql` over the views of `tables` (default: the tables it names), as
    pandas (see `read_views`)."""
    return read_views(results_dir, lambda con: con.execute(sql, params or []).df(),
                      tables_in(sql) if tables is None else tables)


class MixedSchemas(Exception):
    """A table's files do not all have every column: read them by name."""


def read_views(results_dir, read: Callable, tables=None, connect_views: Callable | None = None,
               attempts: int = 5):
    """`read(con)` over a fresh connection with the views of `tables` (`connect`, or
    `connect_views(results_dir, tables, union)`). The views first read each table's files as
    one schema (`union=False`: cheap on many parts), then, if a file lacks a column (or the
    read fails for any other reason), by name. A view lists its files when it is bound: a file
    that a compaction removed since makes the read fail, and it simply runs again on a fresh
    listing."""
    union = False
    for attempt in range(attempts):
        con = None
        try:
            con = (connect_views or connect)(results_dir, tables, union)
            return read(con)
        except (duckdb.IOException, FileNotFoundError):
            if attempt == attempts - 1:
                raise
        except (duckdb.Error, MixedSchemas):
            if union:
                raise
            union = True
        finally:
            if con is not None:
                con.close()


def connect(results_dir, tables=None, union: bool = True) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with one view per table over the results folder (or only the views of
    `tables`: a view lists and binds its table's files, which costs time on a folder of many
    parts, so bind those a statement reads; `results.views.tables_in(sql)` names them).

    The views are those of `results/views.sql` (rendered from the schema; the same file serves
    the duckdb CLI). Each keeps one row per natural key (`TABLE_KEYS`): a part rewritten by a
    relaunch or written twice by racing jobs counts once, and a part beats the compacted copy of
    its key. A table with no files yet is an empty view with the right columns, so SQL over a
    fresh folder runs and returns nothing.

    `union=False` reads each table's files as one schema (`results.views.rows_sql`); it raises
    MixedSchemas when a table's first file lacks a column, and a read fails when another does
    (`read_views` then reads by name).
    """
    names = list(TABLES) if tables is None else list(dict.fromkeys(tables))
    for table in names:
        table_dir(results_dir, table)          # an unknown table is an InputError
    con = duckdb.connect(":memory:")
    try:
        con.execute("SET enable_progress_bar = false")
        con.execute("SET VARIABLE results = ?", [str(results_dir)])
        con.execute(GUARD + "".join(render_view(t, union) for t in names))
        if not union:
            for table in names:
                first = con.execute(
                    f"SELECT getvariable('{parts_variable(table)}')[1]").fetchone()[0]
                if first and set(TABLES[table].names) - set(_columns_of(first)):
                    raise MixedSchemas(f"{first} lacks columns of {table}")
    except BaseException:
        con.close()
        raise
    return con


# a view over more parts than this (files not compacted yet) is copied into memory by
# `copy_many_parts`
COPY_MIN_PARTS = 256


def copy_many_parts(con: duckdb.DuckDBPyConnection, tables) -> list[str]:
    """Copy into `con`'s memory each view of `tables` (bound by `connect`) that lists more than
    `COPY_MIN_PARTS` parts, and point the view at its copy; returns the tables copied. A caller
    that runs many statements over a folder not compacted yet (`ktbench tables`: 24) then
    reads each part once instead of once per statement; compacted tables stay as they are."""
    copied = []
    for table in tables:
        parts = con.execute(f"""SELECT len(list_filter(getvariable('{parts_variable(table)}'),
            lambda f: NOT starts_with(parse_filename(f), '{COMPACTED_PREFIX}')))""").fetchone()[0]
        if parts > COPY_MIN_PARTS:
            con.execute(f'CREATE TEMP TABLE "kt_copy_{table}" AS SELECT * FROM "{table}"')
            con.execute(f'CREATE OR REPLACE VIEW "{table}" AS SELECT * FROM "kt_copy_{table}"')
            copied.append(table)
    return copied


def _columns_of(path: str) -> list[str]:
    try:
        return pq.read_schema(path).names
    except FileNotFoundError:
        raise
    except Exception:      # unreadable: the read by name reports it as DuckDB does
        return []


def predict_keys(results_dir, dataset: str, models: list[str]) -> list[str | None]:
    """The key of each model's `models` row on `dataset` (of the predictions that
    `predictions_matrix` reads), in `models` order; None for a model without one."""
    rows = query(results_dir, "SELECT model, key FROM models WHERE dataset = ? AND "
                              "list_contains(?, model)", [dataset, list(models)])
    keys = dict(zip(rows["model"], rows["key"]))
    return [keys.get(name) for name in models]


def predictions_matrix(results_dir, dataset: str, models: list[str]):
    """Cached predictions as arrays: (labels [N], preds [M, N], p_max [M, N]), rows in `models` order.

    Raises InputError naming the models whose predictions are missing.
    """
    # the filter on the view's partition columns reaches the Parquet scan (row groups of other
    # models are skipped)
    df = query(results_dir,
               "SELECT list_position($models, model) - 1 AS row, sample, label, pred, p_max "
               "FROM predictions WHERE dataset = $dataset AND list_contains($models, model) "
               "ORDER BY row, sample", {"models": list(models), "dataset": dataset})
    missing = sorted(set(models) - set(models[i] for i in df["row"].unique()))
    if missing:
        raise InputError(f"no predictions on {dataset!r} for {', '.join(missing)}; "
                         "run predict first")
    n = len(df) // len(models)
    labels = df["label"].to_numpy()[:n]
    return (labels, df["pred"].to_numpy().reshape(len(models), n),
            df["p_max"].to_numpy().reshape(len(models), n))
