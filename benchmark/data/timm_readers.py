"""Datasets read through timm's readers: Hugging Face datasets (`hfds:`) and WebDataset shards
(`wds:`), with the options, class checks, transfer subset and decoded caches image folders get
(`benchmark.data.splits`).

- `hfds:<folder or hub name>[@options]`: timm's `ReaderHfds`, i.e. `datasets.load_dataset`: a
  folder of data files with a train and a validation split (the hub's `imagenet-1k` is Parquet),
  or a hub name found in the local Hugging Face cache. Options `train`, `eval` (split names,
  default train and validation), `image`, `label` (columns, default image and label), `classes`
  (the class count; default the label column's `ClassLabel` names, else the largest label + 1).
- `wds:<shard folder>[@options]`: timm's `ReaderWds` resolves each split, by name from the
  folder's `_info.json` (timm's format) or as a shard pattern such as
  `imagenet-train-{0000..1023}.tar`; a sample is an image (`.jpg`, `.png` or `.webp`, timm's
  default keys) and its class index (`.cls`). Options `train`, `eval` (default train and
  validation) and `classes` (the class count: shards do not record it).

Shards are read in order, one shard after another: a first pass reads the labels (no image is
decoded), so that only the images a dataset keeps (the stratified subset) are decoded.

Readable class names (`class_names`): a `classnames.txt` in the local folder (one name a line, in
class index order) when it has one; else the label column's `ClassLabel` names (hfds); else the
class indices ("0", "1", ...: shards record no names).
"""
import contextlib
import functools
import hashlib
import io
import logging
from pathlib import Path

import numpy as np
import torch

from benchmark.data.datasets import register_source
from benchmark.data.splits import (OPTIONS, Split, make_loader, names_file,
                                   parse_source_name, register_splits)
from results.errors import InputError

HFDS, WDS = "hfds:", "wds:"
_HFDS_OPTIONS = dict(train="train", eval="validation", image="image", label="label",
                     classes=None)
_WDS_OPTIONS = dict(train="train", eval="validation", classes=None)
IMAGE_KEYS = ("jpg", "png", "webp")


def _first_line(error: BaseException) -> str:
    text = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
    return str(text).strip().splitlines()[0] if str(text).strip() else type(error).__name__


# ---------------------------------------------------------------- Hugging Face datasets

@contextlib.contextmanager
def _no_progress_bars():
    """Hugging Face datasets draws progress bars on stderr while it prepares a dataset."""
    import datasets
    shown = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if shown:
            datasets.enable_progress_bars()


class HfdsSplit(Split):
    """One split of a Hugging Face dataset through timm's `ReaderHfds` (images left encoded)."""

    def __init__(self, source: str, split: str, image: str, label: str):
        from timm.data.readers.reader_hfds import ReaderHfds
        self.where = f"{HFDS}{source} [{split}]"
        try:
            with _no_progress_bars():
                self.reader = ReaderHfds(source, split=split, input_key=image, target_key=label)
        except OSError as e:            # no such folder, or a hub name not in the cache
            raise InputError(f"{self.where}: {_first_line(e)}") from None
        except (ValueError, KeyError) as e:      # an unknown split or image column
            raise InputError(f"{self.where}: {_first_line(e)}") from None
        table = self.reader.dataset.data
        if label not in table.column_names:
            raise InputError(f"{self.where}: no label column {label!r} (columns: "
                             f"{', '.join(table.column_names)}); name it with @label=COLUMN")
        column = table.column(label)
        import pyarrow as pa
        if not pa.types.is_integer(column.type):
            raise InputError(f"{self.where}: label column {label!r} holds {column.type}, not "
                             "class indices")
        self.labels = column.to_numpy().astype(np.int64)
        self.image = image
        by_index = sorted(self.reader.class_to_idx.items(), key=lambda item: item[1])
        self.classes = tuple(name for name, _ in by_index)

    @property
    def names(self) -> tuple[str, ...]:
        """Each image's stored path (the original file name, where the dataset kept one)."""
        import pyarrow.compute as pc
        paths = pc.struct_field(self.reader.dataset.data.column(self.image), "path")
        return tuple(p or "" for p in paths.to_pylist())

    @property
    def digest(self) -> str:
        h = hashlib.sha256(str(len(self)).encode())
        for f in self.reader.dataset.cache_files:
            h.update(f"{Path(f['filename']).name}:{Path(f['filename']).stat().st_size}".encode())
        return h.hexdigest()[:16]

    def open(self, j: int):
        return self.reader[j][0]


