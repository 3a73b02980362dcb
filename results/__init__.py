"""Where results live: Parquet table schemas, atomic part writes, DuckDB views over them
(`results.views`), checks (`results.verify`), compaction of many parts into a few large files
(`results.compact`), the map of the folder (`results.layout`) and the one error type for bad
input (`results.errors`). Eager: its modules need pyarrow and DuckDB, never torch or pandas
(`results.lazy` holds the rule for faces that load on first use)."""
from results.errors import InputError
from results.layout import ResultsLayout
from results.schema import TABLE_KEYS, TABLES, metric_column
from results.store import (connect, default_results_dir, predict_keys, predictions_matrix, query,
                           read_table, table_dir, write_part)

__all__ = ["InputError", "ResultsLayout", "TABLES", "TABLE_KEYS", "connect",
           "default_results_dir", "metric_column", "predict_keys", "predictions_matrix", "query",
           "read_table", "table_dir", "write_part"]
