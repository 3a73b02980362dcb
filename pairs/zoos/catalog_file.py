"""Catalog files: a zoo declared as a table, one row per model (CSV, Parquet or YAML).

`--zoo my_zoo.csv` names the file; its zoo's name is the file's absolute path and a hash of
its content, `/data/my_zoo.csv#3f9a0c2d71be`. Every process that meets that name (the command
line, each local or SLURM job) reads the file again, so nothing has to be imported first; a
file edited since a plan was made is refused with a line saying to plan again. Unit keys derive
from the entries' fingerprints, not from the zoo's name: after an edit only the units of the
rows that changed have new keys, and only they run again (the statistics of their pairs are
done by name: docs/cli.md#catalog-files).

The columns (`COLUMNS`; docs/cli.md#catalog-files): name, arch, num_classes and dataset are
required (dataset in at least one row, the same wherever given); weights is a local file
(relative to the catalog's folder) or empty for timm's pretrained weights of `arch` (a hub tag
such as `resnet50.a1_in1k`); the rest have defaults. A YAML file is either a list of rows or a
mapping with `dataset`, an optional `transfer` mapping (the zoo's transfer defaults) and
`models`, the list of rows.

Light at import (importing `pairs` registers the suffixes): pandas and PyYAML load when a file
is read.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from pairs.catalog import ModelEntry, Zoo, register_zoo_file
from pairs.zoos.timm_zoo import family_of
from results.errors import InputError

INTERPOLATIONS = ("bilinear", "bicubic", "nearest", "lanczos", "box", "hamming")
FAMILIES = ("cnn", "transformer", "mlp", "hybrid")
HASH_CHARS = 12


def _text(value) -> str:
    return str(value).strip()


def _as_float(value) -> float:
    """`value` as a float; NaN when it is not a number."""
    try:
        return float(value)
    except (ValueError, TypeError):
        return math.nan


def _number(value) -> float:
    number = _as_float(value)
    if not math.isfinite(number):
        raise ValueError(f"{value!r} is not a finite number")
    return number


def _integer(value) -> int:
    number = _as_float(value)
    if not (number.is_integer() and number >= 1):
        raise ValueError(f"{value!r} is not a positive integer")
    return int(number)


def _numbers(value) -> tuple[float, ...]:
    """`0.5 0.5 0.5`, `0.5,0.5,0.5`, `[0.5, 0.5, 0.5]` or a list."""
    if isinstance(value, str):
        value = value.strip().strip("[]()").replace(",", " ").split()
    return tuple(_number(v) for v in value)


def _one_of(choices: tuple[str, ...]) -> Callable[[Any], str]:
    def parse(value) -> str:
        if _text(value) not in choices:
            raise ValueError(f"{value!r} is not one of {', '.join(choices)}")
        return _text(value)
    return parse


def _mapping(value) -> dict:
    parsed = json.loads(value) if isinstance(value, str) else value
    if not isinstance(parsed, dict):
        raise ValueError(f"{value!r} is not a JSON object")
    return dict(parsed)


@dataclass(frozen=True)
class Column:
    parse: Callable[[Any], Any]
    help: str
    required: bool = False


# column -> how a cell reads; empty cells take the entry's default (docs/cli.md#catalog-files)
COLUMNS: dict[str, Column] = {
    "name": Column(_text, "unique name of the model in every table", required=True),
    "arch": Column(_text, "timm model name, with a pretrained tag where the weights come from "
                          "the hub (resnet50.a1_in1k)", required=True),
    "weights": Column(_text, "weight file (.safetensors, .pth, .pt, .bin; relative to the "
                             "catalog's folder); empty: timm's pretrained weights of arch"),
    "num_classes": Column(_integer, "outputs of the model's head", required=True),
    "dataset": Column(_text, "the dataset every model is evaluated on (same in every row that "
                             "gives it)"),
    "img_size": Column(_integer, "input size in pixels (default 224)"),
    "in_chans": Column(_integer, "input channels (default 3)"),
    "crop_pct": Column(_number, "eval centre-crop fraction the model was made for"),
    "interpolation": Column(_one_of(INTERPOLATIONS), "eval resize interpolation"),
    "mean": Column(_numbers, "per-channel normalisation mean (default ImageNet's)"),
    "std": Column(_numbers, "per-channel normalisation std (default ImageNet's)"),
    "family": Column(_one_of(FAMILIES), "default: from the architecture's name"),
    "top1": Column(_number, "reported top-1 in percent (launch --strict-top1 checks it)"),
    "kwargs": Column(_mapping, "JSON object of extra timm.create_model arguments"),
}


def _empty(value) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def _entry(row: dict, folder: Path) -> tuple[ModelEntry, str | None]:
    """The row's entry and its dataset (None: not given); ValueError naming the bad cell."""
    cells = {}
    for column, value in row.items():
        if _empty(value):
            continue
        try:
            cells[column] = COLUMNS[column].parse(value)
        except (ValueError, TypeError) as e:
            raise ValueError(f"{column}: {e}") from None
    if missing := [c for c, spec in COLUMNS.items() if spec.required and c != "dataset"
                   and c not in cells]:
        raise ValueError(f"no {', '.join(missing)}")
    in_chans = cells.get("in_chans", 3)
    fields = dict(name=cells["name"], arch=cells["arch"], num_classes=cells["num_classes"],
                  family=cells.get("family") or family_of(cells["arch"].split(".")[0]),
                  in_chans=in_chans,
                  input_size=(in_chans, cells.get("img_size", 224), cells.get("img_size", 224)),
                  kwargs=cells.get("kwargs", {}), top1_reported=cells.get("top1"),
                  crop_pct=cells.get("crop_pct"), interpolation=cells.get("interpolation"))
    for stat in ("mean", "std"):
        if stat in cells:
            if len(cells[stat]) != in_chans:
                raise ValueError(f"{stat}: {len(cells[stat])} values for {in_chans} channels")
            fields[stat] = cells[stat]
    if "weights" in cells:
        weights = (folder / cells["weights"]).resolve()
        if not weights.exists():
            raise ValueError(f"weights: no file {weights}")
        fields["weights"] = str(weights)
    return ModelEntry(**fields), cells.get("dataset")


