"""What the results mean: one SQL file per table of the paper, figures and a report.

Needs only the Parquet results folder (through `results.connect`), never `benchmark`.
"""
from analysis.tables import TABLE_NAMES, format_table, run_tables

__all__ = ["TABLE_NAMES", "format_table", "run_tables"]
