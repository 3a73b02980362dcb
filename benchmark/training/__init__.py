"""Training: where a transfer step's batches and frozen outputs come from (`batches`), the
trainer that steps one method on them (`trainer`), and runs stepping together over one stream of
batches (`lockstep`)."""
from benchmark.training.batches import (Batch, CachedBatches, Frozen, OnlineBatches, Stream,
                                       epoch_order)
from benchmark.training.lockstep import run_lockstep
from benchmark.training.trainer import Trainer, predict_eval

__all__ = ["Batch", "CachedBatches", "Frozen", "OnlineBatches", "Stream", "Trainer",
           "epoch_order", "predict_eval", "run_lockstep"]
