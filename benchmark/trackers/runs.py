"""Tracker runs of transfer units: a registry of trackers by name, the runs a process has open
(one per unit and tracker, opened at a unit's first logged epoch, finished when its results are
written), and the two trackers ktbench knows.

The launch's run options name the trackers (`log`) and their folder (`log_dir`, default
`<results>/trackers`). Metrics are the epoch row's numbers (its
`epoch` is the step); the run's config is the unit (teacher, student, method, params, seed, ...).

- `wandb`: `wandb.init(id=<unit key>, resume="allow", dir=<log_dir>)`, project `$WANDB_PROJECT`
  (default `ktbench`), grouped by plan; W&B's own settings apply (`WANDB_MODE=offline` writes
  `<log_dir>/wandb/offline-run-*-<key>/`, uploaded later by `wandb sync`).
- `tensorboard`: event files in `<log_dir>/tensorboard/<unit key>/`, flushed after every epoch;
  a resumed unit appends to the same folder.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from benchmark.units.unit import RunOptions, TransferUnit

from results.errors import InputError

_TRACKERS: dict[str, tuple[str, Callable]] = {}   # name -> (package it needs, run factory)
_OPEN: dict[str, list] = {}                       # unit key -> its open runs in this process
_CONFIG = ("plan", "zoo", "dataset", "teacher", "teachers", "student", "method", "seed", "compat",
           "mode")


def register_tracker(name: str, package: str):
    """Decorator of a run factory `(key, name, config, folder) -> run` with `log(metrics, step)`
    and `finish(status)`; `package` is what it imports (checked before any job)."""
    def wrap(factory: Callable):
        _TRACKERS[name] = (package, factory)
        return factory
    return wrap


def list_trackers() -> list[str]:
    return sorted(_TRACKERS)


def parse_trackers(spec) -> tuple[str, ...]:
    """`wandb,tensorboard` (or a list of names) -> known tracker names; InputError otherwise."""
    names = tuple(n.strip() for n in (spec.split(",") if isinstance(spec, str) else spec or ())
                  if n.strip())
    if unknown := [n for n in names if n not in _TRACKERS]:
        raise InputError(f"unknown tracker {unknown[0]!r}; trackers: {', '.join(list_trackers())}")
    return tuple(dict.fromkeys(names))


def check_available(names) -> None:
    """Every tracker's package importable: InputError naming the install otherwise."""
    import importlib.util
    for name in names:
        package = _TRACKERS[name][0]
        if importlib.util.find_spec(package) is None:
            raise InputError(f"--log {name} needs the {package} package: "
                             "pip install 'ktbench[trackers]'")


def log_epoch(unit: TransferUnit, options: RunOptions, row: dict) -> None:
    """Mirror one epoch row of `unit` to the trackers its run options name (none: nothing
    happens)."""
    if not options.log:
        return
    if unit.key not in _OPEN:
        config = {k: v for k, v in dataclasses.asdict(unit).items() if k in _CONFIG}
        config["params"] = unit.params_dict()
        title = f"{unit.method} {unit.teachers} -> {unit.student} seed {unit.seed}"
        _OPEN[unit.key] = [_TRACKERS[n][1](unit.key, title, config, options.tracker_dir)
                           for n in parse_trackers(options.log)]
    metrics = {k: float(v) for k, v in row.items() if k != "epoch" and
               isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}
    for run in _OPEN[unit.key]:
        run.log(metrics, int(row["epoch"]))


def finish_unit(unit: TransferUnit, status: str) -> None:
    """Finish the unit's runs (its results are written)."""
    for run in _OPEN.pop(unit.key, []):
        run.finish(status)


class WandbRun:
    def __init__(self, key: str, name: str, config: dict, folder: Path):
        import wandb
        folder.mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(project=os.environ.get("WANDB_PROJECT") or "ktbench", id=key,
                              name=name, group=config.get("plan"), config=config,
                              dir=str(folder), resume="allow", reinit="finish_previous",
                              settings=wandb.Settings(silent=True, console="off"))

    def log(self, metrics: dict, step: int) -> None:
        self.run.log(metrics, step=step)

    def finish(self, status: str) -> None:
        self.run.summary["status"] = status
        self.run.finish()


class TensorBoardRun:
    def __init__(self, key: str, name: str, config: dict, folder: Path):
        from torch.utils.tensorboard import SummaryWriter
        self.writer = SummaryWriter(log_dir=str(folder / "tensorboard" / key))
        self.writer.add_text("unit", f"{name}\n\n{json.dumps(config, sort_keys=True)}")

    def log(self, metrics: dict, step: int) -> None:
        for name, value in metrics.items():
            self.writer.add_scalar(name, value, step)
        self.writer.flush()

    def finish(self, status: str) -> None:
        self.writer.add_text("status", status)
        self.writer.close()


register_tracker("wandb", "wandb")(WandbRun)
register_tracker("tensorboard", "tensorboard")(TensorBoardRun)