def _hfds_source(body: str) -> str:
    """A local folder (as an absolute path) or a hub name (as given)."""
    path = Path(body).expanduser()
    if path.exists():
        return str(path.resolve())
    if body.startswith(("/", ".", "~")) or not body:
        raise InputError(f"{HFDS}{body}: folder {path} does not exist")
    return body


@functools.lru_cache(maxsize=8)
def hfds_splits(name: str) -> tuple[HfdsSplit, HfdsSplit, str, dict]:
    """(train, eval, source, options) of an `hfds:` name; each split's classes are the
    `classes` option's count, else the label column's names, else the largest label + 1."""
    body, options = parse_source_name(name, HFDS, _HFDS_OPTIONS)
    source = _hfds_source(body)
    train, val = (HfdsSplit(source, options[side], options["image"], options["label"])
                  for side in ("train", "eval"))
    n = options.pop("classes")
    top = int(max(train.labels.max(initial=-1), val.labels.max(initial=-1))) + 1
    for split in (train, val):
        if not split.classes:                  # a plain integer column: classes by number
            split.classes = tuple(map(str, range(top if n is None else n)))
        elif n is not None and split.num_classes != n:
            raise InputError(f"{split.where}: classes={n}, but its label column names "
                             f"{split.num_classes} classes")
    return train, val, source, {k: options[k] for k in OPTIONS}


# ---------------------------------------------------------------- WebDataset shards

@contextlib.contextmanager
def _quiet(logger: str):
    """timm's WebDataset reader warns (on stderr) when a folder has no `_info.json`: a shard
    pattern needs none."""
    log = logging.getLogger(logger)
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


def _samples(shard: Path):
    """The samples of one shard, in order, as webdataset gives them (bytes per file suffix)."""
    import webdataset as wds
    return wds.DataPipeline(wds.SimpleShardList([str(shard)]), wds.tarfile_to_samples())


class WdsSplit(Split):
    """One split of WebDataset shards, resolved by timm's `ReaderWds`, read shard by shard."""

    def __init__(self, root: Path, spec: str, classes: tuple[str, ...]):
        from timm.data.readers.reader_wds import ReaderWds
        self.where, self.classes = f"{WDS}{root} [{spec}]", classes
        try:
            with _quiet("timm.data.readers.reader_wds"):
                info = ReaderWds(str(root), split=spec).split_info
        except (RuntimeError, ValueError, KeyError) as e:
            raise InputError(f"{self.where}: {_first_line(e)} (name a split of the folder's "
                             "_info.json, or shards such as name-{0000..0099}.tar)") from None
        self.shards = tuple(root / f for f in info.filenames)
        if missing := [s for s in self.shards if not s.is_file()]:
            raise InputError(f"{self.where}: shard {missing[0]} does not exist")
        if not self.shards:
            raise InputError(f"{self.where}: no shards")
        first = next(iter(_samples(self.shards[0])), None)     # a cheap look at the format
        if first is None or "cls" not in first or not any(k in first for k in IMAGE_KEYS):
            raise InputError(f"{self.where}: {self.shards[0].name} does not hold samples of an "
                             f"image ({', '.join(IMAGE_KEYS)}) and a class index (.cls)")

    @functools.cached_property
    def _index(self) -> tuple[np.ndarray, tuple[str, ...], np.ndarray]:
        """(labels, sample keys, first position of each shard and the total) in one pass over
        the shards that decodes no image."""
        labels, keys, offsets = [], [], [0]
        for shard in self.shards:
            for sample in _samples(shard):
                if "cls" not in sample:
                    raise InputError(f"{self.where}: sample {sample['__key__']!r} in "
                                     f"{shard.name} has no class index (.cls)")
                labels.append(int(sample["cls"]))
                keys.append(sample["__key__"])
            offsets.append(len(labels))
        return np.asarray(labels, dtype=np.int64), tuple(keys), np.asarray(offsets)

    @property
    def labels(self) -> np.ndarray:
        return self._index[0]

    @property
    def names(self) -> tuple[str, ...]:
        """Each sample's key (its file name in the shard, without the suffix)."""
        return self._index[1]

    @property
    def digest(self) -> str:
        h = hashlib.sha256()
        for shard in self.shards:
            h.update(f"{shard.name}:{shard.stat().st_size}".encode())
        return h.hexdigest()[:16]

    def decode(self, positions, transform, workers=0, batch_size=256):
        """Per shard, its wanted samples (each shard read once, in order)."""
        offsets = self._index[2]
        shard_of = np.searchsorted(offsets, positions, side="right") - 1
        items = [(int(s), np.flatnonzero(shard_of == s)) for s in np.unique(shard_of)]
        shards = _ShardImages(self, items, np.asarray(positions) - offsets[shard_of], transform)
        for rows, x in make_loader(shards, None, workers=workers, pin_memory=False):
            yield np.asarray(rows), np.asarray(x)


