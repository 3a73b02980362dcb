"""Where results live: Parquet table schemas, atomic part writes, DuckDB views over them
(`results.views`), checks (`results.verify`) and compaction of many parts into a few large
files (`results.compact`)."""
from results.schema import TABLES, TABLE_KEYS, metric_column
from results.store import (connect, default_results_dir, predictions_matrix, query, read_table,
                           table_dir, write_part)

__all__ = ["TABLES", "TABLE_KEYS", "metric_column", "connect", "default_results_dir",
           "predictions_matrix", "query", "read_table", "table_dir", "write_part"]
