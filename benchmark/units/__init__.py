"""Units of work, how one runs: `probe` (a linear head fitted on a frozen model's features on
another dataset), `predict` (a model's eval predictions), `stats` (all planned
pairs' complementary knowledge), `transfer` (one training run; `checkpoint` keeps its state),
`multi` (multi-teacher runs, planned by `pairs.multi`), `features` (cached features for the
predictors), `baselines` (random-init flips); `group` trains the transfer units of a task that
see the same batches in lockstep; `dispatch` runs any unit by its stage, and a task's units.
Names load on first use.
`import_predictions` writes predictions made elsewhere (timm's inference.py) as predict results.
"""
from typing import TYPE_CHECKING

from results.lazy import lazy_exports

if TYPE_CHECKING:        # the face's names (results.lazy: loaded on first use)
    from benchmark.units.dispatch import record_failure, run_unit, run_units
    from benchmark.units.features import run_features
    from benchmark.units.multi import run_multi
    from benchmark.units.predict import run_predict
    from benchmark.units.probe import run_probe
    from benchmark.units.stats import run_stats
    from benchmark.units.transfer import run_transfer

__getattr__, __all__ = lazy_exports(__name__, __file__)
