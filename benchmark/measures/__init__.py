"""Measures: complementary-knowledge statistics of model pairs (`stats`) and per-epoch transfer
metrics (`metrics`), vectorised over cached predictions. Names load on first use (pandas)."""
from typing import TYPE_CHECKING

from results.lazy import lazy_exports

if TYPE_CHECKING:        # the face's names (results.lazy: loaded on first use)
    from benchmark.measures.metrics import transfer_metrics
    from benchmark.measures.stats import (COMPAT_MODES, ClassFlips, check_compat, class_entropy,
                                          class_flip_counts, pair_statistics, top_p_class_count)

__getattr__, __all__ = lazy_exports(__name__, __file__)
