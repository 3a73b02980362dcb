"""Models: building catalog entries through timm, their weights (local files, folders, the hub),
the micro zoo's own architectures and training, and the device runtime (`gpu`). Names load on
first use (torch and timm): `benchmark.models.weights` alone stays light."""
from typing import TYPE_CHECKING

from results.lazy import lazy_exports

if TYPE_CHECKING:        # the face's names (results.lazy: loaded on first use)
    from benchmark.models.build import (count_params_m, create_model, features_and_logits,
                                        predict_logits, predict_outputs)
    from benchmark.models.loading import (clear_train_outputs, load_model, random_init_model,
                                          resolve_weights, train_outputs)

__getattr__, __all__ = lazy_exports(__name__, __file__)
