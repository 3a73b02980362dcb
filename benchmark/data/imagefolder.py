"""ImageFolder / ImageNet data: the paper's 10% transfer subset, per-model preprocessing, fast input.

- Folders follow `torchvision.datasets.ImageFolder`: one sub-folder per class, classes in sorted
  order, so label i is the i-th sorted folder (ImageNet: the i-th sorted synset, as timm's heads).
  ImageNet is `<root>/train` and `<root>/val`, each with the same class folders.
- The transfer set (docs/protocol.md#data) is the *test* side of
  `StratifiedShuffleSplit(n_splits=1, test_size=0.1, random_state=1234)` over the train labels,
  saved once as an `.npy` index file so every job trains on the same images.
- Preprocessing comes from each model's `pretrained_cfg` (timm's `resolve_data_config`).
  Training (docs/protocol.md#training): decode with a centre crop at the *student's* input size and crop_pct
  (no RandomResizedCrop); batches travel as uint8 [B, C, H, W] and are augmented on the device
  (`benchmark.data.augment`: hflip, colour distortion, grayscale); every model in a step sees the
  same batch and normalises it with its own mean/std (`benchmark.data.datasets.standardize`).
- `imagefolder:<path>[@size=..,crop_pct=..,subset=..]` names a dataset that `load_dataset`
  decodes into memory (small folders: tests, CIFAR-sized sets); large sets go through
  `FolderDataset`/`CachedDataset` and `make_loader`.
- Class names (`folder_class_names`): `<root>/classnames.txt` (one name a line, in class order)
  when the folder has one; else, when every class folder is an ImageNet synset (n01440764), timm's
  description of it; else the folder names. Dataset `imagenet` (the timm zoo's) takes timm's 1000
  descriptions in synset order.
"""
import hashlib
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch

from benchmark.data.datasets import (normalize, register_class_names, register_dataset,
                                     register_source)

SUBSET_TEST_SIZE = 0.1
SUBSET_SEED = 1234
CLASS_NAMES_FILE = "classnames.txt"
IMAGENET = "imagenet"


# ---------------------------------------------------------------- folders and classes

@dataclass(frozen=True)
class FolderSplit:
    root: Path
    classes: tuple[str, ...]
    paths: tuple[str, ...]
    labels: np.ndarray          # int64 [N]

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def scan_folder(root: Path | str) -> FolderSplit:
    """`torchvision.datasets.ImageFolder` semantics: sorted class folders, image files by
    torchvision's extensions, sorted within each class."""
    from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder {root} does not exist")
    try:
        classes, class_to_idx = find_classes(str(root))
        samples = make_dataset(str(root), class_to_idx, extensions=IMG_EXTENSIONS)
    except FileNotFoundError as e:
        raise FileNotFoundError(f"image folder {root}: {e}") from None
    return FolderSplit(root, tuple(classes), tuple(p for p, _ in samples),
                       np.asarray([y for _, y in samples], dtype=np.int64))


def imagenet_splits(root: Path | str, train: str = "train",
                    val: str = "val") -> tuple[FolderSplit, FolderSplit]:
    """(train, val) of an ImageNet-style folder; both sides must list the same classes."""
    root = Path(root)
    tr, va = scan_folder(root / train), scan_folder(root / val)
    if tr.classes != va.classes:
        only = sorted(set(tr.classes) ^ set(va.classes))[:5]
        raise ValueError(f"{root}: {train}/ has {tr.num_classes} classes, {val}/ has "
                         f"{va.num_classes}; they differ (e.g. {', '.join(only) or 'in order'})")
    return tr, va


def check_classes(classes: Iterable[str] | int, entries) -> None:
    """Every model's head must have one output per class: ValueError (one line) otherwise."""
    n = classes if isinstance(classes, int) else len(list(classes))
    bad = [f"{e.name} ({e.num_classes})" for e in entries if e.num_classes != n]
    if bad:
        raise ValueError(f"the dataset has {n} classes but these models' heads do not match: "
                         + ", ".join(bad))


# ---------------------------------------------------------------- the 10% transfer subset

