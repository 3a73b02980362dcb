"""Image folders: `imagefolder:<path>[@options]` datasets (ImageNet as `<root>/train` and
`<root>/val`).

Folders follow `torchvision.datasets.ImageFolder`: one sub-folder per class, classes in sorted
order, so label i is the i-th sorted folder (ImageNet: the i-th sorted synset, as timm's heads),
image files sorted within each class. That order is the paper's: its 10% transfer subset is drawn
over the train labels in it (timm's own folder reader sorts "naturally", `img10` after `img9`,
which would pick other images), so folders are scanned with torchvision's helpers and read
through the shared split machinery (`benchmark.data.splits`).

Class names (`folder_class_names`): `<root>/classnames.txt` (one name a line, in class order) when
the folder has one; else, when every class folder is an ImageNet synset (n01440764), timm's
description of it; else the folder names. Dataset `imagenet` takes timm's 1000 descriptions in
synset order.
"""
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmark.data.datasets import register_class_names, register_source
from benchmark.data.splits import (Split, names_file, parse_source_name, register_splits,
                                   same_classes)
from results.errors import InputError

IMAGENET = "imagenet"


@dataclass(frozen=True)
class FolderSplit(Split):
    root: Path
    classes: tuple[str, ...]
    paths: tuple[str, ...]
    labels: np.ndarray          # int64 [N]

    @property
    def where(self) -> str:
        return str(self.root)

    @property
    def names(self) -> tuple[str, ...]:
        """Each image's path relative to the split's folder (`n01440764/x.JPEG`)."""
        return tuple(os.path.relpath(p, self.root) for p in self.paths)

    @property
    def digest(self) -> str:
        h = hashlib.sha256()
        for p in self.paths:
            h.update(os.path.relpath(p, self.root).encode())
            h.update(str(os.path.getsize(p)).encode())
        return h.hexdigest()[:16]

    def open(self, j: int):
        return open(self.paths[j], "rb")


def scan_folder(root: Path | str) -> FolderSplit:
    """`torchvision.datasets.ImageFolder` semantics: sorted class folders, image files by
    torchvision's extensions, sorted within each class."""
    from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"image folder {root} does not exist")
    try:
        classes, class_to_idx = find_classes(str(root))
        samples = make_dataset(str(root), class_to_idx, extensions=IMG_EXTENSIONS)
    except FileNotFoundError as e:
        raise InputError(f"image folder {root}: {e}") from None
    return FolderSplit(root, tuple(classes), tuple(p for p, _ in samples),
                       np.asarray([y for _, y in samples], dtype=np.int64))


def imagenet_splits(root: Path | str, train: str = "train",
                    val: str = "val") -> tuple[FolderSplit, FolderSplit]:
    """(train, val) of an ImageNet-style folder; both sides must list the same classes."""
    root = Path(root)
    tr, va = scan_folder(root / train), scan_folder(root / val)
    same_classes(tr, va)
    return tr, va


PREFIX = "imagefolder:"


def parse_name(name: str) -> tuple[Path, dict]:
    """`imagefolder:<path>[@size=32,crop_pct=1,subset=0.1]` -> (path, options)."""
    path, options = parse_source_name(name, PREFIX)
    return Path(path).expanduser().resolve(), options


def register_imagefolder(name: str, root: Path | str, **options) -> str:
    """Register `root` (with train/ and val/) as dataset `name` for `load_dataset`, with the
    options of `benchmark.data.splits.register_splits` (size, crop_pct, interpolation,
    channels, subset)."""
    return register_splits(name, *imagenet_splits(root), root=str(Path(root).resolve()),
                           **options)


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
        raise InputError(f"image folder {folder} does not exist")
    try:
        return tuple(find_classes(str(folder))[0])
    except FileNotFoundError as e:
        raise InputError(f"image folder {folder}: {e}") from None


def eval_split(name: str) -> FolderSplit:
    """The `val/` side of an `imagefolder:` dataset, without decoding it."""
    return imagenet_splits(parse_name(name)[0])[1]


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
    names = names_file(root, len(folders), "folder", "sorted folder order")
    if names is not None:
        return names
    try:
        return imagenet_descriptions(folders)
    except KeyError:
        return tuple(f.replace("_", " ") for f in folders)


register_source(PREFIX, register_from_name, classes_of, names=folder_class_names,
                eval_split=eval_split)
register_class_names(IMAGENET, imagenet_descriptions)
