"""Splits of image sources, decoded into uint8 arrays: the one path every file-backed dataset takes.

A `Split` is one side (train or eval) of a source: its class names, the labels and sample names
in the source's order, a digest of its files, and its images by position. Sources (`imagefolder:`,
`hfds:`, `wds:`) differ only in how they make their two splits; `register_splits` registers the
pair as a `load_dataset` dataset, decoded once at the name's size, crop_pct and interpolation
(timm's eval resize + centre crop) into uint8 arrays in the cache, its train side optionally the
paper's stratified subset. `decoded_cache` decodes a split at one model's config into a
memory-mapped file shared by the jobs of a node; `SplitImages`, `CachedDataset` and
`make_loader` are the pieces of a loader for code of your own.
"""
import hashlib
import os
import time
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from benchmark.cores import usable_cores
from benchmark.data.datasets import register_dataset
from benchmark.data.preprocess import decode_transform
from benchmark.data.subset import labels_digest, stratified_subset
from results.errors import InputError

# readable class names beside a source's files: one a line, in label order
CLASS_NAMES_FILE = "classnames.txt"
# the options every source's name takes after `@` (docs/protocol.md#data)
OPTIONS = dict(size=224, crop_pct=0.875, interpolation="bilinear", channels=3, subset=None)
_TYPES = {"size": int, "channels": int, "classes": int, "crop_pct": float, "subset": float}
# how the models are fed a source (`preprocessing_mode`): a name option beside `OPTIONS` that
# changes no array of the dataset itself, so it stays out of its definition
MODE_OPTION, OWN, SHARED = "preprocessing", "own", "shared"
SHARED_BY = ("size", "crop_pct", "interpolation", "channels")


class Split:
    """One side of a source. Subclasses set `where` (the split, for messages) and `classes`, and
    give `labels` (int64 [N]), `names` (N sample names: paths or keys), `digest` (changes when
    the files do) and `open(j)` (image j as a binary file); a source read in order only
    (webdataset shards) overrides `decode` instead of `open`."""
    where: str
    classes: tuple[str, ...]
    labels: np.ndarray
    names: tuple[str, ...]
    digest: str

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __len__(self) -> int:
        return len(self.labels)

    def open(self, j: int):
        raise NotImplementedError

    def decode(self, positions: np.ndarray, transform: Callable, workers: int = 0,
               batch_size: int = 256) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(rows, images) chunks: images[i] is `transform` of the sample at
        positions[rows[i]], uint8 [len(rows), C, H, W]."""
        start = 0
        loader = make_loader(SplitImages(self, transform, positions), batch_size,
                             workers=workers, pin_memory=False)
        for x, _, _ in loader:
            yield np.arange(start, start + len(x)), x.numpy()
            start += len(x)


def same_classes(train: Split, val: Split) -> None:
    """Both sides of a source must list the same classes: InputError (one line) otherwise."""
    if train.classes != val.classes:
        only = sorted(set(train.classes) ^ set(val.classes))[:5]
        raise InputError(f"{train.where} has {train.num_classes} classes, {val.where} has "
                         f"{val.num_classes}; they differ (e.g. {', '.join(only) or 'in order'})")


def check_labels(split: Split) -> None:
    """Every label must name one of the split's classes: InputError (one line) otherwise."""
    labels = np.asarray(split.labels)
    bad = labels[(labels < 0) | (labels >= split.num_classes)]
    if len(bad):
        raise InputError(f"{split.where}: label {int(bad[0])} is outside its "
                         f"{split.num_classes} classes")


def names_file(root: Path | str, count: int, holder: str, order: str) -> tuple[str, ...] | None:
    """The class names in `root/classnames.txt` (blank lines skipped), or None without that
    file; InputError (one line) when it does not name `count` classes (`holder` and `order`
    word the message: "the folder has 3: give one name a line, in sorted folder order")."""
    path = Path(root) / CLASS_NAMES_FILE
    if not path.is_file():
        return None
    names = tuple(line.strip() for line in path.read_text().splitlines() if line.strip())
    if len(names) != count:
        raise InputError(f"{path} names {len(names)} classes, the {holder} has {count}: give "
                         f"one name a line, in {order}")
    return names


