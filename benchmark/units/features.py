"""The features unit: each model's pooled penultimate features and logits, computed once, stored.

For one (model, dataset), a forward pass over the eval split (all of it, or its first
`eval_samples`) and over a fixed sample of the transfer split (its first `transfer_samples`,
2,000 by default; the transfer split is the train split, whose order is already random), giving
per split:

    <results>/feature_arrays/<key>/<split>_features.npy   [N, D] pooled pre-logits features
    <results>/feature_arrays/<key>/<split>_logits.npy     [N, C] the classifier on top of them
    <results>/feature_arrays/<key>/<split>_labels.npy     [N]    int64 labels

Features come from timm's `forward_features` + `forward_head(pre_logits=True)` (the model's own
pooling), logits from the classifier on those features: exactly `model(x)` split in two
(`benchmark.models.build.features_and_logits`). Arrays are float16 (float32 where a value would not
fit), plain `.npy` so that `np.load(mmap_mode="r")` maps them without a copy: a matrix loads as
fast as the disk reads it. Each file is written to a temporary name and renamed into place; the
unit's rows in the `features` table (one per split) are written last and mark it complete.
"""
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from benchmark import data, models
from benchmark.data.feeding import load_for
from benchmark.models.loading import load_model
from benchmark.units.unit import FeaturesUnit
from pairs.catalog import Zoo, get_zoo, preprocessing_fields
from pairs.keys import unit_key
from results import connect, write_part
from results.errors import InputError
from results.layout import ResultsLayout
from results.store import atomic_path

FEATURES_VERSION = 1
TRANSFER_SAMPLES = 2000
SPLITS = ("eval", "transfer")
_FLOAT16_MAX = float(np.finfo(np.float16).max)


def features_unit(zoo: Zoo, model: str, eval_samples: int | None = None,
                  transfer_samples: int = TRANSFER_SAMPLES) -> FeaturesUnit:
    """The unit of one model's features; its key changes with the model, data and sample counts."""
    entry = zoo.get(model)
    key = unit_key("features", model=entry.fingerprint(), dataset=zoo.dataset,
                   eval_samples=eval_samples, transfer_samples=transfer_samples,
                   version=FEATURES_VERSION, **preprocessing_fields(entry, zoo.dataset))
    return FeaturesUnit(key, zoo.name, zoo.dataset, model, eval_samples, transfer_samples)


def arrays_dir(results_dir, key: str) -> Path:
    return ResultsLayout(results_dir).feature_arrays(key)


