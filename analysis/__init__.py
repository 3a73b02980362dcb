"""What the results mean: one SQL file per table of the paper, figures and a report.

Needs only the Parquet results folder (through `results.connect` and `results/views.sql`), never
`benchmark`. Names load on first use: the tables' names (`table_names`), the formatter
(`formatting`) and the read-only query (`query`) need no pandas, the tables themselves
(`tables`) do. Figures and the report (matplotlib) load only when imported:
`from analysis.figures import make_figures`, `from analysis.report import build_report`.
"""
from results.lazy import lazy_exports

_NAMES = {
    "TABLE_NAMES": "table_names", "sql_path": "table_names",
    "FORMATS": "formatting", "format_table": "formatting",
    "QueryError": "query", "check_read_only": "query", "connect_read_only": "query",
    "run_query": "query", "run_query_arrow": "query", "write_result": "query",
    "run_tables": "tables", "sql_caption": "tables", "write_tables": "tables",
}
__all__ = sorted(_NAMES)
__getattr__ = lazy_exports(__name__, _NAMES)
