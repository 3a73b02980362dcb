"""Datasets by name, built once and cached; `normalize` is the one door into every model.

The built-in `digits16` renders scikit-learn's bundled 8x8 handwritten digits into a harder
16x16 task (random affine + elastic warps, contrast and noise), so a small zoo trained on a CPU
spreads over a wide range of accuracies. Train and eval are rendered from disjoint source images.
"""
import math
import os
import shutil
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from pairs.keys import unit_key


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


@dataclass(frozen=True)
class _Builder:
    definition: dict                       # everything that changes the data; hashed into the file name
    build: Callable[[dict], dict]          # definition -> arrays named as Dataset's tensor fields


_DATASETS: dict[str, _Builder] = {}
_ARRAYS = ("train_x", "train_y", "eval_x", "eval_y", "train_sources", "eval_sources")


def register_dataset(name: str, **definition):
    def wrap(build: Callable[[dict], dict]):
        _DATASETS[name] = _Builder(definition, build)
        return build
    return wrap


def list_datasets() -> list[str]:
    return sorted(_DATASETS)


def cache_path(name: str, cache: Path) -> Path:
    """The dataset's folder in the cache: one `.npy` file per array."""
    builder = _DATASETS[name]
    digest = unit_key("dataset", name=name, **builder.definition).split("-", 1)[1]
    # names such as `imagefolder:/data/x` carry path characters; the digest keeps them apart
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in name)[-60:]
    return Path(cache) / "data" / f"{safe}-{digest}"


def load_dataset(name: str, cache: Path) -> Dataset:
    """The dataset, built into the cache on first use. Arrays are memory-mapped: jobs on a node
    share one copy in the page cache, and a large decoded set is read as batches touch it."""
    if name not in _DATASETS and name.startswith("imagefolder:"):
        from benchmark.imagefolder import register_from_name    # registers on first use
        register_from_name(name)
    if name not in _DATASETS:
        raise KeyError(f"unknown dataset {name!r}; datasets: {', '.join(list_datasets())}")
    builder = _DATASETS[name]
    path = cache_path(name, cache)
    if not path.exists():
        _save_arrays_atomic(path, builder.build(builder.definition))
    with warnings.catch_warnings():    # read-only maps: torch warns that it cannot write them
        warnings.simplefilter("ignore", UserWarning)
        arrays = {k: torch.from_numpy(np.load(path / f"{k}.npy", mmap_mode="r",
                                              allow_pickle=False)) for k in _ARRAYS}
    return Dataset(name=name, num_classes=builder.definition["num_classes"], **arrays)


def num_classes_of(name: str) -> int:
    """A dataset's number of classes without building it (an image folder: its class folders)."""
    if name in _DATASETS:
        return _DATASETS[name].definition["num_classes"]
    if name.startswith("imagefolder:"):
        from benchmark.imagefolder import classes_of
        return len(classes_of(name))
    raise KeyError(f"unknown dataset {name!r}; datasets: {', '.join(list_datasets())}")


def normalize(x_uint8: torch.Tensor, mean, std) -> torch.Tensor:
    """(x / 255 - mean) / std per channel, as float32, on x's device."""
    return standardize(x_uint8.float() / 255.0, mean, std)


def standardize(x01: torch.Tensor, mean, std) -> torch.Tensor:
    """(x - mean) / std per channel of float images in [0, 1], on x's device."""
    mean = torch.as_tensor(mean, dtype=x01.dtype, device=x01.device).view(1, -1, 1, 1)
    std = torch.as_tensor(std, dtype=x01.dtype, device=x01.device).view(1, -1, 1, 1)
    return (x01 - mean) / std


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


@register_dataset(
    "digits16", version=1, num_classes=10, size=16, n_train=12000, n_eval=4000,
    eval_fraction=1 / 3, split_seed=0, train_seed=1, eval_seed=2,
    rotation_deg=20.0, scale=(0.8, 1.1), aspect=0.1, shear_deg=15.0, translate=0.12,
    elastic=0.05, contrast=(0.6, 1.2), brightness=0.1, noise=0.1,
)
def _build_digits16(d: dict) -> dict:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = torch.from_numpy(digits.images).float().div(16.0).unsqueeze(1)  # [1797, 1, 8, 8] in [0, 1]
    labels = torch.from_numpy(digits.target).long()
    # Split the sources before rendering, so no source image feeds both sides.
    train_src, eval_src = train_test_split(
        np.arange(len(labels)), test_size=d["eval_fraction"], stratify=digits.target,
        random_state=d["split_seed"])
    arrays = {}
    for side, sources, n, seed in (("train", train_src, d["n_train"], d["train_seed"]),
                                   ("eval", eval_src, d["n_eval"], d["eval_seed"])):
        gen = torch.Generator().manual_seed(seed)
        sources = torch.from_numpy(np.sort(sources))
        # Each source is used equally often (up to one), so classes keep the source balance.
        picks = sources[torch.arange(n) % len(sources)][torch.randperm(n, generator=gen)]
        arrays[f"{side}_x"] = _render(images[picks], d, gen).numpy()
        arrays[f"{side}_y"] = labels[picks].numpy()
        arrays[f"{side}_sources"] = picks.numpy()
    return arrays


def _render(src: torch.Tensor, d: dict, gen: torch.Generator) -> torch.Tensor:
    """One batched warp of [N, 1, 8, 8] floats into [N, 1, size, size] uint8."""
    n, size = len(src), d["size"]

    def uniform(lo, hi, *shape):
        return lo + (hi - lo) * torch.rand(n, *shape, generator=gen)

    angle = uniform(-1, 1) * math.radians(d["rotation_deg"])
    shear = uniform(-1, 1) * math.radians(d["shear_deg"])
    scale = uniform(*d["scale"])
    aspect = 1 + uniform(-1, 1) * d["aspect"]
    shift = uniform(-1, 1, 2) * 2 * d["translate"]      # grid coordinates span 2 per image side
    cos, sin = torch.cos(angle), torch.sin(angle)
    rotation = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)
    shearing = torch.eye(2).repeat(n, 1, 1)
    shearing[:, 0, 1] = torch.tan(shear)
    # The grid maps output to input coordinates, so dividing by the scale enlarges the digit.
    scaling = torch.diag_embed(torch.stack([1 / (scale * aspect), aspect / scale], -1))
    theta = torch.cat([rotation @ shearing @ scaling, shift.unsqueeze(-1)], -1)
    grid = F.affine_grid(theta, [n, 1, size, size], align_corners=False)
    # Smooth elastic field: random 4x4 displacements upsampled to the output grid.
    coarse = torch.randn(n, 2, 4, 4, generator=gen) * d["elastic"]
    grid = grid + F.interpolate(coarse, size=(size, size), mode="bicubic",
                                align_corners=False).permute(0, 2, 3, 1)
    x = F.grid_sample(src, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    x = x * uniform(*d["contrast"], 1, 1, 1) + uniform(-1, 1, 1, 1, 1) * d["brightness"]
    x = x + torch.randn(x.shape, generator=gen) * d["noise"]
    return x.clamp(0, 1).mul(255).round().to(torch.uint8)
