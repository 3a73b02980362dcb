"""Predict before you train: transferability and complementarity predictors from cached features.

- `scores`: the math (TMI, LogME, H-score, LEEP, NCE, linear CKA, kappa), pure functions.
- `compute`: every model's and pair's scores at once -> `model_predictors`, `pair_predictors`.
- `teachers`: teacher sets for a student (greedy by a submodular score, random, by accuracy)
  -> `teacher_sets`.
- `run`: a zoo's features units, predictors and teacher sets into a results folder
  (`ktbench predictors`).
Names load on first use.
"""
from results.lazy import lazy_exports

_NAMES = {
    "PredictorOptions": "compute", "PredictorResult": "compute",
    "compute_predictors": "compute", "CKA_SAMPLES": "compute",
    "greedy_teachers": "teachers", "set_scores": "teachers", "teacher_set_table": "teachers",
    "run_predictors": "run", "ensure_features": "run",
}
__all__ = sorted(_NAMES)
__getattr__ = lazy_exports(__name__, _NAMES)