def stratified_subset(labels, test_size: float = SUBSET_TEST_SIZE,
                      seed: int = SUBSET_SEED) -> np.ndarray:
    """The test indices of `StratifiedShuffleSplit(n_splits=1, test_size, random_state=seed)`
    over `labels`, in sklearn's order (the official `get_imagenet_subset`)."""
    from sklearn.model_selection import StratifiedShuffleSplit
    labels = np.asarray(labels)
    split = StratifiedShuffleSplit(n_splits=1, test_size=test_size, random_state=seed)
    _, test = next(split.split(np.zeros(len(labels)), labels))
    return test.astype(np.int64)


def labels_digest(labels) -> str:
    return hashlib.sha256(np.ascontiguousarray(np.asarray(labels, dtype=np.int64))
                          .tobytes()).hexdigest()[:12]


def subset_path(folder: Path | str, labels, test_size: float = SUBSET_TEST_SIZE,
                seed: int = SUBSET_SEED) -> Path:
    pct = f"{test_size * 100:g}p"
    return Path(folder) / f"subset-{pct}-seed{seed}-{len(labels)}-{labels_digest(labels)}.npy"


def ensure_subset(labels, path: Path | str, test_size: float = SUBSET_TEST_SIZE,
                  seed: int = SUBSET_SEED) -> np.ndarray:
    """The subset's indices from `path`, written there first (atomically) when missing.
    A file that does not fit the labels is an error, never silently replaced."""
    path = Path(path)
    labels = np.asarray(labels)
    if not path.exists():
        _save_npy_atomic(path, stratified_subset(labels, test_size, seed))
    indices = np.load(path, allow_pickle=False)
    expected = _n_test(len(labels), test_size)
    if indices.ndim != 1 or len(indices) != expected or (
            len(indices) and (indices.min() < 0 or indices.max() >= len(labels))):
        raise ValueError(f"subset file {path} holds {len(indices)} indices, expected "
                         f"{expected} within 0..{len(labels) - 1}: it was made for other labels")
    return indices


def _n_test(n: int, test_size: float) -> int:
    return math.ceil(test_size * n) if isinstance(test_size, float) else int(test_size)


def _save_npy_atomic(path: Path, array: np.ndarray) -> None:
    from results.store import atomic_path
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, array, allow_pickle=False)


# ---------------------------------------------------------------- per-model preprocessing

def data_config(entry=None, model: torch.nn.Module | None = None) -> dict:
    """timm's data config (input_size, interpolation, mean, std, crop_pct, crop_mode) from the
    model's `pretrained_cfg`; the catalog entry's input_size/mean/std win where given."""
    from timm.data import resolve_data_config
    args = {}
    if entry is not None:
        args = dict(input_size=tuple(entry.input_size), mean=tuple(entry.mean),
                    std=tuple(entry.std))
    if model is None and entry is not None:
        import timm
        cfg = timm.models.get_pretrained_cfg(entry.arch)
        pretrained_cfg = cfg.to_dict() if cfg is not None else {}
        return resolve_data_config(args, pretrained_cfg=pretrained_cfg)
    return resolve_data_config(args, model=model)


def eval_transform(cfg: dict) -> Callable:
    """PIL -> normalised float tensor, exactly timm's eval transform for this config."""
    from timm.data import create_transform
    return create_transform(**cfg, is_training=False)


def decode_transform(cfg: dict) -> Callable:
    """PIL -> uint8 [C, H, W]: timm's eval resize + centre crop (input size, crop_pct,
    interpolation), without normalisation."""
    from timm.data.transforms_factory import transforms_imagenet_eval
    from torchvision import transforms as T
    steps = transforms_imagenet_eval(
        img_size=tuple(cfg["input_size"][-2:]), crop_pct=cfg.get("crop_pct"),
        crop_mode=cfg.get("crop_mode"), interpolation=cfg.get("interpolation", "bilinear"),
        normalize=False).transforms
    keep = [t for t in steps if type(t).__name__ not in ("ToTensor", "MaybeToTensor",
                                                          "MaybePILToTensor", "PILToTensor")]
    channels = cfg["input_size"][0]
    return T.Compose([_Convert("L" if channels == 1 else "RGB"), *keep, T.PILToTensor()])


