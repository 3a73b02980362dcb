"""Predictions from elsewhere: timm's `inference.py` output, one CSV or Parquet file per model,
written as the `predictions` and `models` rows of that model's predict unit (same key), so a
launch finds the predict stage done and `stats` runs over the zoo without a forward pass.

A file holds, per sample (inference.py's default column names):

- `filename`: the image's file name (`--fullname`: its path in the split; Parquet: the index);
- `index`: the top-k class indices (`--include-index`; `--results-separate-col`: `index_0`, ...);
- `prob` (the default `--output-type prob`) or `logit`: the outputs at those indices, or with
  `--topk 0` the whole output vector (then no `index` is needed).

It is matched to the dataset's eval split by name: every sample once, in the dataset's order or,
when the names tell the samples apart, in any order (timm sorts folders naturally: `img10` after
`img9`); another count, other names or class indices beyond the dataset's classes are refused.
From the top k probabilities, pred and p_max are exact; p_true is exact when the true class is
among the k and unknown (NaN) otherwise. Top-k logits give no probabilities and are refused.
Before anything is written, each file's preprocessing and, where the model's weights are at
hand, a spot check of its predictions are checked (`benchmark.units.import_checks`).
"""
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark import data
from benchmark.data.feeding import models_columns
from benchmark.data.datasets import Preprocessing
from benchmark.models.weights import check_reported_top1
from benchmark.units.import_checks import (GivenPreprocessing, check_preprocessing, spot_check,
                                           weights_at_hand)
from benchmark.units.predict import top1_percent
from pairs.catalog import ModelEntry, Zoo
from pairs.plan import predict_key
from results import write_part
from results.errors import InputError

OUTPUT_KINDS = ("prob", "logit")


@dataclass
class Imported:
    """One file's rows for the `predictions` and `models` tables."""
    entry: ModelEntry
    path: Path
    predictions: pd.DataFrame
    row: dict
    unknown_p_true: int            # samples whose true class was outside the file's top k
    k: int
    preprocessing: Preprocessing   # what the file was made with (the predict stage's)
    spot_agreement: float | None = None    # share of spot-checked samples that agree (None: unchecked)


def read_inference_file(path: Path) -> pd.DataFrame:
    """The file as a table with a `filename` column (CSV or Parquet)."""
    if not path.is_file():
        raise InputError(f"predictions file {path} does not exist")
    try:
        if path.suffix == ".parquet":
            frame = pd.read_parquet(path)
            return frame.reset_index() if "filename" not in frame.columns else frame
        if path.suffix == ".csv":
            return pd.read_csv(path)
    except (OSError, ValueError) as e:
        raise InputError(f"{path}: not a readable {path.suffix[1:]} file ({e})") from None
    raise InputError(f"{path}: a predictions file ends in .csv or .parquet")


def model_of(path: Path, zoo: Zoo, model: str | None = None) -> tuple[ModelEntry, int | None]:
    """(entry, image size or None) of a file named as inference.py names its output,
    `<model>-<img_size>`, or `<model>`; `model` overrides the name."""
    names = {m.name for m in zoo.models}
    stem = path.name[:-len(path.suffix)]
    sized = re.fullmatch(r"(.+)-(\d+)", stem)
    name = model or next((n for n in (stem, sized and sized[1]) if n in names), None)
    if name is None:
        raise InputError(f"{path}: no model of zoo {zoo.name!r} is named {stem!r}; name the file "
                         "<model>.csv or <model>-<img_size>.csv (as inference.py does), or give "
                         "--model")
    entry = zoo.get(name)
    size = int(sized[2]) if sized and not model and name == sized[1] else None
    return entry, size


