"""One entry point that runs any unit by its stage, one that runs a task's units (transfer units
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
from benchmark.units.stats import run_stats
from benchmark.units.transfer import run_transfer
from benchmark.version import code_version
from results import TABLES, write_part


_RUNNERS = {"predict": run_predict, "stats": run_stats, "features": run_features}


def run_unit(unit: dict, results_dir, cache: Path, job_id: str = "") -> str:
    if unit["stage"] == "transfer":    # a multi-teacher unit has a `mode`
        runner = run_multi if unit.get("mode") else run_transfer
        return runner(unit, results_dir, cache, job_id)
    return _RUNNERS[unit["stage"]](unit, results_dir, cache)


def run_units(units: list[dict], results_dir, cache: Path, job_id: str = ""):
    """Run a task's units, transfer units in lockstep groups (`benchmark.units.group`); yields
    each unit with its status, or the exception it raised: one unit's failure never stops the
    others."""
    for group in lockstep_groups(units, results_dir):
        if shares(group[0]):
            outcomes = run_group(group, results_dir, cache, job_id)
        else:
            try:
                outcomes = {group[0]["key"]: run_unit(group[0], results_dir, cache, job_id)}
            except Exception as e:       # the unit's own failure: its task-mates go on
                outcomes = {group[0]["key"]: e}
        yield from ((unit, outcomes[unit["key"]]) for unit in group)


def record_failure(unit: dict, results_dir, error: BaseException, job_id: str = ""):
    """A failed transfer unit leaves a `failed` run row with its traceback (retried on request);
    a failed predict or stats unit leaves nothing, so the next launch simply runs it again."""
    if unit["stage"] != "transfer":
        return
    now = datetime.now(timezone.utc)
    row = dict.fromkeys(TABLES["transfer_runs"].names)
    row.update({k: unit[k] for k in ("key", "plan", "teacher", "student", "method", "params",
                                     "seed", "dataset")})
    row.update(teachers=unit.get("teachers") or unit["teacher"], mode=unit.get("mode") or "")
    row.update(compat=unit["compat"] or "", status="failed", epochs=0, job_id=job_id,
               error="".join(traceback.format_exception(error)), host=socket.gethostname(),
               code_version=code_version(), started_at=now, finished_at=now,
               disk_bytes=kept_bytes(results_dir, unit["key"]))
    write_part(results_dir, "transfer_runs", pd.DataFrame([row]), unit["key"])
