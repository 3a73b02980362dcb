"""Model entries -> modules, with weights resolved at run time (never from a pickled submission)."""
from pathlib import Path

import torch

from benchmark import data
from benchmark.models import build, gpu, microzoo, weights
from pairs.catalog import ModelEntry


def resolve_weights(entry: ModelEntry, cache: Path) -> Path | None:
    """The local weight file of an entry; None means timm's hub. `entry.weights` may be a file
    or a folder of files named by model; entries without weights or recipe look in
    `$KTBENCH_WEIGHTS_DIR`, then timm's hub (`benchmark.models.weights.resolve`)."""
    if entry.weights or entry.recipe is None:
        source = weights.resolve(entry)
        if source.kind == "hub":
            return None
        weights.check_weight_file(source.path)
        return source.path
    if entry.recipe is not None:
        path = microzoo.weights_path(entry, cache)
        if not path.is_file():
            raise FileNotFoundError(f"micro-zoo model {entry.name!r} is not built at {path}; "
                                    "run `ktbench demo` or `ktbench zoo build` first")
        return path
    return None


def load_model(entry: ModelEntry, cache: Path) -> torch.nn.Module:
    return build.create_model(entry, resolve_weights(entry, cache))


_TRAIN_OUTPUTS: dict[tuple, torch.Tensor] = {}
_TRAIN_OUTPUTS_KEPT = 6    # a task's units are grouped by teacher: a few entries suffice


def random_init_model(entry: ModelEntry, seed: int) -> torch.nn.Module:
    """The entry's architecture, randomly initialised (`pretrained=False`) from `seed`, without
    touching torch's global random state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build.create_model(entry, pretrained=False)


def train_outputs(entry: ModelEntry, dataset_name: str, cache: Path, kind: str = "logits",
                  init_seed: int | None = None,
                  runtime: gpu.Runtime = gpu.Runtime()) -> torch.Tensor:
    """A frozen model's outputs (`logits` or pooled `features`, float32 on the CPU) on the
    whole transfer split, computed once per process on the runtime's device (in fp32, as
    `gpu.prepare` lays the model out: a live frozen snapshot gives the same numbers);
    `init_seed` set: the randomly initialised architecture instead. Leaves torch's global
    random state as it was, cached or not.

    Without train-time augmentation these are exactly the outputs a per-batch forward pass
    would give; units sharing a teacher in one task pay for it once.
    """
    key = (entry.fingerprint(), dataset_name, str(cache), kind, init_seed, str(runtime.device),
           runtime.channels_last)
    if key not in _TRAIN_OUTPUTS:
        dataset = data.load_dataset(dataset_name, cache)
        with torch.random.fork_rng(devices=[]):     # building a model draws random weights
            model = (load_model(entry, cache) if init_seed is None
                     else random_init_model(entry, init_seed))
        model = gpu.prepare(model, runtime.device, runtime.channels_last, frozen=True)
        outputs = build.predict_outputs(model, dataset.train_x, entry.mean, entry.std, kind)
        while len(_TRAIN_OUTPUTS) >= _TRAIN_OUTPUTS_KEPT:
            _TRAIN_OUTPUTS.pop(next(iter(_TRAIN_OUTPUTS)))
        _TRAIN_OUTPUTS[key] = outputs
    else:   # least recently used goes first: a shared teacher stays while its students run
        _TRAIN_OUTPUTS[key] = _TRAIN_OUTPUTS.pop(key)
    return _TRAIN_OUTPUTS[key]


def train_logits(entry: ModelEntry, dataset_name: str, cache: Path) -> torch.Tensor:
    """A frozen model's logits on the whole transfer split (`train_outputs`)."""
    return train_outputs(entry, dataset_name, cache)