def forward_features(model: torch.nn.Module, x_uint8: torch.Tensor, mean, std,
                     batch_size: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """(features [N, D], logits [N, C]) as float32 numpy arrays, in batches, no gradients."""
    feats, logits = [], []
    with torch.inference_mode():
        for i in range(0, len(x_uint8), batch_size):
            f, z = models.features_and_logits(
                model, data.normalize(x_uint8[i:i + batch_size], mean, std))
            feats.append(f.float().reshape(len(f), -1))
            logits.append(z.float())
    return torch.cat(feats).numpy(), torch.cat(logits).numpy()


def _compact(a: np.ndarray) -> np.ndarray:
    """float16 where every value fits, else float32."""
    return a.astype(np.float16) if np.abs(a).max(initial=0.0) <= _FLOAT16_MAX else \
        a.astype(np.float32)


def _save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:   # a file: np.save adds no suffix
        np.save(f, array)


def run_features(unit: FeaturesUnit, results_dir, cache: Path) -> str:
    entry = get_zoo(unit.zoo).get(unit.model)
    dataset = load_for(entry, unit.dataset, cache)
    model = load_model(entry, cache, ResultsLayout(results_dir))
    n_eval, n_transfer = unit.eval_samples, unit.transfer_samples
    inputs = {"eval": (dataset.eval_x[:n_eval], dataset.eval_y[:n_eval]),
              "transfer": (dataset.train_x[:n_transfer], dataset.train_y[:n_transfer])}
    arrays = {}
    for split in SPLITS:
        t0 = time.perf_counter()
        x, y = inputs[split]
        feats, logits = forward_features(model, x, entry.mean, entry.std)
        arrays[split] = SplitOutputs(feats, logits, y.numpy(), time.perf_counter() - t0)
    store_features(unit, results_dir, arrays)
    return "ok"


@dataclass
class SplitOutputs:
    """A model's outputs on one split: pooled features [N, D], logits [N, C], labels [N]."""
    features: np.ndarray
    logits: np.ndarray
    labels: np.ndarray
    seconds: float


def store_features(unit: FeaturesUnit, results_dir, arrays: dict[str, SplitOutputs]) -> None:
    """The unit's arrays (`arrays`: per split), each file renamed into place, then its rows in
    the `features` table, which mark it complete."""
    folder = arrays_dir(results_dir, unit.key)
    stored_at = folder.relative_to(results_dir).as_posix()     # the rows name it in the folder
    rows = []
    for split in SPLITS:
        out = arrays[split]
        labels = np.asarray(out.labels).astype(np.int64)
        for kind, array in (("features", _compact(out.features)),
                            ("logits", _compact(out.logits)), ("labels", labels)):
            _save_npy(folder / f"{split}_{kind}.npy", array)
        rows.append({"key": unit.key, "model": unit.model, "dataset": unit.dataset,
                     "split": split, "samples": len(labels), "dim": out.features.shape[1],
                     "num_logits": out.logits.shape[1], "path": stored_at,
                     "top1": 100.0 * float((out.logits.argmax(1) == labels).mean()),
                     "seconds": out.seconds})
    # the table rows last: they mark the unit complete
    write_part(results_dir, "features", pd.DataFrame(rows), unit.key)


@dataclass
class SplitArrays:
    """Every model's arrays on one split, rows aligned: `features[m]` [N, D_m] and `logits[m]`
    [N, C_m] memory-mapped (float16 or float32), `labels` [N]."""
    models: list[str]
    keys: list[str]
    labels: np.ndarray
    features: list
    logits: list

    @property
    def samples(self) -> int:
        return len(self.labels)


def load_split(results_dir, models_: list[str], dataset: str, split: str = "eval",
               samples: int | None = None, keys: list[str] | None = None) -> SplitArrays:
    """The stored arrays of `models_` on `split`, memory-mapped, cut to their first `samples`
    (default: as many as every model has; every unit stores a prefix of the same split, so
    prefixes line up). `keys`: only these features units (e.g. those of the current model
    definitions); default, per model, the unit with the most samples. Raises InputError naming
    models without features, InputError when models disagree on the labels."""
    if split not in SPLITS:
        raise InputError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    con = connect(results_dir)
    try:
        con.register("_wanted", pd.DataFrame({"model": list(models_)}))
        con.register("_keys", pd.DataFrame({"key": list(keys or []), "_": 0}))
        rows = con.execute(
            "SELECT f.model, f.key, f.samples, f.path FROM features f JOIN _wanted USING (model) "
            "WHERE f.dataset = ? AND f.split = ? "
            + ("AND f.key IN (SELECT key FROM _keys) " if keys is not None else "") +
            "QUALIFY row_number() OVER (PARTITION BY f.model ORDER BY f.samples DESC, f.key) = 1",
            [dataset, split]).df().set_index("model")
    finally:
        con.close()
    if missing := [m for m in models_ if m not in rows.index]:
        raise InputError(f"no features on {dataset!r} ({split}) for {', '.join(missing)}; "
                         "run the features units first (ktbench predictors does)")
    rows = rows.loc[list(models_)]
    n = int(rows["samples"].min()) if samples is None else samples
    if n > rows["samples"].min():
        short = rows.index[rows["samples"] < n]
        raise InputError(f"{', '.join(short)} have fewer than {n} {split} samples stored")
    folder = Path(results_dir)

    def load(path, kind):
        return np.load(folder / path / f"{split}_{kind}.npy", mmap_mode="r")[:n]

    labels = [load(p, "labels") for p in rows["path"]]
    for name, other in zip(rows.index, labels):
        if not np.array_equal(other, labels[0]):
            raise InputError(f"{name} has other {split} labels than {rows.index[0]}: features "
                             "from different data")
    return SplitArrays(models=list(models_), keys=list(rows["key"]),
                       labels=np.asarray(labels[0]),
                       features=[load(p, "features") for p in rows["path"]],
                       logits=[load(p, "logits") for p in rows["path"]])
