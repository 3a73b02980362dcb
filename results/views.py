"""`views.sql`: the one definition of the DuckDB views over a results folder.

The file beside this module is rendered from the table contract (`results.schema`): for every
table, a view that reads the table's part files, keeps one row per natural key, and still has
every column of the schema when a table has no part yet (an empty view) or when older parts lack
a newer column (NULLs). It needs nothing but the results folder's path, so the same file serves
`results.connect` and anyone with DuckDB alone:

    duckdb -c "SET VARIABLE results = 'ktbench-results'" -c ".read results/views.sql" \\
           -c "SELECT * FROM transfer_runs"

After a change to `results.schema`, render it again: `python -m results.views`
(tests/test_analysis.py checks that the file is current).
"""
import sys
from pathlib import Path

import duckdb

from results.schema import TABLE_KEYS, TABLES

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
-- Each table is a folder of part files, <results>/<table>/*.parquet (hidden temporary files are
-- never matched). The part list is taken when this file runs (a snapshot): run it again to see
-- parts written since. A table without parts is an empty view that still has every column.
"""
# Fails at once, with a message, when the folder was not given.
_GUARD = """
SET VARIABLE kt_results = coalesce(getvariable('results'),
    error('set the results folder first: SET VARIABLE results = ''DIR'''));
"""


def _duckdb_types(schema) -> list[tuple[str, str]]:
    rel = duckdb.connect(":memory:").from_arrow(schema.empty_table())
    return [(name, str(kind)) for name, kind in zip(rel.columns, rel.types)]


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _view(table: str, schema) -> str:
    parts = f"kt_parts_{table}"
    columns = _duckdb_types(schema)
    typed_empty = ",\n           ".join(f"NULL::{kind} AS {_quote(name)}" for name, kind in columns)
    keys = ", ".join(_quote(k) for k in TABLE_KEYS[table])
    first = _quote(columns[0][0])
    read = (f"SELECT * FROM read_parquet(getvariable(''{parts}''), union_by_name = true)")
    return f"""
SET VARIABLE {parts} = (
    SELECT coalesce(list(file ORDER BY file), [])
    FROM glob(getvariable('kt_results') || '/{table}/*.parquet'));
CREATE OR REPLACE VIEW {_quote(table)} AS
SELECT * FROM (
    SELECT {typed_empty}
    WHERE false
    UNION ALL BY NAME
    SELECT * FROM query(CASE WHEN len(getvariable('{parts}')) > 0
        THEN '{read}'
        ELSE 'SELECT NULL AS {first} WHERE false' END)
)
QUALIFY row_number() OVER (PARTITION BY {keys}) = 1;
"""


def render_views_sql() -> str:
    """The text of views.sql for the current schema."""
    return _HEADER + _GUARD + "".join(_view(t, schema) for t, schema in TABLES.items())


def main(argv=None) -> int:
    VIEWS_SQL.write_text(render_views_sql())
    print(f"wrote {VIEWS_SQL}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
