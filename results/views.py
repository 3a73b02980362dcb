"""`views.sql`: the one definition of the DuckDB views over a results folder.

The file beside this module is rendered from the table contract (`results.schema`): for every
table, a view that reads the table's files, keeps one row per natural key, and still has every
column of the schema when a table has no file yet (an empty view) or when older files lack a
newer column (NULLs). It needs nothing but the results folder's path, so the same file serves
`results.connect` and anyone with DuckDB alone:

    duckdb -c "SET VARIABLE results = 'ktbench-results'" -c ".read results/views.sql" \\
           -c "SELECT * FROM transfer_runs"

A table's files are its compacted files (`compacted-<generation>-*.parquet`, see
`results.compact`), oldest generation first, then its parts. When files hold the same natural
key, the row read last wins: a part beats any compacted copy of its key (a part written after a
compaction is a newer result, e.g. a rerun), a later generation beats an earlier one, and within
a file a later row beats an earlier one.

`render_view(table)` is one table's view alone (`results.connect(DIR, tables=...)` binds only the
views a statement reads); `tables_in(sql)` names the tables a statement may read. The file reads
its parts by name (`union_by_name`), which binds every part's footer; `results.store.query` first
reads them as one schema, far cheaper on 10^5 parts, and by name only when they differ.

After a change to `results.schema`, render it again: `python -m results.views`
(tests/test_analysis.py checks that the file is current).
"""
import functools
import re
import sys
from pathlib import Path

import pyarrow as pa

from results.schema import COMPACTED_PREFIX, TABLE_KEYS, TABLES

VIEWS_SQL = Path(__file__).with_name("views.sql")

_HEADER = """\
-- The DuckDB views over a ktbench results folder: one view per table, one row per natural key.
-- GENERATED from results/schema.py by `python -m results.views`; do not edit by hand.
--
-- Needs one parameter, the results folder, as a DuckDB variable:
--   duckdb -c "SET VARIABLE results = 'ktbench-results'" -c ".read results/views.sql" \\
--          -c ".read analysis/sql/success_rate.sql"
-- or in Python:
--   con = duckdb.connect(); con.execute("SET VARIABLE results = ?", [folder])
--   con.execute(open("results/views.sql").read())
--
-- Each table is a folder of Parquet files, <results>/<table>/*.parquet (hidden temporary files
-- are never matched): compacted files (compacted-<generation>-*.parquet) and parts. The file list
-- is taken when this file runs (a snapshot): run it again to see files written since. Where
-- files hold the same natural key, the row read last wins (files in the order compacted by
-- generation, then parts; rows in file order): a part written after a compaction beats the
-- compacted copy of its key. A table without files is an empty view that still has every column.
"""
# Fails at once, with a message, when the folder was not given.
GUARD = """
SET VARIABLE kt_results = coalesce(getvariable('results'),
    error('set the results folder first: SET VARIABLE results = ''DIR'''));
"""


# DuckDB's name of each Arrow type the schema uses, as DuckDB reads a Parquet column of it. By
# name rather than by scanning an empty Arrow table: DuckDB's Arrow scan imports pandas, and a
# query must not (tests/test_store.py checks the names against that scan).
SQL_TYPES = {pa.string(): "VARCHAR", pa.bool_(): "BOOLEAN", pa.int32(): "INTEGER",
             pa.int64(): "BIGINT", pa.float32(): "FLOAT", pa.float64(): "DOUBLE",
             pa.timestamp("us", tz="UTC"): "TIMESTAMP WITH TIME ZONE"}


def sql_type(kind: pa.DataType) -> str:
    """The DuckDB type of an Arrow type of the schema (a list: its item's type, then `[]`)."""
    if pa.types.is_list(kind):
        return sql_type(kind.value_type) + "[]"
    if kind not in SQL_TYPES:
        raise TypeError(f"no DuckDB type for Arrow type {kind}: add it to results.views.SQL_TYPES")
    return SQL_TYPES[kind]


def _duckdb_types(table: str) -> tuple[tuple[str, str], ...]:
    return tuple((field.name, sql_type(field.type)) for field in TABLES[table])


def quote_name(name: str) -> str:
    """`name` as a DuckDB identifier (double-quoted)."""
    return '"' + name.replace('"', '""') + '"'


def rows_sql(table: str, files_variable: str, union: bool = True) -> str:
    """Every row of the files listed in the DuckDB variable `files_variable`, with the table's
    columns (NULLs where a file lacks one) and each row's place: `kt_file` (index in the list)
    and `kt_row` (row in its file). `union=False` reads the files as one schema, the first
    file's: no footer of the others is read to bind it (at 10^5 parts, gigabytes and minutes
    less), but a file lacking a column read is an error, and a column the first file lacks is
    NULL everywhere (`results.store.read_views` checks the first and falls back)."""
    columns = _duckdb_types(table) + (("kt_file", "BIGINT"), ("kt_row", "BIGINT"))
    typed_empty = ",\n           ".join(f"NULL::{kind} AS {quote_name(name)}" for name, kind in columns)
    read = ("SELECT *, file_index AS kt_file, file_row_number AS kt_row "
            f"FROM read_parquet(getvariable(''{files_variable}''), "
            f"union_by_name = {str(union).lower()})")
    return f"""
    SELECT {typed_empty}
    WHERE false
    UNION ALL BY NAME
    SELECT * FROM query(CASE WHEN len(getvariable('{files_variable}')) > 0
        THEN '{read}'
        ELSE 'SELECT NULL AS kt_file WHERE false' END)
"""


def parts_variable(table: str) -> str:
    """The DuckDB variable in which a table's view lists its files (compacted ones first)."""
    return f"kt_parts_{table}"


@functools.cache
def render_view(table: str, union: bool = True) -> str:
    """The SQL of one table's view (it needs `GUARD` run first; `union`: see `rows_sql`)."""
    parts = parts_variable(table)
    keys = ", ".join(quote_name(k) for k in TABLE_KEYS[table])
    return f"""
SET VARIABLE {parts} = (
    SELECT coalesce(list(file ORDER BY starts_with(parse_filename(file), '{COMPACTED_PREFIX}') DESC,
                                       file), [])
    FROM glob(getvariable('kt_results') || '/{table}/*.parquet'));
CREATE OR REPLACE VIEW {quote_name(table)} AS
SELECT * EXCLUDE (kt_file, kt_row) FROM ({rows_sql(table, parts, union)})
QUALIFY row_number() OVER (PARTITION BY {keys} ORDER BY kt_file DESC, kt_row DESC) = 1;
"""


def render_views_sql() -> str:
    """The text of views.sql for the current schema."""
    return _HEADER + GUARD + "".join(render_view(t) for t in TABLES)


_TABLE_WORDS = {t: re.compile(rf"\b{t}\b", re.IGNORECASE) for t in TABLES}


def tables_in(sql: str) -> list[str]:
    """The tables whose names appear in `sql` as words: every view it may read (a name in a
    string or a column alias binds one view too many, never one too few)."""
    return [t for t, word in _TABLE_WORDS.items() if word.search(sql)]


def main(argv=None) -> int:
    VIEWS_SQL.write_text(render_views_sql())
    print(f"wrote {VIEWS_SQL}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
