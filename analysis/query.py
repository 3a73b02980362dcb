"""Ad-hoc SQL over the results, read-only: `ktbench query "SQL"`.

Two locks. The statement must be one read statement (SELECT, WITH ... SELECT, FROM-first, VALUES,
PIVOT/UNPIVOT, DESCRIBE, SHOW, SUMMARIZE, EXPLAIN); anything else (COPY, ATTACH, INSTALL, LOAD,
CREATE, INSERT, UPDATE, DELETE, EXPORT, SET, PRAGMA, CALL, several statements) is refused before
it runs. And the connection itself, once the views exist, may read files only under the results
folder, cannot install or load extensions, and cannot change its configuration back.

Light at import (DuckDB and pyarrow): `run_query_arrow` and `write_result` of its Arrow table
never load pandas (`ktbench query`); `run_query` returns pandas.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from analysis.formatting import format_table
from analysis.views import bind_views, tables_in
from results import connect
from results.errors import InputError
from results.store import read_views

if TYPE_CHECKING:
    import pandas as pd

_READ = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}
_OUTPUTS = (".csv", ".parquet", ".md", ".tex")


class QueryError(InputError):
    """A statement that is not one read statement, or SQL that DuckDB rejects: exit code 2."""


def _first_word(sql: str) -> str:
    text = re.sub(r"--[^\n]*|/\*.*?\*/", " ", sql, flags=re.S).lstrip(" \t\r\n(")
    match = re.match(r"[A-Za-z_]+", text)
    return match.group(0).upper() if match else ""


def check_read_only(sql: str) -> None:
    """Raise QueryError unless `sql` is exactly one read statement."""
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as e:
        raise QueryError(_one_line(e)) from None
    if len(statements) != 1:
        raise QueryError(f"give exactly one SELECT statement, not {len(statements)}")
    kind = statements[0].type
    # DuckDB parses a PIVOT whose columns come from the data as several statements (MULTI).
    if kind in _READ or (kind == duckdb.StatementType.MULTI and _first_word(sql) == "PIVOT"):
        return
    name = getattr(kind, "name", str(kind))
    raise QueryError(f"only read statements (SELECT, WITH, PIVOT, DESCRIBE, ...) are allowed; "
                     f"this is {name} ({_first_word(sql) or '?'})")


def connect_read_only(results_dir, tables=None, union: bool = True) -> duckdb.DuckDBPyConnection:
    """`results.connect` (the views of `tables`, default all) and the analysis views over them
    (`runs`, `single_runs`: `analysis.views`), then locked: file access only under the folder,
    no extensions, no SET."""
    folder = Path(results_dir).resolve()
    con = connect(folder, tables, union)
    bind_views(con)
    con.execute("SET autoinstall_known_extensions = false")
    con.execute("SET autoload_known_extensions = false")
    con.execute("SET allowed_directories = ?", [[str(folder) + "/"]])
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


def _one_line(error) -> str:
    lines = [ln.strip() for ln in str(error).splitlines() if ln.strip()]
    return lines[0] if lines else type(error).__name__


def _read(results_dir, sql: str, fetch: Callable):
    """`fetch(con)` over the results views, once `sql` proved one read statement."""
    check_read_only(sql)
    try:
        return read_views(results_dir, fetch, tables_in(sql), connect_read_only)
    except duckdb.Error as e:
        raise QueryError(_one_line(e)) from None


def run_query(results_dir, sql: str) -> pd.DataFrame:
    """The result of one read statement over the results views, as pandas."""
    return _read(results_dir, sql, lambda con: con.execute(sql).df())


def run_query_arrow(results_dir, sql: str) -> pa.Table:
    """`run_query`'s result as an Arrow table, without pandas."""
    return _read(results_dir, sql, lambda con: con.sql(sql).to_arrow_table())


def write_result(result: pd.DataFrame | pa.Table, out) -> Path:
    """Write a query result (pandas or Arrow) by the file's extension: .csv, .parquet, .md or
    .tex."""
    path = Path(out)
    suffix = path.suffix.lower()
    if suffix not in _OUTPUTS:
        raise QueryError(f"--out {out}: use a file ending in {', '.join(_OUTPUTS)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".parquet":
        pq.write_table(result if isinstance(result, pa.Table)
                       else pa.Table.from_pandas(result, preserve_index=False), path)
    else:
        fmt = {".csv": "csv", ".md": "markdown", ".tex": "latex"}[suffix]
        path.write_text(format_table(result, fmt) + "\n")
    return path
