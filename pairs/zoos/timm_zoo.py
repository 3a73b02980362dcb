"""The timm catalog: every pretrained timm model, from timm's own registry and `pretrained_cfg`.

One row per pretrained tag (`resnet50.a1_in1k`): input size, test input size, crop_pct, mean,
std, interpolation, num_classes and label offset from the tag's `pretrained_cfg`; family from a
rule table on the architecture name; params, top-1 and top-5 from a timm results CSV when one is
given (no model is instantiated). Registered as zoo `timm`; the zoo reads three environment
variables, so every process of a launch (SLURM tasks included) sees the same:

- `KTBENCH_IMAGENET`: the zoo's dataset, an ImageNet source by name, e.g.
  `imagefolder:/data/imagenet@subset=0.1`, `hfds:ILSVRC/imagenet-1k@subset=0.1` or
  `wds:/data/imagenet-wds@classes=1000,subset=0.1` (docs/protocol.md#data); unset, the
  dataset is `imagenet`, which names no data (plans and costs work, a launch does not).
- `KTBENCH_TIMM_RESULTS`: a timm results CSV (columns model, img_size, top1, top5,
  param_count, crop_pct; e.g. timm's `results/results-imagenet.csv`), joined on
  (model, img_size) with img_size the tag's input size or its test input size.
- `KTBENCH_TIMM_WEIGHTS`: a folder of local weight files named `<model>.<ext>` (the full name
  `resnet50.a1_in1k` or the architecture `resnet50`); a model with a file there loads from it.

The last two change the entries' fingerprints (a weight file or a reported top-1 is part of what
a unit depends on), the first the units' dataset: keep all three the same between `ktbench plan`
and `ktbench launch` (a launch refuses a plan made for another dataset).

Light at import (importing `pairs` registers the zoo): pandas and timm load when the catalog is
built.
"""
from __future__ import annotations

import functools
import math
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from pairs.catalog import ModelEntry, Zoo, register_zoo
from pairs.catalog_table import CATALOG_COLUMNS, register_catalog_table
from results.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

# Family of an architecture: the first rule whose pattern matches the start of its name.
# hybrid = convolution and attention in one network; mlp = MLP (or, for sequencer, LSTM) token
# mixing; the rest is cnn (convolution, also pooling token mixers) or transformer.
FAMILY_RULES: tuple[tuple[str, str], ...] = (
    (r"vit_.*(_r\d|_r_|resnet)", "hybrid"),          # ViT on a ResNet stem (vit_base_r50_s16_384)
    (r"(botnet|sebotnet|halonet|halo2botnet|sehalonet|lambda_|lamhalobotnet|haloregnetz|coat|"
     r"convit|levit|maxvit|maxxvit|mobilevit|mobilenetv4_hybrid|edgenext|efficientformer|"
     r"efficientvit|efficientvim|fastvit|nextvit|tiny_vit|vitamin|gcvit|iformer|lowformer|"
     r"swiftformer|caformer|visformer|shvit)", "hybrid"),
    (r"(mixer|gmixer|gmlp|resmlp|sequencer)", "mlp"),
    (r"(vit|deit|beit|cait|crossvit|davit|eva|flexivit|hiera|mvitv2|nest_|pit_|pvt_v2|samvit|"
     r"swin|tnt|twins|volo|xcit|aimv2|sam2|focalnet|naflexvit|deepseek|gemma|qwen)",
     "transformer"),
)
_FAMILY_RES = tuple((re.compile(pattern), family) for pattern, family in FAMILY_RULES)
WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin")


def family_of(arch: str) -> str:
    for pattern, family in _FAMILY_RES:
        if pattern.match(arch):
            return family
    return "cnn"


def read_results_csv(path) -> pd.DataFrame:
    """A timm results CSV as (model, img_size, top1, top5, params_m, crop_pct); param_count
    may carry thousands separators ("1,014.45")."""
    import pandas as pd
    df = pd.read_csv(path, dtype={"param_count": str})
    if missing := {"model", "img_size", "top1"} - set(df.columns):
        raise InputError(f"{path} is not a timm results CSV: no column {', '.join(sorted(missing))}")
    params = (df["param_count"].str.replace(",", "", regex=False).astype(float)
              if "param_count" in df else math.nan)
    return pd.DataFrame({
        "model": df["model"], "img_size": df["img_size"].astype(int), "top1": df["top1"],
        "top5": df.get("top5", math.nan), "params_m": params,
        "csv_crop_pct": df.get("crop_pct", math.nan)})


