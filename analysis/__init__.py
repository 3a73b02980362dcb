"""What the results mean: one SQL file per table of the paper, figures and a report.

Needs only the Parquet results folder (through `results.connect` and `results/views.sql`), never
`benchmark`. Names load on first use: the tables' names (`table_names`), the formatter
(`formatting`) and the read-only query (`query`) need no pandas, the tables themselves
(`tables`) do. Figures and the report (matplotlib) load only when imported:
`from analysis.figures import make_figures`, `from analysis.report import build_report`.
"""
from typing import TYPE_CHECKING

from results.lazy import lazy_exports

if TYPE_CHECKING:        # the face's names (results.lazy: loaded on first use)
    from analysis.formatting import FORMATS, format_table
    from analysis.query import (QueryError, check_read_only, connect_read_only, run_query,
                                run_query_arrow, write_result)
    from analysis.table_names import TABLE_NAMES, sql_path
    from analysis.tables import run_tables, sql_caption, write_tables

__getattr__, __all__ = lazy_exports(__name__, __file__)
