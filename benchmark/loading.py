"""Model entries -> modules, with weights resolved at run time (never from a pickled submission)."""
from pathlib import Path

import torch

from benchmark import data, microzoo, models
from pairs.catalog import ModelEntry


def resolve_weights(entry: ModelEntry, cache: Path) -> Path | None:
    """The local weight file of an entry; None means timm's hub."""
    if entry.weights:
        path = Path(entry.weights)
        if not path.is_file():
            raise FileNotFoundError(f"weights for {entry.name!r} not found at {path}")
        return path
    if entry.recipe is not None:
        path = microzoo.weights_path(entry, cache)
        if not path.is_file():
            raise FileNotFoundError(f"micro-zoo model {entry.name!r} is not built at {path}; "
                                    "run `ktbench demo` or `ktbench zoo build` first")
        return path
    return None


def load_model(entry: ModelEntry, cache: Path) -> torch.nn.Module:
    return models.create_model(entry, resolve_weights(entry, cache))


_TRAIN_LOGITS: dict[tuple, torch.Tensor] = {}
_TRAIN_LOGITS_KEPT = 4     # a task's units are grouped by teacher: a few entries suffice


def train_logits(entry: ModelEntry, dataset_name: str, cache: Path) -> torch.Tensor:
    """A frozen model's logits on the whole transfer split, computed once per process.

    The transfer split has no train-time augmentation, so these are exactly the logits a
    per-batch forward pass would give; units sharing a teacher in one task pay for it once.
    """
    key = (entry.fingerprint(), dataset_name, str(cache))
    if key not in _TRAIN_LOGITS:
        dataset = data.load_dataset(dataset_name, cache)
        logits = models.predict_logits(load_model(entry, cache), dataset.train_x, entry.mean,
                                        entry.std)
        while len(_TRAIN_LOGITS) >= _TRAIN_LOGITS_KEPT:
            _TRAIN_LOGITS.pop(next(iter(_TRAIN_LOGITS)))
        _TRAIN_LOGITS[key] = logits
    return _TRAIN_LOGITS[key]