def parse_source_name(name: str, prefix: str, extra: dict | None = None) -> tuple[str, dict]:
    """`<prefix><body>[@key=value,...]` -> (body, options): `OPTIONS` and the source's own
    `extra` options, with their defaults where not given."""
    if not name.startswith(prefix):
        raise InputError(f"{name!r} is not a {prefix}... dataset name")
    body = name[len(prefix):].partition("@")[0]
    options = {**OPTIONS, **(extra or {})}
    preprocessing_mode(name)                  # a bad value is refused with the others
    for key, value in _given_options(name):
        if key == MODE_OPTION:
            continue
        if key not in options:
            raise InputError(f"{name!r}: unknown option {key!r}; options: {', '.join(options)}")
        try:
            options[key] = _TYPES.get(key, str)(value)
        except ValueError:
            raise InputError(f"{name!r}: option {key}={value!r} is not a "
                             f"{_TYPES[key].__name__}") from None
    return body, options


def _given_options(name: str) -> list[tuple[str, str]]:
    """The (option, value) pairs written after a name's `@`, as written."""
    return [(key, value) for key, _, value in
            (part.partition("=") for part in filter(None, name.partition("@")[2].split(",")))]


def preprocessing_mode(name: str) -> str:
    """How a file-backed dataset feeds its models (docs/protocol.md#preprocessing): `own`, each
    model decoded at its own input size, crop_pct and interpolation (the authors'), or `shared`,
    every model at the name's one; the name's `preprocessing` option, else `shared` where the name
    gives any of `SHARED_BY` (as every name meant before models were fed their own), else `own`."""
    given = dict(_given_options(name))
    mode = given.get(MODE_OPTION) or (SHARED if given.keys() & set(SHARED_BY) else OWN)
    if mode not in (OWN, SHARED):
        raise InputError(f"{name!r}: option {MODE_OPTION}={mode!r} is not {OWN} or {SHARED}")
    return mode


# ---------------------------------------------------------------- datasets and loaders

class SplitImages(torch.utils.data.Dataset):
    """(uint8 image, label, index) of a random-access split, optionally restricted to
    `indices`."""

    def __init__(self, split: Split, transform: Callable, indices=None):
        self.split, self.transform = split, transform
        self.indices = None if indices is None else np.asarray(indices, dtype=np.int64)

    def __len__(self):
        return len(self.split) if self.indices is None else len(self.indices)

    def __getitem__(self, i):
        from PIL import Image
        j = int(i if self.indices is None else self.indices[i])
        with self.split.open(j) as f, Image.open(f) as img:
            x = self.transform(img)
        return x, int(self.split.labels[j]), j


class CachedDataset(torch.utils.data.Dataset):
    """(uint8 image, label, index) from a decoded uint8 array [N, C, H, W] (memory-mapped, or
    a dataset's tensor); augmentation happens per batch on the device (`benchmark.data.augment`)."""

    def __init__(self, images, labels, indices=None):
        self.images, self.labels = images, np.asarray(labels)
        self.indices = None if indices is None else np.asarray(indices, dtype=np.int64)

    def __len__(self):
        return len(self.images) if self.indices is None else len(self.indices)

    def __getitem__(self, i):
        j = int(i if self.indices is None else self.indices[i])
        image = self.images[j]          # a memory-mapped row is copied out of the map
        x = image.clone() if torch.is_tensor(image) else torch.from_numpy(np.array(image))
        return x, int(self.labels[j]), j


def default_workers() -> int:
    """The CPUs this process may use (a SLURM job's allocation), less one, at most 16."""
    return max(0, min(16, usable_cores() - 1))


def make_loader(dataset, batch_size: int | None, shuffle: bool = False,
                workers: int | None = None, pin_memory: bool | None = None, seed: int = 0,
                drop_last: bool = False):
    """A DataLoader with workers, pinned memory on CUDA machines, persistent workers and a
    seeded shuffle (the same order for the same seed); `batch_size` None: items as they come."""
    workers = default_workers() if workers is None else workers
    pin = torch.cuda.is_available() if pin_memory is None else pin_memory
    extra = dict(persistent_workers=True, prefetch_factor=4) if workers > 0 else {}
    return torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle, num_workers=workers, pin_memory=pin,
        drop_last=drop_last, generator=torch.Generator().manual_seed(seed), **extra)


