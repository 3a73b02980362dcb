"""Datasets by name, built once and cached; `normalize` is the one door into every model.

A dataset is registered by name with its definition (everything that changes its arrays) and a
builder; a name *prefix* (`imagefolder:`, `hfds:`, `wds:`) registers datasets on first use, from
the name alone. Class names (`class_names`, for the class-name similarity of
docs/definitions.md) are registered beside them: by dataset name, or by the prefix's source.
"""
import dataclasses
import functools
import os
import shutil
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch

from pairs.keys import unit_key
from results.errors import InputError


@dataclass(frozen=True)
class Preprocessing:
    """An eval resize + centre crop (timm's): the input size, crop_pct and interpolation an
    image goes through before a model, and its channels; a file-backed dataset is decoded once
    per distinct one (`load_dataset`)."""
    size: int
    crop_pct: float
    interpolation: str
    channels: int = 3

    def __post_init__(self):
        # one spelling per value: 1 and 1.0 must give the same cache folder and unit key
        for name, kind in (("size", int), ("crop_pct", float), ("channels", int)):
            object.__setattr__(self, name, kind(getattr(self, name)))

    @property
    def key(self) -> str:
        """What a unit key records of it."""
        return (f"{self.channels}x{self.size}x{self.size},crop_pct={self.crop_pct!r},"
                f"{self.interpolation}")

    def __str__(self) -> str:
        return f"{self.size} px, crop {self.crop_pct:g}, {self.interpolation}"

    def matches(self, other: "Preprocessing") -> bool:
        return (self.size, self.interpolation, self.channels) == (
            other.size, other.interpolation, other.channels) and abs(
            self.crop_pct - other.crop_pct) < 1e-6

    def inference_flags(self) -> str:
        """The flags of timm's inference.py (and of `ktbench import-predictions`) that select
        it."""
        size = (f"--img-size {self.size}" if self.channels == 3
                else f"--input-size {self.channels} {self.size} {self.size}")
        return f"{size} --crop-pct {self.crop_pct:g} --interpolation {self.interpolation}"

    def decode_config(self) -> dict:
        """As `decode_transform` takes it."""
        return dict(input_size=(self.channels, self.size, self.size), crop_pct=self.crop_pct,
                    interpolation=self.interpolation)


@dataclass(frozen=True)
class Dataset:
    name: str
    num_classes: int
    train_x: torch.Tensor        # uint8 [N, C, H, W]
    train_y: torch.Tensor        # int64 [N]
    eval_x: torch.Tensor
    eval_y: torch.Tensor
    train_sources: torch.Tensor  # int64 [N]: index of the source image each sample came from
    eval_sources: torch.Tensor
    # the decode of a file-backed dataset these arrays are (None: its arrays as built, by name)
    preprocessing: Preprocessing | None = None


@dataclass(frozen=True)
class _Builder:
    definition: dict                       # everything that changes the data; hashed into the file name
    build: Callable[[dict], dict]          # definition -> arrays named as Dataset's tensor fields


@dataclass(frozen=True)
class _Source:
    register: Callable[[str], str]         # a prefixed name -> registered under that name
    classes: Callable[[str], tuple]        # a prefixed name -> its class labels, without building
    names: Callable[[str], tuple] | None   # a prefixed name -> its classes' human-readable names
    eval_split: Callable[[str], object] | None   # a prefixed name -> its eval `splits.Split`


_DATASETS: dict[str, _Builder] = {}
_SOURCES: dict[str, _Source] = {}
_CLASS_NAMES: dict[str, Callable[[], tuple]] = {}
_ARRAYS = ("train_x", "train_y", "eval_x", "eval_y", "train_sources", "eval_sources")


def register_dataset(name: str, **definition):
    def wrap(build: Callable[[dict], dict]):
        _DATASETS[name] = _Builder(definition, build)
        return build
    return wrap


def register_source(prefix: str, register: Callable[[str], str],
                    classes: Callable[[str], tuple], *,
                    names: Callable[[str], tuple] | None = None,
                    eval_split: Callable[[str], object] | None = None) -> None:
    """Datasets named `<prefix>...`: `register(name)` registers one on first use, `classes(name)`
    gives its class labels, `names(name)` their readable names (default: the labels) and
    `eval_split(name)` its eval side (labels and sample names, a `benchmark.data.splits.Split`),
    each without building it."""
    _SOURCES[prefix] = _Source(register, classes, names, eval_split)


def register_class_names(name: str, names: Callable[[], tuple]) -> None:
    """`names()` gives the readable names of dataset `name`'s classes, in label order."""
    _CLASS_NAMES[name] = names


def _source_of(name: str) -> _Source | None:
    return next((s for prefix, s in _SOURCES.items() if name.startswith(prefix)), None)


def list_datasets() -> list[str]:
    return sorted(_DATASETS)


def cache_path(name: str, cache: Path, preprocessing: Preprocessing | None = None) -> Path:
    """The dataset's folder in the cache (decoded at `preprocessing`, for a file-backed one):
    one `.npy` file per array."""
    digest = unit_key("dataset", name=name, **_definition(name, preprocessing)).split("-", 1)[1]
    # names such as `imagefolder:/data/x` carry path characters; the digest keeps them apart
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in name)[-60:]
    return Path(cache) / "data" / f"{safe}-{digest}"