class _ShardImages(torch.utils.data.Dataset):
    """Item i: (rows, uint8 images) of the wanted samples of one shard."""

    def __init__(self, split: WdsSplit, items: list, within: np.ndarray, transform):
        self.split, self.items, self.within, self.transform = split, items, within, transform

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        from PIL import Image
        shard, rows = self.items[i]
        wanted: dict[int, list[int]] = {}      # sample in the shard -> its places in `out`
        for place, row in enumerate(rows):
            wanted.setdefault(int(self.within[row]), []).append(place)
        out, found = None, 0
        for k, sample in enumerate(_samples(self.split.shards[shard])):
            if k not in wanted:
                continue
            key = next((key for key in IMAGE_KEYS if key in sample), None)
            if key is None:
                raise InputError(f"{self.split.where}: sample {sample['__key__']!r} has no "
                                 f"image ({', '.join(IMAGE_KEYS)})")
            with Image.open(io.BytesIO(sample[key])) as img:
                x = self.transform(img).numpy()
            if out is None:
                out = np.empty((len(rows), *x.shape), np.uint8)
            out[wanted[k]] = x
            found += 1
            if found == len(wanted):
                break
        return rows, out


@functools.lru_cache(maxsize=8)
def wds_splits(name: str) -> tuple[WdsSplit, WdsSplit, str, dict]:
    """(train, eval, root, options) of a `wds:` name."""
    body, options = parse_source_name(name, WDS, _WDS_OPTIONS)
    root = Path(body).expanduser().resolve()
    if not root.is_dir():
        raise InputError(f"{WDS}{body}: shard folder {root} does not exist")
    n = options.pop("classes")
    if n is None:
        raise InputError(f"{name}: give the number of classes, e.g. @classes=1000 (webdataset "
                         "shards do not record it)")
    classes = tuple(map(str, range(n)))
    train, val = (WdsSplit(root, options[side], classes) for side in ("train", "eval"))
    return train, val, str(root), {k: options[k] for k in OPTIONS}


def register_reader_source(prefix: str, splits_of) -> None:
    """Datasets named `<prefix>...` from `splits_of(name)` -> (train, eval, root, options)."""
    def register(name: str) -> str:
        train, val, root, options = splits_of(name)
        return register_splits(name, train, val, root=root, **options)

    def class_names(name: str) -> tuple[str, ...]:
        train, _, root, _ = splits_of(name)
        names = (names_file(root, train.num_classes, "dataset", "class index order")
                 if Path(root).is_dir() else None)       # hfds: a folder, or a hub name
        return train.classes if names is None else names
    register_source(prefix, register, lambda name: splits_of(name)[0].classes,
                    names=class_names, eval_split=lambda name: splits_of(name)[1])


register_reader_source(HFDS, hfds_splits)
register_reader_source(WDS, wds_splits)