def _column_matrix(frame: pd.DataFrame, name: str, path: Path) -> np.ndarray | None:
    """[N, k] of a column of lists (or numpy-printed lists, or scalars), or of the separate
    columns `<name>_0`, `<name>_1`, ...; None when the file has neither."""
    if name in frame.columns:
        column = frame[name]
        if pd.api.types.is_numeric_dtype(column):        # top-1, squeezed by inference.py
            return column.to_numpy(dtype=float)[:, None]
        rows = [np.asarray(str(v).replace(",", " ").strip("[] \n").split() if isinstance(v, str)
                           else v, dtype=float).reshape(-1) for v in column]
        if len({len(r) for r in rows}) > 1:
            raise InputError(f"{path}: column {name!r} holds lists of different lengths")
        return np.stack(rows) if rows else np.zeros((0, 1))
    separate = _separate_columns(frame, name)
    return frame[separate].to_numpy(dtype=float) if separate else None


def _separate_columns(frame: pd.DataFrame, name: str) -> list[str]:
    """`<name>_0`, `<name>_1`, ... (inference.py --results-separate-col), in order."""
    return sorted((c for c in frame.columns if re.fullmatch(rf"{name}_\d+", str(c))),
                  key=lambda c: int(str(c).rsplit("_", 1)[1]))


def sample_order(file_names, dataset_names, path: Path) -> np.ndarray:
    """The file's row of each dataset sample: names compared without suffixes, as paths when
    the file has them (`--fullname`), else as base names."""
    n, m = len(dataset_names), len(file_names)
    if m != n:
        raise InputError(f"{path}: {m} samples, the dataset's eval split has {n}: predictions "
                         "for another dataset?")
    full = any("/" in str(f) for f in file_names)

    def key(name) -> str:
        name = str(name).replace(os.sep, "/")
        return os.path.splitext(name if full else name.rsplit("/", 1)[-1])[0]

    ours, theirs = [key(s) for s in dataset_names], [key(s) for s in file_names]
    if ours == theirs:
        return np.arange(n)
    row_of = {k: i for i, k in enumerate(theirs)}
    if len(row_of) == n == len(set(ours)) and row_of.keys() == set(ours):
        return np.asarray([row_of[k] for k in ours])
    i = next(i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b)
    shared = n - len(row_of)
    hint = (f"; {shared} of its file names repeat (images of different classes share a name): "
            "run inference.py with --fullname" if shared and not full else "")
    raise InputError(f"{path}: its samples do not match the dataset's eval split: row {i} is "
                     f"{theirs[i]!r}, the dataset's sample {i} is {ours[i]!r}{hint}")


