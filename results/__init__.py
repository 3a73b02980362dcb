"""Where results live: Parquet table schemas, atomic part writes, DuckDB views over them
(`results.views`), checks (`results.verify`) and compaction of many parts into a few large
files (`results.compact`). Names load on first use (`lazy`, the helper every package's names
load through): the schemas need pyarrow, the store DuckDB too, and neither loads pandas."""
from results.lazy import lazy_exports

_NAMES = {
    "InputError": "errors", "ResultsLayout": "layout",
    "TABLES": "schema", "TABLE_KEYS": "schema", "metric_column": "schema",
    "connect": "store", "default_results_dir": "store", "predictions_matrix": "store",
    "query": "store", "read_table": "store", "table_dir": "store", "write_part": "store",
}
__all__ = sorted(_NAMES)
__getattr__ = lazy_exports(__name__, _NAMES)