def _registry_rows() -> pd.DataFrame:
    import pandas as pd
    import timm
    from timm.models import get_pretrained_cfg
    rows = []
    default_tags = {}
    for name in timm.list_pretrained():
        cfg = get_pretrained_cfg(name)
        arch, _, tag = name.partition(".")
        if arch not in default_tags:
            default_tags[arch] = get_pretrained_cfg(arch).tag
        test_size = cfg.test_input_size or cfg.input_size
        rows.append({
            "name": name, "arch": arch, "family": family_of(arch),
            "img_size": cfg.input_size[-1], "test_img_size": test_size[-1],
            "crop_pct": cfg.crop_pct, "interpolation": cfg.interpolation,
            "mean": tuple(cfg.mean), "std": tuple(cfg.std), "num_classes": cfg.num_classes,
            "label_offset": cfg.label_offset or 0, "in_chans": cfg.input_size[0],
            "input_size": tuple(cfg.input_size), "default_tag": tag == default_tags[arch],
        })
    return pd.DataFrame(rows)


def _join_results(table: pd.DataFrame, results: pd.DataFrame) -> pd.DataFrame:
    """Reported numbers by (model, img_size): the row at the input size, else the test size.
    A CSV that names a bare architecture (older timm) means what timm gives for that name:
    its default tag."""
    default_tag = table[table["default_tag"]].set_index("arch")["name"]
    results = results.assign(model=results["model"].map(
        lambda m: m if "." in m else default_tag.get(m, m)))
    results = results.drop_duplicates(["model", "img_size"])
    table = table.copy()
    for size_column in ("img_size", "test_img_size"):
        found = table[["name", size_column]].merge(
            results, left_on=["name", size_column], right_on=["model", "img_size"],
            how="left", suffixes=("", "_csv")).set_index(table.index)
        for column in ("top1", "top5", "params_m"):
            table[column] = table[column].fillna(found[column])
    return table


def _weight_files(folder) -> dict[str, str]:
    """Stem -> path of every weight file in `folder`."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"weights folder {folder} does not exist")
    return {p.name[:-len(p.suffix)]: str(p) for p in sorted(folder.iterdir())
            if p.suffix in WEIGHT_SUFFIXES and p.is_file()}


def timm_catalog(results_csv=None, weights_dir=None) -> pd.DataFrame:
    """`CATALOG_COLUMNS` (plus in_chans, input_size and default_tag) for every pretrained timm
    model. A weight file named by the full name is that model's; one named by the
    architecture is its default tag's."""
    import pandas as pd
    table = _registry_rows()
    for column in ("top1", "top5", "params_m"):
        table[column] = math.nan
    if results_csv:
        table = _join_results(table, read_results_csv(results_csv))
    table["weights"] = None
    if weights_dir:
        files = _weight_files(weights_dir)
        table["weights"] = pd.Series([
            files.get(name, files.get(arch) if default else None)
            for name, arch, default in zip(table["name"], table["arch"], table["default_tag"])],
            dtype=object, index=table.index)
    return table[CATALOG_COLUMNS + ["in_chans", "input_size", "default_tag"]]


def zoo_from_table(table: pd.DataFrame, name: str, dataset: str) -> Zoo:
    """A zoo of timm models; each entry's timm name carries its pretrained tag."""
    import pandas as pd
    return Zoo(name=name, dataset=dataset, models=tuple(ModelEntry(
        name=row.name, arch=row.name, family=row.family, num_classes=int(row.num_classes),
        in_chans=int(row.in_chans), input_size=tuple(row.input_size), mean=row.mean,
        std=row.std, weights=row.weights if isinstance(row.weights, str) else None,
        top1_reported=None if pd.isna(row.top1) else float(row.top1),
    ) for row in table.itertuples(index=False)))


IMAGENET = "imagenet"


def _sources() -> tuple:
    return os.environ.get("KTBENCH_TIMM_RESULTS") or None, \
        os.environ.get("KTBENCH_TIMM_WEIGHTS") or None, \
        os.environ.get("KTBENCH_IMAGENET") or IMAGENET


@functools.lru_cache(maxsize=4)
def _cached_table(results_csv, weights_dir) -> pd.DataFrame:
    return timm_catalog(results_csv, weights_dir)


@functools.lru_cache(maxsize=4)
def _cached_zoo(results_csv, weights_dir, dataset) -> Zoo:
    return zoo_from_table(_cached_table(results_csv, weights_dir), "timm", dataset)


@register_catalog_table("timm")
def timm_table() -> pd.DataFrame:
    return _cached_table(*_sources()[:2]).copy()


@register_zoo("timm")
def timm_zoo() -> Zoo:
    return _cached_zoo(*_sources())