@dataclass(frozen=True)
class Catalog:
    """A catalog file read: its zoo (None when a row is bad) and one line per problem."""
    path: Path
    digest: str
    zoo: Zoo | None
    problems: tuple[str, ...]


def _rows_yaml(path: Path) -> tuple[list, dict]:
    import yaml
    try:
        content = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise InputError(f"catalog {path} is not readable YAML: {str(e).splitlines()[0]}") \
            from None
    if isinstance(content, dict):
        rows = content.get("models") or []
        header = {k: v for k, v in content.items() if k != "models"}
        return rows, header
    return content or [], {}


def _rows_csv(path: Path) -> tuple[list, dict]:
    import pandas as pd
    return pd.read_csv(path, dtype=str, keep_default_na=False).to_dict("records"), {}


def _rows_parquet(path: Path) -> tuple[list, dict]:
    import pandas as pd
    return pd.read_parquet(path).to_dict("records"), {}


# suffix -> (file) -> (rows, file-level settings: dataset, transfer)
_READERS = {".csv": _rows_csv, ".parquet": _rows_parquet, ".yaml": _rows_yaml,
            ".yml": _rows_yaml}


def read_catalog(path) -> Catalog:
    """The catalog file at `path`, every bad row named (`ktbench zoo show` prints them)."""
    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise InputError(f"catalog file {path} does not exist")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:HASH_CHARS]
    reader = _READERS[next(s for s in _READERS if path.name.lower().endswith(s))]
    try:
        rows, header = reader(path)
    except (ValueError, OSError) as e:
        raise InputError(f"catalog {path} cannot be read: {str(e).splitlines()[0]}") from None
    problems, entries, datasets = [], [], {}
    for unknown in sorted({c for row in rows if isinstance(row, dict) for c in row}
                          - set(COLUMNS)):
        problems.append(f"unknown column {unknown!r}; columns: {', '.join(COLUMNS)}")
    for unknown in sorted(set(header) - {"dataset", "transfer"}):
        problems.append(f"unknown setting {unknown!r}; settings: dataset, transfer, models")
    if header.get("dataset"):
        datasets[_text(header["dataset"])] = "the file's dataset"
    try:
        transfer = _mapping(header.get("transfer") or {})
    except ValueError as e:
        problems.append(f"transfer: {e}")
    for number, row in enumerate(rows, start=1):
        label = f"row {number}"
        if not isinstance(row, dict):
            problems.append(f"{label}: not a mapping of columns")
            continue
        label += f" ({row['name']})" if not _empty(row.get("name")) else ""
        try:
            entry, dataset = _entry({k: v for k, v in row.items() if k in COLUMNS}, path.parent)
        except ValueError as e:
            problems.append(f"{label}: {e}")
            continue
        if any(e.name == entry.name for e in entries):
            problems.append(f"{label}: name {entry.name!r} is given twice")
        if dataset:
            datasets.setdefault(dataset, label)
        entries.append(entry)
    if len(datasets) > 1:
        problems.append("rows name different datasets: " + ", ".join(
            f"{d!r} ({where})" for d, where in datasets.items()))
    elif not datasets:
        problems.append("no dataset: give it in the dataset column")
    if not rows:
        problems.append("no models")
    zoo = None if problems else Zoo(
        name=f"{path}#{digest}", dataset=next(iter(datasets)), models=tuple(entries),
        transfer_defaults=transfer)
    return Catalog(path, digest, zoo, tuple(problems))


def catalog_zoo(name: str) -> Zoo:
    """The zoo of catalog file `name` (`path` or `path#hash`): InputError when a row is bad or
    the file changed since the hash was taken."""
    path, _, expected = name.partition("#")
    catalog = read_catalog(path)
    if expected and expected != catalog.digest:
        raise InputError(f"catalog {catalog.path} changed since this plan was made (content "
                         f"{expected}, now {catalog.digest}): plan again with --zoo "
                         f"{catalog.path}")
    if catalog.problems:
        more = f" (and {len(catalog.problems) - 1} more)" if len(catalog.problems) > 1 else ""
        raise InputError(f"catalog {catalog.path}: {catalog.problems[0]}{more}; "
                         f"ktbench zoo show --zoo {catalog.path} lists them")
    return catalog.zoo


for _suffix in _READERS:
    register_zoo_file(_suffix)(catalog_zoo)
