"""Models: building catalog entries through timm, their weights (local files, folders, the hub),
the micro zoo's own architectures and training, and the device runtime (`gpu`)."""
from benchmark.models.build import (count_params_m, create_model, features_and_logits,
                                    predict_logits, predict_outputs)
from benchmark.models.loading import load_model, random_init_model, resolve_weights, train_outputs

__all__ = ["count_params_m", "create_model", "features_and_logits", "load_model",
           "predict_logits", "predict_outputs", "random_init_model", "resolve_weights",
           "train_outputs"]
