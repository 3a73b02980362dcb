"""Training: where a transfer step's batches and frozen outputs come from (`batches`), the
trainer that steps one method on them (`trainer`), and runs stepping together over one stream of
batches (`lockstep`). Names load on first use (torch)."""
from typing import TYPE_CHECKING

from results.lazy import lazy_exports

if TYPE_CHECKING:        # the face's names (results.lazy: loaded on first use)
    from benchmark.training.batches import (Batch, CachedBatches, Frozen, OnlineBatches, Stream,
                                            epoch_order)
    from benchmark.training.lockstep import run_lockstep
    from benchmark.training.trainer import Trainer, predict_eval

__getattr__, __all__ = lazy_exports(__name__, __file__)