class _Convert:
    def __init__(self, mode: str):
        self.mode = mode

    def __call__(self, img):
        return img.convert(self.mode) if getattr(img, "mode", self.mode) != self.mode else img


def normalize_for(batch_uint8: torch.Tensor, cfg: dict) -> torch.Tensor:
    """One model's view of a shared uint8 batch: its own mean/std (docs/protocol.md#training)."""
    return normalize(batch_uint8, cfg["mean"], cfg["std"])


# ---------------------------------------------------------------- datasets and loaders

class FolderDataset(torch.utils.data.Dataset):
    """(uint8 image, label, index) from image files, optionally restricted to `indices`."""

    def __init__(self, split: FolderSplit, transform: Callable, indices=None):
        self.split, self.transform = split, transform
        self.indices = None if indices is None else np.asarray(indices, dtype=np.int64)

    def __len__(self):
        return len(self.split.paths) if self.indices is None else len(self.indices)

    def __getitem__(self, i):
        from PIL import Image
        j = int(i if self.indices is None else self.indices[i])
        with Image.open(self.split.paths[j]) as img:
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
    return max(0, min(16, len(os.sched_getaffinity(0)) - 1))


def make_loader(dataset, batch_size: int, shuffle: bool = False, workers: int | None = None,
                pin_memory: bool | None = None, seed: int = 0, drop_last: bool = False):
    """A DataLoader with workers, pinned memory on CUDA machines, persistent workers and a
    seeded shuffle (the same order for the same seed)."""
    workers = default_workers() if workers is None else workers
    pin = torch.cuda.is_available() if pin_memory is None else pin_memory
    extra = dict(persistent_workers=True, prefetch_factor=4) if workers > 0 else {}
    return torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle, num_workers=workers, pin_memory=pin,
        drop_last=drop_last, generator=torch.Generator().manual_seed(seed), **extra)


