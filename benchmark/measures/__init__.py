"""Measures: complementary-knowledge statistics of model pairs (`stats`) and per-epoch transfer
metrics (`metrics`), vectorised over cached predictions."""
from benchmark.measures.metrics import transfer_metrics
from benchmark.measures.stats import (COMPAT_MODES, ClassFlips, check_compat, class_entropy,
                                      class_flip_counts, pair_statistics, top_p_class_count)

__all__ = ["COMPAT_MODES", "ClassFlips", "check_compat", "class_entropy", "class_flip_counts",
           "pair_statistics", "top_p_class_count", "transfer_metrics"]
