"""A zoo's catalog as a table: one row per model, the columns that planning and filtering use.

Every zoo has one: built from its `ModelEntry`s, or registered by a catalog that knows more
than an entry holds (timm's: crop_pct, interpolation, top-5, parameter counts).

Light at import (the command line declares its filters from here): pandas loads when a table
is built.
"""
from __future__ import annotations

import fnmatch
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from pairs.catalog import Zoo

if TYPE_CHECKING:
    import pandas as pd

CATALOG_COLUMNS = ["name", "arch", "family", "params_m", "top1", "top5", "img_size",
                   "test_img_size", "crop_pct", "interpolation", "mean", "std", "num_classes",
                   "label_offset", "weights"]

_TABLES: dict[str, Callable[[], pd.DataFrame]] = {}


def register_catalog_table(zoo_name: str):
    """Register the function that gives the full catalog table of zoo `zoo_name`."""
    def wrap(fn: Callable[[], pd.DataFrame]):
        _TABLES[zoo_name] = fn
        return fn
    return wrap


def catalog_table(zoo: Zoo) -> pd.DataFrame:
    """`CATALOG_COLUMNS` for every model of `zoo`, in the zoo's order."""
    import pandas as pd
    if zoo.name in _TABLES:
        return _TABLES[zoo.name]()
    return pd.DataFrame([{
        "name": m.name, "arch": m.arch, "family": m.family, "params_m": math.nan,
        "top1": m.top1_reported if m.top1_reported is not None else math.nan, "top5": math.nan,
        "img_size": m.input_size[-1], "test_img_size": m.input_size[-1],
        "crop_pct": math.nan if m.crop_pct is None else m.crop_pct,
        "interpolation": m.interpolation, "mean": tuple(m.mean), "std": tuple(m.std),
        "num_classes": m.num_classes, "label_offset": 0, "weights": m.weights,
    } for m in zoo.models], columns=CATALOG_COLUMNS)


def measured_catalog(zoo: Zoo, results_dir) -> pd.DataFrame:
    """`catalog_table` with the top-1 and size measured in `results_dir` (its `models` table)
    where the catalog has none: the micro zoo's sizes, for one."""
    from results import query
    table = catalog_table(zoo)
    measured = query(results_dir, "SELECT model, top1, params_m FROM models WHERE dataset = ?",
                     [zoo.dataset]).set_index("model")
    for column in ("top1", "params_m"):
        table[column] = table[column].fillna(table["name"].map(measured[column]))
    return table


@dataclass(frozen=True)
class CatalogFilter:
    """Which catalog rows to keep. Empty fields keep everything; a range drops rows whose
    value is unknown (NaN)."""
    include: tuple[str, ...] = ()          # wildcards on the model name or its architecture
    exclude: tuple[str, ...] = ()
    in1k: bool = False                     # ImageNet-1k heads only: 1000 classes, no label offset
    params_m: tuple[float, float] | None = None
    top1: tuple[float, float] | None = None
    families: tuple[str, ...] = ()


def matches(table: pd.DataFrame, patterns) -> pd.Series:
    """Rows whose name or architecture matches one of the shell-style `patterns`."""
    import pandas as pd
    if not patterns:
        return pd.Series(False, index=table.index)
    regex = "|".join(f"(?:{fnmatch.translate(p)})" for p in patterns)
    name_ok = table["name"].astype(str).str.match(regex, flags=re.ASCII)
    arch_ok = table["arch"].astype(str).str.match(regex, flags=re.ASCII)
    return name_ok | arch_ok


def _in_range(values: pd.Series, bounds) -> pd.Series:
    low, high = bounds
    return values.between(low, high) & values.notna()


def filter_catalog(table: pd.DataFrame, keep: CatalogFilter) -> pd.DataFrame:
    import pandas as pd
    mask = pd.Series(True, index=table.index)
    if keep.include:
        mask &= matches(table, keep.include)
    if keep.exclude:
        mask &= ~matches(table, keep.exclude)
    if keep.in1k:
        mask &= (table["num_classes"] == 1000) & (table["label_offset"].fillna(0) == 0)
    if keep.params_m is not None:
        mask &= _in_range(table["params_m"], keep.params_m)
    if keep.top1 is not None:
        mask &= _in_range(table["top1"], keep.top1)
    if keep.families:
        mask &= table["family"].isin(keep.families)
    return table[mask].reset_index(drop=True)
