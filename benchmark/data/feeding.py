"""Which decode of a dataset each model is fed (docs/protocol.md#preprocessing): the one rule.

A built-in dataset's arrays come decoded: every model gets them. A file-backed dataset
(`imagefolder:`, `hfds:`, `wds:`) feeds each model its own preprocessing by default, the input
size, crop_pct and interpolation it was made for (`own_preprocessing`), decoded once per
distinct preprocessing into the cache; a name in `shared` mode
(`benchmark.data.splits.preprocessing_mode`) feeds every model its one decode. A transfer run
is fed its student's decode; a teacher of another input size gets the same batch resized to
its own (`teacher_size`).
"""
from pathlib import Path

from benchmark.data.datasets import Dataset, Preprocessing, decoded_from_files, load_dataset
from benchmark.data.preprocess import dataset_preprocessing, own_preprocessing
from benchmark.data.splits import OWN, preprocessing_mode
from pairs.catalog import ModelEntry


def feeds_own(dataset: str) -> bool:
    """Whether `dataset` feeds each model its own preprocessing (read from the name alone)."""
    return decoded_from_files(dataset) and preprocessing_mode(dataset) == OWN


def fed_preprocessing(entry: ModelEntry, dataset: str) -> Preprocessing | None:
    """The decode `entry` is fed of `dataset`: its own, or the dataset's shared one; None for a
    built-in dataset."""
    if feeds_own(dataset):
        return own_preprocessing(entry)
    return dataset_preprocessing(dataset) if decoded_from_files(dataset) else None


def load_for(entry: ModelEntry, dataset: str, cache: Path) -> Dataset:
    """`dataset` as `entry` is fed it (predict, features, probe; a transfer run's student)."""
    return load_dataset(dataset, cache, fed_preprocessing(entry, dataset))


def teacher_size(entry: ModelEntry, dataset: str) -> int | None:
    """The side a frozen model's inputs are resized to when it is fed another model's batch:
    its own input size where the dataset feeds each model its own (None: as the batch is)."""
    return entry.input_size[-1] if feeds_own(dataset) else None


def preprocessing_key(entry: ModelEntry, dataset: str) -> str | None:
    """What a unit key records of the model's decode (`pairs.catalog.preprocessing_fields`):
    its own preprocessing where the dataset feeds it that, else None, so that a built-in or
    shared dataset keeps the keys it had before models were fed their own."""
    return own_preprocessing(entry).key if feeds_own(dataset) else None


def models_columns(entry: ModelEntry, fed: Preprocessing | None) -> dict:
    """A `models` row's record of the decode the model was fed (`fed_preprocessing`): its side,
    crop_pct and interpolation; a built-in dataset's: the entry's input side and no crop."""
    if fed is None:
        return {"img_size": entry.input_size[-1], "crop_pct": None, "interpolation": None}
    return {"img_size": fed.size, "crop_pct": fed.crop_pct, "interpolation": fed.interpolation}
