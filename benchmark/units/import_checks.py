"""What an import of predictions can check before it writes (docs/cli.md#import-predictions).

- **Preprocessing.** The preprocessing the file was made with (`recorded_preprocessing`: the
  flags given to `import-predictions`, which are inference.py's own names, else the size in the
  file name, else inference.py's default for the model: its timm config, at the test size and
  crop where it has them) must be the
  one ktbench's predict stage feeds the model (`benchmark.data.feeding.fed_preprocessing`: its
  own, or the dataset's shared one); else one line with the inference.py flags to use.
- **A spot check.** When the model's weights are at hand (a local file, a built micro-zoo model,
  or hub weights in the local cache: nothing is downloaded), `SPOT_SAMPLES` samples spread over
  the eval split are decoded and predicted with the model; fewer than `SPOT_AGREEMENT` of them
  with the file's top-1 class means the file holds another model's predictions (or other
  images), and the import is refused.
"""
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from benchmark.data.feeding import fed_preprocessing
from benchmark.data.datasets import Preprocessing
from benchmark.data.preprocess import data_config
from benchmark.data.splits import decode_into
from benchmark.models.build import predict_logits
from benchmark.models.loading import load_model, resolve_weights
from benchmark.models.weights import hub_cached, hub_location
from pairs.catalog import ModelEntry
from results.errors import InputError

SPOT_SAMPLES = 32
SPOT_AGREEMENT = 0.9


@dataclass(frozen=True)
class GivenPreprocessing:
    """The preprocessing flags given to `import-predictions` (None: not given)."""
    size: int | None = None
    crop_pct: float | None = None
    interpolation: str | None = None


def recorded_preprocessing(entry: ModelEntry, name_size: int | None,
                           given: GivenPreprocessing, channels: int) -> Preprocessing:
    """The preprocessing a file was made with, field by field: the flag given, else the size in
    the file name, else what inference.py resolves for the model without flags (timm's config at
    its *test* size and crop where the config has them: inference.py asks for those)."""
    cfg = data_config(entry)
    test = _test_time_config(entry.arch)
    size = given.size or name_size or test.get("test_input_size", cfg["input_size"])[-1]
    crop_pct = (given.crop_pct if given.crop_pct is not None
                else test.get("test_crop_pct", cfg["crop_pct"]))
    return Preprocessing(size, crop_pct, given.interpolation or cfg["interpolation"], channels)


def _test_time_config(arch: str) -> dict:
    """The test-time fields (`test_input_size`, `test_crop_pct`) of the arch's timm config."""
    import timm
    cfg = timm.models.get_pretrained_cfg(arch)
    fields = cfg.to_dict() if cfg is not None else {}
    return {k: fields[k] for k in ("test_input_size", "test_crop_pct") if fields.get(k)}


def check_preprocessing(path: Path, entry: ModelEntry, dataset: str, name_size: int | None,
                        given: GivenPreprocessing) -> Preprocessing:
    """The preprocessing the predict stage feeds `entry` on `dataset`; InputError (one line)
    when the file was made with another (`recorded_preprocessing`), or the dataset is built in."""
    expected = fed_preprocessing(entry, dataset)
    if expected is None:
        raise InputError(f"dataset {dataset!r} is built in: it has no preprocessing to match")
    recorded = recorded_preprocessing(entry, name_size, given, expected.channels)
    if not recorded.matches(expected):
        raise InputError(
            f"{path}: made at {recorded} (the flags given, else the size in the file name, else "
            f"inference.py's defaults for {entry.arch}) but the predict stage feeds {entry.name} "
            f"{expected}: run inference.py with {expected.inference_flags()} and give "
            "import-predictions the flags it ran with")
    return expected


def weights_at_hand(entry: ModelEntry, cache: Path) -> bool:
    """Whether the model can be built without a download (its weights are a local file, a built
    micro-zoo model, or in the hub's local cache)."""
    try:
        if resolve_weights(entry, cache) is not None:
            return True
    except InputError:
        return False
    hub_id, filenames = hub_location(entry.arch)
    return hub_id is not None and hub_cached(hub_id, filenames)


def spot_positions(n: int) -> np.ndarray:
    """`SPOT_SAMPLES` positions spread evenly over `n` samples (all of them when fewer)."""
    return np.unique(np.linspace(0, n - 1, min(n, SPOT_SAMPLES)).round().astype(np.int64))


def spot_check(path: Path, entry: ModelEntry, split, preprocessing: Preprocessing,
               pred: np.ndarray, cache: Path) -> float:
    """The share of the spot samples on which the model's top-1 class is the file's (`pred`:
    the file's per dataset sample); InputError (one line) below `SPOT_AGREEMENT`."""
    positions = spot_positions(len(pred))
    images = decode_into(np.empty((len(positions), *preprocessing.decode_config()["input_size"]),
                                  dtype=np.uint8), split, positions,
                         preprocessing.decode_config())
    logits = predict_logits(load_model(entry, cache), torch.from_numpy(images), entry.mean,
                            entry.std)
    agreement = float(np.mean(logits.argmax(1).numpy() == pred[positions]))
    if agreement < SPOT_AGREEMENT:
        raise InputError(
            f"{path}: {entry.name} itself predicts the file's top-1 class on only "
            f"{agreement:.0%} of {len(positions)} samples checked: predictions of another model "
            "or of other images? (--no-check imports it unchecked)")
    return agreement