def per_sample(indices, outputs, kind: str, labels: np.ndarray, num_classes: int,
               path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pred, p_true, p_max) from top-k indices (None: whole vectors) and their outputs."""
    n, k = outputs.shape
    if indices is not None:
        if indices.shape != outputs.shape:
            raise InputError(f"{path}: {indices.shape[1]} class indices but {k} outputs a sample")
        if len(indices) and (indices.min() < 0 or indices.max() >= num_classes):
            raise InputError(f"{path}: class index {int(indices.max())} is outside the "
                             f"dataset's {num_classes} classes: predictions for another dataset?")
        indices = indices.astype(np.int64)
    elif k != num_classes:
        raise InputError(f"{path}: {k} outputs a sample and no class indices, the dataset has "
                         f"{num_classes} classes (inference.py --include-index, or --topk 0)")
    rows = np.arange(n)
    if k == num_classes:                        # every class: exact
        full = outputs if indices is None else np.zeros_like(outputs)
        if indices is not None:
            full[rows[:, None], indices] = outputs
        if kind == "logit":
            full = np.exp(full - full.max(1, keepdims=True))
            full /= full.sum(1, keepdims=True)
        pred = full.argmax(1)
        return pred, full[rows, labels], full[rows, pred]
    if kind == "logit":
        raise InputError(f"{path}: top-{k} logits give no probabilities (inference.py "
                         "--output-type prob, or --topk 0)")
    if len(outputs) and (outputs.min() < 0 or outputs.max() > 1 + 1e-4):
        raise InputError(f"{path}: column prob holds values outside [0, 1]")
    best = outputs.argmax(1)
    hit = indices == labels[:, None]
    p_true = np.where(hit.any(1), (outputs * hit).sum(1), np.nan)
    return indices[rows, best], p_true, outputs[rows, best]


def read_predictions(path: Path, zoo: Zoo, split, model: str | None = None,
                     given: GivenPreprocessing = GivenPreprocessing()) -> Imported:
    """One file checked against the zoo, the dataset's eval `split` and the preprocessing of the
    predict stage, as table rows."""
    t0 = time.perf_counter()
    frame = read_inference_file(path)
    entry, name_size = model_of(path, zoo, model)
    preprocessing = check_preprocessing(path, entry, zoo.dataset, name_size, given)
    if "filename" not in frame.columns:
        raise InputError(f"{path}: no filename column to match the samples by")
    kind = next((k for k in OUTPUT_KINDS if _separate_columns(frame, k) or k in frame), None)
    if kind is None:
        raise InputError(f"{path}: no prob or logit column (inference.py's outputs)")
    outputs = _column_matrix(frame, kind, path)
    indices = _column_matrix(frame, "index", path)
    data.check_classes(split.num_classes, [entry])
    labels = np.asarray(split.labels, dtype=np.int64)
    order = sample_order(frame["filename"].tolist(), split.names, path)
    pred, p_true, p_max = per_sample(None if indices is None else indices[order],
                                     outputs[order], kind, labels, split.num_classes, path)
    predictions = pd.DataFrame({
        "model": entry.name, "dataset": zoo.dataset, "sample": np.arange(len(labels)),
        "label": labels, "pred": pred, "p_true": p_true, "p_max": p_max})
    top1 = top1_percent(pred, labels)
    row = {"key": predict_key(entry, zoo.dataset), "model": entry.name, "zoo": zoo.name,
           "family": entry.family, "arch": entry.arch, "params_m": params_m(entry),
           "source": f"import:{path.resolve()}", "dataset": zoo.dataset,
           "num_classes": split.num_classes, "top1": top1, "top1_reported": entry.top1_reported,
           "n_eval": len(labels), "seconds": time.perf_counter() - t0,
           **models_columns(entry, preprocessing)}
    return Imported(entry, path, predictions, row, int(np.isnan(p_true).sum()),
                    outputs.shape[1], preprocessing)


def params_m(entry: ModelEntry) -> float:
    """Millions of parameters of the entry's architecture, built without its weights (on the
    meta device where the architecture allows it, else on the CPU)."""
    import torch
    from benchmark.models.build import count_params_m, create_model
    try:
        with torch.device("meta"):
            return count_params_m(create_model(entry, pretrained=False))
    except (RuntimeError, NotImplementedError):
        return count_params_m(create_model(entry, pretrained=False))


def import_predictions(files: list[Path], zoo: Zoo, results_dir, model: str | None = None,
                       given: GivenPreprocessing = GivenPreprocessing(),
                       cache: Path | None = None) -> list[Imported]:
    """Every file read and checked before any is written (with `cache`, the spot check of each
    model whose weights are at hand; None: no spot check); then each model's predictions, then
    its `models` row (the mark of a complete predict unit)."""
    if model is not None and len(files) != 1:
        raise InputError("--model names the model of one file; give one file")
    split = data.eval_split(zoo.dataset)
    imported = [read_predictions(Path(f), zoo, split, model, given) for f in files]
    if len({i.entry.name for i in imported}) < len(imported):
        raise InputError("two files hold the same model")
    for item in imported:
        if cache is not None and weights_at_hand(item.entry, cache):
            item.spot_agreement = spot_check(item.path, item.entry, split, item.preprocessing,
                                             item.predictions["pred"].to_numpy(), cache)
    for item in imported:
        warning = check_reported_top1(item.entry.name, item.row["top1"], item.entry.top1_reported)
        if warning:
            print(f"warning: {warning}", file=sys.stderr)
        write_part(results_dir, "predictions", item.predictions, item.row["key"])
        write_part(results_dir, "models", pd.DataFrame([item.row]), item.row["key"])
    return imported
