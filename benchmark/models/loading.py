"""Model entries -> modules, with weights resolved at run time (never from a pickled submission)."""
import dataclasses
from pathlib import Path

import torch

from benchmark import data
from benchmark.data.feeding import load_for
from benchmark.models import build, gpu, microzoo, weights
from pairs.catalog import ModelEntry
from pairs.probe import backbone_of
from results.errors import InputError
from results.layout import ResultsLayout


def resolve_weights(entry: ModelEntry, cache: Path) -> Path | None:
    """The local weight file of an entry; None means timm's hub. `entry.weights` may be a file
    or a folder of files named by model; entries without weights or recipe look in
    `$KTBENCH_WEIGHTS_DIR`, then timm's hub (`benchmark.models.weights.resolve`). A probed
    entry's weights are its backbone's."""
    entry = backbone_of(entry)
    if entry.weights or entry.recipe is None:
        source = weights.resolve(entry)
        if source.kind == "hub":
            return None
        weights.check_weight_file(source.path)
        return source.path
    if entry.recipe is not None:
        path = microzoo.weights_path(entry, cache)
        if not path.is_file():
            raise InputError(f"micro-zoo model {entry.name!r} is not built at {path}; "
                             "run `ktbench demo` or `ktbench zoo build` first")
        return path
    return None


def load_model(entry: ModelEntry, cache: Path,
               results: ResultsLayout | None = None) -> torch.nn.Module:
    """The entry's model; a probed entry: its backbone with the classifier replaced by the
    head the probe stage fitted, from the results folder `results` (`ktbench` runs that stage
    first)."""
    backbone = backbone_of(entry)
    model = build.create_model(backbone, resolve_weights(backbone, cache))
    if entry.probe is not None:
        if results is None:
            raise ValueError(f"{entry.name} is probed: its head is in a results folder, "
                             "which load_model needs")
        path = results.probe_head(entry.probe["key"])
        if not path.is_file():
            raise InputError(f"{entry.name}: no probe head on {entry.probe['dataset']!r} at "
                             f"{path}; run the probe stage first (ktbench launch does)")
        build.attach_head(model, path, entry.num_classes)
    return model


_TRAIN_OUTPUTS: dict[tuple, "_Outputs"] = {}
_TRAIN_OUTPUTS_KEPT = 6    # a task's units are grouped by teacher: a few entries suffice


def random_init_model(entry: ModelEntry, seed: int) -> torch.nn.Module:
    """The entry's architecture, randomly initialised (`pretrained=False`) from `seed`, without
    touching torch's global random state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build.create_model(entry, pretrained=False)


def train_outputs(entry: ModelEntry, dataset: data.Dataset, cache: Path, kind: str = "logits",
                  init_seed: int | None = None, runtime: gpu.Runtime = gpu.Runtime(),
                  n: int | None = None, size: int | None = None,
                  results: ResultsLayout | None = None) -> torch.Tensor:
    """A frozen model's outputs (`logits` or pooled `features`, float32 on the CPU) on the
    first `n` samples of `dataset`'s transfer split (None: all of it; a decode of it: a run's
    student's, resized to `size` where given; `results`: where a probed model's head is,
    `load_model`), computed once per process on the
    runtime's device (in fp32, as `gpu.prepare` lays the model out: a live frozen snapshot gives
    the same numbers); `init_seed` set: the randomly initialised architecture instead. Leaves
    torch's global random state as it was, cached or not.

    Without train-time augmentation these are exactly the outputs a per-batch forward pass
    would give; units sharing a teacher in one task pay for it once (for the most samples any
    of them asked for so far: a unit on the first 64 samples does not pay for 12,000).
    """
    key = (entry.fingerprint(), dataset.name, dataset.preprocessing, size, str(cache), results,
           kind, init_seed, str(runtime.device), runtime.channels_last)
    cached = _TRAIN_OUTPUTS.pop(key, None)   # put back last: least recently used goes first
    if cached is None or (n is None and not cached.complete) or len(cached.outputs) < (n or 0):
        with torch.random.fork_rng(devices=[]):     # building a model draws random weights
            model = (load_model(entry, cache, results) if init_seed is None
                     else random_init_model(entry, init_seed))
        model = gpu.prepare(model, runtime.device, runtime.channels_last, frozen=True)
        # whole prediction batches: a row's output never depends on how far the pass went
        images = dataset.train_x[:None if n is None else -(-n // build.PREDICT_BATCH)
                                 * build.PREDICT_BATCH]
        outputs = build.predict_outputs(model, images, entry.mean, entry.std, kind, size=size)
        cached = _Outputs(outputs, complete=len(images) == len(dataset.train_x))
        while len(_TRAIN_OUTPUTS) >= _TRAIN_OUTPUTS_KEPT:
            _TRAIN_OUTPUTS.pop(next(iter(_TRAIN_OUTPUTS)))
    _TRAIN_OUTPUTS[key] = cached
    return cached.outputs[:n]


def clear_train_outputs() -> None:
    """Forget every cached frozen output (a benchmark times a task from cold)."""
    _TRAIN_OUTPUTS.clear()


@dataclasses.dataclass
class _Outputs:
    outputs: torch.Tensor
    complete: bool             # over the whole split


def train_logits(entry: ModelEntry, dataset_name: str, cache: Path) -> torch.Tensor:
    """A frozen model's logits on the whole transfer split as it is fed it (`train_outputs`)."""
    return train_outputs(entry, load_for(entry, dataset_name, cache), cache)
