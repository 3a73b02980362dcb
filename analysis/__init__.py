"""What the results mean: one SQL file per table of the paper, figures and a report.

Needs only the Parquet results folder (through `results.connect` and `results/views.sql`), never
`benchmark`. Figures and the report (matplotlib) load on first use:
`from analysis.figures import make_figures`, `from analysis.report import build_report`.
"""
from analysis.query import QueryError, check_read_only, connect_read_only, run_query, write_result
from analysis.tables import (FORMATS, TABLE_NAMES, format_table, run_tables, sql_caption, sql_path,
                             write_tables)

__all__ = ["FORMATS", "QueryError", "TABLE_NAMES", "check_read_only", "connect_read_only",
           "format_table", "run_query", "run_tables", "sql_caption", "sql_path", "write_result",
           "write_tables"]