def decode_into(out: np.ndarray, split: Split, positions: np.ndarray, cfg: dict,
                workers: int = 0, batch_size: int = 256) -> np.ndarray:
    """`out` [len(positions), *input_size] filled with the split's samples at `positions`,
    decoded with `decode_transform(cfg)`."""
    filled = np.zeros(len(positions), dtype=bool)
    for rows, x in split.decode(np.asarray(positions, dtype=np.int64), decode_transform(cfg),
                                workers, batch_size):
        out[rows] = x
        filled[rows] = True
    if not filled.all():
        raise RuntimeError(f"{split.where}: {int((~filled).sum())} samples were not read")
    return out


def decoded_cache(split: Split, cfg: dict, folder: Path | str, indices=None,
                  workers: int | None = None, batch_size: int = 256,
                  wait_s: float = 6 * 3600) -> np.ndarray:
    """A uint8 [N, C, H, W] memory-mapped array of `split` (or its `indices`) decoded with
    `decode_transform(cfg)`, built once into `folder` (e.g. node-local disk or /dev/shm) and
    shared by every job on the node: one builder at a time (a lock file), others wait."""
    size = tuple(cfg["input_size"])
    key = hashlib.sha256(repr((split.where, len(split), labels_digest(split.labels),
                               size, cfg.get("crop_pct"), cfg.get("interpolation"),
                               None if indices is None else labels_digest(indices)))
                         .encode()).hexdigest()[:16]
    path = Path(folder) / f"decoded-{size[1]}x{size[2]}-{key}.npy"
    lock = path.with_suffix(".lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait_s
    while not path.exists():
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{lock} held for over {wait_s:.0f} s; remove it if stale")
            time.sleep(2.0)
            continue
        os.close(fd)
        try:
            if not path.exists():
                _build_decoded(split, cfg, path, indices, workers, batch_size)
        finally:
            lock.unlink(missing_ok=True)
    return np.load(path, mmap_mode="r")


def _build_decoded(split, cfg, path, indices, workers, batch_size) -> None:
    from results.store import atomic_path
    positions = np.arange(len(split)) if indices is None else np.asarray(indices)
    workers = default_workers() if workers is None else workers
    with atomic_path(path, suffix=".npy") as tmp:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8,
                                        shape=(len(positions), *cfg["input_size"]))
        decode_into(out, split, positions, cfg, workers, batch_size)
        out.flush()
        del out


# ---------------------------------------------------------------- `load_dataset` registration

def register_splits(name: str, train: Split, val: Split, root: str, size: int = 224,
                    crop_pct: float = 0.875, interpolation: str = "bilinear", channels: int = 3,
                    subset: float | None = None) -> str:
    """Register (train, val) of the source at `root` as dataset `name` for `load_dataset`:
    decoded once at `size` (timm's eval resize + centre crop) into uint8 arrays in the cache.
    `subset` (e.g. 0.1) keeps the stratified subset of train (seed 1234)."""
    same_classes(train, val)
    definition = dict(
        version=1, num_classes=train.num_classes, root=root, size=size, crop_pct=crop_pct,
        interpolation=interpolation, channels=channels, subset=subset,
        classes_digest=hashlib.sha256("\n".join(train.classes).encode()).hexdigest()[:16],
        train_digest=train.digest, val_digest=val.digest)

    def build(d: dict) -> dict:
        cfg = dict(input_size=(d["channels"], d["size"], d["size"]), crop_pct=d["crop_pct"],
                   interpolation=d["interpolation"])
        arrays = {}
        for side, split in (("train", train), ("eval", val)):
            check_labels(split)
            idx = np.arange(len(split))
            if side == "train" and d["subset"]:
                idx = np.sort(stratified_subset(split.labels, d["subset"]))
            arrays[f"{side}_x"] = decode_into(np.empty((len(idx), *cfg["input_size"]), np.uint8),
                                              split, idx, cfg)
            arrays[f"{side}_y"] = np.asarray(split.labels)[idx]
            arrays[f"{side}_sources"] = idx.astype(np.int64)
        return arrays

    register_dataset(name, **definition)(build)
    return name
