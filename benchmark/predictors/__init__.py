"""Predict before you train: transferability and complementarity predictors from cached
features (issue 10).

- `scores`: the math (TMI, LogME, H-score, LEEP, NCE, linear CKA, kappa), pure functions.
- `compute`: every model's and pair's scores at once -> `model_predictors`, `pair_predictors`.
- `teachers`: teacher sets for a student (greedy by a submodular score, random, by accuracy)
  -> `teacher_sets`.
- `run`: a zoo's features units, predictors and teacher sets into a results folder
  (`ktbench predictors`).
Names load on first use (PEP 562), so `benchmark.predictors.cli` stays light for the CLI.
"""
import importlib

_NAMES = {
    "PredictorOptions": "compute", "PredictorResult": "compute",
    "compute_predictors": "compute", "CKA_SAMPLES": "compute",
    "greedy_teachers": "teachers", "set_scores": "teachers", "teacher_set_table": "teachers",
    "run_predictors": "run", "ensure_features": "run",
}
__all__ = sorted(_NAMES)


def __getattr__(name):
    if name in _NAMES:
        return getattr(importlib.import_module(f"benchmark.predictors.{_NAMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
