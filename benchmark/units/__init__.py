"""Units of work, how one runs: `predict` (a model's eval predictions), `stats` (all planned
pairs' complementary knowledge), `transfer` (one training run; `checkpoint` keeps its state),
`multi` (multi-teacher runs, planned by `pairs.multi`), `features` (cached features for the
predictors), `baselines` (random-init flips); `group` trains the transfer units of a task that
see the same batches in lockstep; `dispatch` runs any unit by its stage, and a task's units.
Names load on first use.
`import_predictions` writes predictions made elsewhere (timm's inference.py) as predict results.
"""
from results.lazy import lazy_exports

_NAMES = {
    "run_unit": "dispatch", "run_units": "dispatch", "record_failure": "dispatch",
    "run_predict": "predict", "run_stats": "stats", "run_transfer": "transfer", "run_multi": "multi",
    "run_features": "features",
}
__all__ = sorted(_NAMES)
__getattr__ = lazy_exports(__name__, _NAMES)