def load_dataset(name: str, cache: Path, preprocessing: Preprocessing | None = None) -> Dataset:
    """The dataset, built into the cache on first use; a file-backed one decoded at
    `preprocessing` (None: at its name's size, crop_pct and interpolation), each distinct
    preprocessing once. Arrays are memory-mapped: jobs on a node share one copy in the page
    cache, and a large decoded set is read as batches touch it."""
    definition_of(name)            # registered from its name on first use
    definition = _definition(name, preprocessing)
    path = cache_path(name, cache, preprocessing)
    if not path.exists():
        _save_arrays_atomic(path, _DATASETS[name].build(definition))
    with warnings.catch_warnings():    # read-only maps: torch warns that it cannot write them
        warnings.simplefilter("ignore", UserWarning)
        arrays = {k: torch.from_numpy(np.load(path / f"{k}.npy", mmap_mode="r",
                                              allow_pickle=False)) for k in _ARRAYS}
    return Dataset(name=name, num_classes=definition["num_classes"], **arrays,
                   preprocessing=preprocessing)


def _definition(name: str, preprocessing: Preprocessing | None) -> dict:
    """What a dataset's arrays are built from: its definition, a file-backed one's size,
    crop_pct, interpolation and channels those of `preprocessing` (the definition itself when
    they are its own, so its cache stays where it was)."""
    definition = _DATASETS[name].definition
    if preprocessing is None:
        return definition
    if not decoded_from_files(name):
        raise ValueError(f"dataset {name!r} is built in: it cannot be decoded at {preprocessing}")
    return {**definition, **dataclasses.asdict(preprocessing)}


def decoded_from_files(name: str) -> bool:
    """Whether a dataset is decoded from image files (so that each model may be fed its own
    decode), without reading a file: a built-in dataset's arrays come decoded."""
    if name in _DATASETS:
        return "crop_pct" in _DATASETS[name].definition
    return _source_of(name) is not None


def definition_of(name: str) -> dict:
    """A dataset's definition (everything that changes its arrays: a file-backed one's size,
    crop_pct, interpolation, ...), registered from its name if needed, without building it."""
    source = _source_of(name)
    if name not in _DATASETS and source:
        source.register(name)
    if name not in _DATASETS:
        raise InputError(_unknown(name))
    return dict(_DATASETS[name].definition)


def num_classes_of(name: str) -> int:
    """A dataset's number of classes without building it (an image folder: its class folders)."""
    if name in _DATASETS:
        return _DATASETS[name].definition["num_classes"]
    source = _source_of(name)
    if source:
        return len(source.classes(name))
    raise InputError(_unknown(name))


def eval_split(name: str):
    """The eval side of a dataset read from files (its labels and sample names), without
    building the dataset; InputError for a built-in dataset."""
    source = _source_of(name)
    if source and source.eval_split:
        return source.eval_split(name)
    if source or name in _DATASETS:
        raise InputError(f"dataset {name!r} has no sample names to match files by (datasets "
                         f"named {', '.join(p + '...' for p in _SOURCES)} have)")
    raise InputError(_unknown(name))


def check_classes(classes: Iterable[str] | int, entries) -> None:
    """Every model's head must have one output per class: InputError (one line) otherwise."""
    n = classes if isinstance(classes, int) else len(list(classes))
    bad = [f"{e.name} ({e.num_classes})" for e in entries if e.num_classes != n]
    if bad:
        raise InputError(f"the dataset has {n} classes but these models' heads do not match: "
                         + ", ".join(bad))


def _unknown(name: str) -> str:
    hint = (" (the timm zoo's ImageNet: set KTBENCH_IMAGENET to an ImageNet source, e.g. "
            "imagefolder:/data/imagenet@subset=0.1; docs/protocol.md#data)"
            if name == "imagenet" else "")
    return (f"unknown dataset {name!r}{hint}; datasets: {', '.join(list_datasets())}, or a "
            f"name {', '.join(p + '...' for p in _SOURCES)}")


def class_names(name: str) -> tuple[str, ...]:
    """The readable names of a dataset's classes, in label order (label i is names[i])."""
    if name in _CLASS_NAMES:
        return tuple(_CLASS_NAMES[name]())
    source = _source_of(name)
    if source:
        return tuple((source.names or source.classes)(name))
    raise InputError(f"no class names for dataset {name!r}; datasets with names: "
                     f"{', '.join(sorted(_CLASS_NAMES))}, or a name "
                     f"{', '.join(p + '...' for p in _SOURCES)}")


def normalize(x_uint8: torch.Tensor, mean, std) -> torch.Tensor:
    """(x / 255 - mean) / std per channel, as float32, on x's device."""
    return standardize(x_uint8.float() / 255.0, mean, std)


def standardize(x01: torch.Tensor, mean, std) -> torch.Tensor:
    """(x - mean) / std per channel of float images in [0, 1], on x's device."""
    mean, std = _channel_stats(tuple(mean), tuple(std), x01.device, x01.dtype)
    return (x01 - mean) / std


@functools.lru_cache(maxsize=64)
def _channel_stats(mean: tuple, std: tuple, device: torch.device, dtype: torch.dtype):
    """mean and std as [1, C, 1, 1] tensors on `device`, made once: a copy to a GPU per batch
    would make the host wait for the GPU."""
    return tuple(torch.as_tensor(v, dtype=dtype).view(1, -1, 1, 1).to(device) for v in (mean, std))


def _save_arrays_atomic(path: Path, arrays: dict) -> None:
    """The arrays as `.npy` files in a temporary folder beside `path`, then renamed to it: a
    killed build never leaves a half dataset, and of two concurrent builders one wins."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        tmp.mkdir()
        for key in _ARRAYS:
            np.save(tmp / f"{key}.npy", np.ascontiguousarray(arrays[key]), allow_pickle=False)
        try:
            os.rename(tmp, path)
        except OSError:                # another process renamed its copy first
            if not path.is_dir():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
