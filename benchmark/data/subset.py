"""The paper's transfer subset (docs/protocol.md#data): the *test* side of
`StratifiedShuffleSplit(n_splits=1, test_size=0.1, random_state=1234)` over the train labels, in
the source's sample order, optionally kept as an `.npy` index file so every job trains on the
same images."""
import hashlib
import math
from pathlib import Path

import numpy as np

from results.errors import InputError

SUBSET_TEST_SIZE = 0.1
SUBSET_SEED = 1234


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
        raise InputError(f"subset file {path} holds {len(indices)} indices, expected "
                         f"{expected} within 0..{len(labels) - 1}: it was made for other labels")
    return indices


def _n_test(n: int, test_size: float) -> int:
    return math.ceil(test_size * n) if isinstance(test_size, float) else int(test_size)


def _save_npy_atomic(path: Path, array: np.ndarray) -> None:
    from results.store import atomic_path
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, array, allow_pickle=False)
