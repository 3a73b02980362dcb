"""Experiment trackers, off by default: `ktbench launch --log wandb,tensorboard` mirrors every
transfer unit's per-epoch rows to Weights & Biases and/or TensorBoard (`runs`), with the unit's
key as the run id, so that a resumed unit continues its run. The Parquet results stay the source
of truth: a tracker only receives copies of the rows they hold."""
from benchmark.trackers.runs import (check_available, finish_unit, list_trackers, log_epoch,
                                     parse_trackers, register_tracker)

__all__ = ["check_available", "finish_unit", "list_trackers", "log_epoch", "parse_trackers",
           "register_tracker"]
