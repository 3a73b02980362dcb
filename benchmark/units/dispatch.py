"""One entry point that runs any unit by its type, one that runs a task's units (transfer units
in lockstep groups), and the record a failed unit leaves."""
import socket
import traceback
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from benchmark.units.checkpoint import kept_bytes
from benchmark.units.features import run_features
from benchmark.units.group import lockstep_groups, run_group, shares
from benchmark.units.multi import run_multi
from benchmark.units.predict import run_predict
from benchmark.units.probe import run_probe
from benchmark.units.stats import run_stats
from benchmark.units.transfer import run_transfer
from benchmark.units.unit import (FeaturesUnit, PredictUnit, ProbeUnit, RunOptions, StatsUnit,
                                  TransferUnit, Unit)
from benchmark.version import code_version
from results import InputError, write_part

# unit type -> (unit, results folder, cache, job id, run options) -> status
_RUNNERS = {
    PredictUnit: lambda unit, results_dir, cache, job_id, options:
        run_predict(unit, results_dir, cache, options.strict_top1),
    StatsUnit: lambda unit, results_dir, cache, job_id, options:
        run_stats(unit, results_dir, cache),
    ProbeUnit: lambda unit, results_dir, cache, job_id, options:
        run_probe(unit, results_dir, cache),
    FeaturesUnit: lambda unit, results_dir, cache, job_id, options:
        run_features(unit, results_dir, cache),
    TransferUnit: lambda unit, results_dir, cache, job_id, options:
        (run_multi if unit.multi else run_transfer)(unit, results_dir, cache, job_id, options),
}


def run_unit(unit: Unit, results_dir, cache: Path, job_id: str = "",
             options: RunOptions = RunOptions()) -> str:
    return _RUNNERS[type(unit)](unit, results_dir, cache, job_id, options)


def run_units(units: list[Unit], results_dir, cache: Path, job_id: str = "",
              options: RunOptions = RunOptions()):
    """Run a task's units, transfer units in lockstep groups (`benchmark.units.group`); yields
    each unit with its status, or the exception it raised: one unit's failure never stops the
    others."""
    for group in lockstep_groups(units, results_dir):
        if shares(group[0]):
            outcomes = run_group(group, results_dir, cache, job_id, options)
        else:
            try:
                outcomes = {group[0].key: run_unit(group[0], results_dir, cache, job_id, options)}
            except Exception as e:       # the unit's own failure: its task-mates go on
                outcomes = {group[0].key: e}
        yield from ((unit, outcomes[unit.key]) for unit in group)


# unit type -> what the unit was, in words (the `unit` column of `unit_failures`)
_DESCRIPTIONS = {
    PredictUnit: lambda unit: unit.model,
    ProbeUnit: lambda unit: f"{unit.model} ({unit.recipe})",
    StatsUnit: lambda unit: f"{len(unit.pairs)} pairs" + (f" ({unit.compat})" * bool(unit.compat)),
    FeaturesUnit: lambda unit: unit.model,
    TransferUnit: lambda unit: f"{unit.teachers} -> {unit.student} {unit.method} seed {unit.seed}",
}


def error_line(error: BaseException) -> str:
    """An error's first line as a launch reports it: `KeyError: 'x'`, or an InputError's message."""
    lines = str(error).strip().splitlines()
    if isinstance(error, InputError) and lines:
        return lines[0]
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


def record_failure(unit: Unit, results_dir, error: BaseException, job_id: str = ""):
    """A failed unit of any stage leaves a `unit_failures` row with its error (a launch of the
    same plan runs it again: the row marks no unit done); a failed transfer unit also leaves a
    `failed` run row with its traceback (retried on request)."""
    now = datetime.now(timezone.utc)
    trace = "".join(traceback.format_exception(error))
    if isinstance(unit, TransferUnit):
        row = unit.run_row("failed", job_id=job_id, started_at=now, finished_at=now,
                           disk_bytes=kept_bytes(results_dir, unit.key), epochs=0, error=trace)
        write_part(results_dir, "transfer_runs", pd.DataFrame([row]), unit.key)
    failure = {"stage": unit.stage.name, "key": unit.key, "dataset": unit.dataset,
               "unit": _DESCRIPTIONS.get(type(unit), lambda u: u.key)(unit),
               "message": error_line(error),
               "error": trace, "job_id": job_id, "host": socket.gethostname(),
               "code_version": code_version(), "failed_at": now}
    write_part(results_dir, "unit_failures", pd.DataFrame([failure]), unit.key)