def decoded_cache(split: FolderSplit, cfg: dict, folder: Path | str, indices=None,
                  workers: int | None = None, batch_size: int = 256,
                  wait_s: float = 6 * 3600) -> np.ndarray:
    """A uint8 [N, C, H, W] memory-mapped array of `split` (or its `indices`) decoded with
    `decode_transform(cfg)`, built once into `folder` (e.g. node-local disk or /dev/shm) and
    shared by every job on the node: one builder at a time (a lock file), others wait."""
    size = tuple(cfg["input_size"])
    key = hashlib.sha256(repr((str(split.root), len(split.paths), labels_digest(split.labels),
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
    dataset = FolderDataset(split, decode_transform(cfg), indices)
    with atomic_path(path, suffix=".npy") as tmp:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8,
                                        shape=(len(dataset), *cfg["input_size"]))
        start = 0
        for x, _, _ in make_loader(dataset, batch_size, workers=workers, pin_memory=False):
            out[start:start + len(x)] = x.numpy()
            start += len(x)
        out.flush()
        del out


# ---------------------------------------------------------------- `load_dataset` registration

PREFIX = "imagefolder:"
_DEFAULTS = dict(size=224, crop_pct=0.875, interpolation="bilinear", channels=3, subset=None)


def parse_name(name: str) -> tuple[Path, dict]:
    """`imagefolder:<path>[@size=32,crop_pct=1,subset=0.1]` -> (path, options)."""
    if not name.startswith(PREFIX):
        raise ValueError(f"{name!r} is not an {PREFIX}<path> dataset name")
    body = name[len(PREFIX):]
    path, _, opts = body.partition("@")
    options = dict(_DEFAULTS)
    for part in filter(None, opts.split(",")):
        key, _, value = part.partition("=")
        if key not in options:
            raise ValueError(f"{name!r}: unknown option {key!r}; options: {', '.join(_DEFAULTS)}")
        options[key] = value if key == "interpolation" else (
            int(value) if key in ("size", "channels") else float(value))
    return Path(path).expanduser().resolve(), options


def _folder_digest(split: FolderSplit) -> str:
    h = hashlib.sha256()
    for p in split.paths:
        h.update(os.path.relpath(p, split.root).encode())
        h.update(str(os.path.getsize(p)).encode())
    return h.hexdigest()[:16]


def register_imagefolder(name: str, root: Path | str, size: int = 224, crop_pct: float = 0.875,
                         interpolation: str = "bilinear", channels: int = 3,
                         subset: float | None = None) -> str:
    """Register `root` (with train/ and val/) as dataset `name` for `load_dataset`: decoded
    once at `size` (timm's eval resize + centre crop) into uint8 arrays in the cache.
    `subset` (e.g. 0.1) keeps the stratified subset of train (seed 1234)."""
    train, val = imagenet_splits(root)
    definition = dict(
        version=1, num_classes=train.num_classes, root=str(Path(root).resolve()), size=size,
        crop_pct=crop_pct, interpolation=interpolation, channels=channels, subset=subset,
        classes_digest=hashlib.sha256("\n".join(train.classes).encode()).hexdigest()[:16],
        train_digest=_folder_digest(train), val_digest=_folder_digest(val))

    def build(d: dict) -> dict:
        cfg = dict(input_size=(d["channels"], d["size"], d["size"]), crop_pct=d["crop_pct"],
                   interpolation=d["interpolation"])
        arrays = {}
        for side, split in (("train", train), ("eval", val)):
            idx = np.arange(len(split.paths))
            if side == "train" and d["subset"]:
                idx = np.sort(stratified_subset(split.labels, d["subset"]))
            ds = FolderDataset(split, decode_transform(cfg), idx)
            xs = [x for x, _, _ in make_loader(ds, 256, workers=0, pin_memory=False)]
            arrays[f"{side}_x"] = torch.cat(xs).numpy() if xs else np.zeros(
                (0, *cfg["input_size"]), np.uint8)
            arrays[f"{side}_y"] = split.labels[idx]
            arrays[f"{side}_sources"] = idx.astype(np.int64)
        return arrays

    register_dataset(name, **definition)(build)
    return name


def register_from_name(name: str) -> str:
    """Register an `imagefolder:<path>[@options]` name (called by `load_dataset`)."""
    root, options = parse_name(name)
    return register_imagefolder(name, root, **options)


def classes_of(name_or_root: str | Path) -> tuple[str, ...]:
    """The class order (sorted folder names) of an `imagefolder:` dataset or a folder root,
    from the class folders alone (no walk over the images)."""
    from torchvision.datasets.folder import find_classes
    s = str(name_or_root)
    root = parse_name(s)[0] if s.startswith(PREFIX) else Path(s)
    folder = root / "train" if (root / "train").is_dir() else root
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder {folder} does not exist")
    try:
        return tuple(find_classes(str(folder))[0])
    except FileNotFoundError as e:
        raise FileNotFoundError(f"image folder {folder}: {e}") from None


def imagenet_descriptions(synsets=None) -> tuple[str, ...]:
    """timm's descriptions of ImageNet-1k classes ("tench, Tinca tinca"): all 1000 in synset
    order, or those of `synsets` (KeyError naming one timm does not know)."""
    from timm.data import ImageNetInfo
    info = ImageNetInfo()
    if synsets is None:
        return tuple(info.label_descriptions())
    described = info.label_descriptions(as_dict=True)
    return tuple(described[s] for s in synsets)


def folder_class_names(name_or_root: str | Path) -> tuple[str, ...]:
    """Readable class names of an `imagefolder:` dataset or a folder root, in class order: the
    root's `classnames.txt`, else timm's descriptions when every class is an ImageNet synset,
    else the folder names ('_' read as a space). A names file must have one name per class."""
    s = str(name_or_root)
    root = parse_name(s)[0] if s.startswith(PREFIX) else Path(s)
    folders = classes_of(root)
    names_file = root / CLASS_NAMES_FILE
    if names_file.is_file():
        names = tuple(line.strip() for line in names_file.read_text().splitlines() if line.strip())
        if len(names) != len(folders):
            raise ValueError(f"{names_file} names {len(names)} classes, the folder has "
                             f"{len(folders)}: give one name a line, in sorted folder order")
        return names
    try:
        return imagenet_descriptions(folders)
    except KeyError:
        return tuple(f.replace("_", " ") for f in folders)


register_source(PREFIX, register_from_name, classes_of, folder_class_names)
register_class_names(IMAGENET, imagenet_descriptions)
