"""Where results live: Parquet table schemas, atomic part writes and DuckDB views."""
from results.schema import TABLES, TABLE_KEYS, metric_column
from results.store import (connect, default_results_dir, predictions_matrix, read_table,
                           table_dir, write_part)

__all__ = ["TABLES", "TABLE_KEYS", "metric_column", "connect", "default_results_dir",
           "predictions_matrix", "read_table", "table_dir", "write_part"]
