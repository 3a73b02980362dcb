"""What one submitit task runs: a packed list of units, each isolated from the others' failures;
transfer units that see the same batches train in lockstep groups (`benchmark.units.group`).

Paths arrive as strings and are resolved here, at run time, so a requeued task on another node
finds its checkpoints and caches where they are now. `UnitTask` is what the launcher submits: a
`submitit.helpers.Checkpointable`, so on preemption or time-out submitit requeues it with the
same arguments, it skips the units that finished and each transfer unit resumes from its own
checkpoint.
"""
from pathlib import Path

import submitit
import torch

from benchmark.units.dispatch import error_line, record_failure, run_units
from benchmark.units.unit import RunOptions, Unit, not_done


def _job_id() -> str:
    try:
        return submitit.JobEnvironment().job_id
    except RuntimeError:   # not inside a submitit job (tests calling run_task directly)
        return ""


def run_task(units: list[Unit], results_dir: str, cache: str, threads: int,
             options: RunOptions = RunOptions()) -> dict:
    """Units counted by outcome (ok, diverged, skipped, failed) and `errors`: the first line of
    each failed unit's error."""
    torch.set_num_threads(threads)
    results_dir, cache = Path(results_dir), Path(cache)
    job_id = _job_id()
    todo = not_done(units, results_dir)   # finished before a requeue, or by another launch
    counts = {"ok": 0, "diverged": 0, "skipped": len(units) - len(todo), "failed": 0}
    errors = []                              # each failed unit's error, first line
    for unit, outcome in run_units(todo, results_dir, cache, job_id, options):
        if isinstance(outcome, Exception):   # one bad unit must not take its task-mates down
            record_failure(unit, results_dir, outcome, job_id)
            counts["failed"] += 1
            errors.append(error_line(outcome))
        else:
            counts[outcome] += 1
    return {**counts, "errors": errors}


class UnitTask(submitit.helpers.Checkpointable):
    """`run_task` as a submitit callable that is requeued, not lost, on preemption or time-out."""

    def __call__(self, units: list[Unit], results_dir: str, cache: str, threads: int,
                 options: RunOptions = RunOptions()) -> dict:
        return run_task(units, results_dir, cache, threads, options)
