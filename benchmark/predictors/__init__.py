"""Predict before you train: transferability and complementarity predictors from cached features.

- `scores`: the math (TMI, LogME, H-score, LEEP, NCE, linear CKA, kappa), pure functions.
- `compute`: every model's and pair's scores at once -> `model_predictors`, `pair_predictors`.
- `teachers`: teacher sets for a student (greedy by a submodular score, random, by accuracy)
  -> `teacher_sets`.
- `run`: a zoo's features units, predictors and teacher sets into a results folder
  (`ktbench predictors`).
Names load on first use.
"""
from typing import TYPE_CHECKING

from results.lazy import lazy_exports

if TYPE_CHECKING:        # the face's names (results.lazy: loaded on first use)
    from benchmark.predictors.compute import (CKA_SAMPLES, PredictorOptions, PredictorResult,
                                              compute_predictors)
    from benchmark.predictors.run import ensure_features, run_predictors
    from benchmark.predictors.teachers import greedy_teachers, set_scores, teacher_set_table

__getattr__, __all__ = lazy_exports(__name__, __file__)
