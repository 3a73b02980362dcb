"""Lockstep groups: the transfer units of a task that see the same batches, trained together
(docs/slurm.md#sharing-frozen-passes).

A unit's batches are a function of its dataset (the decode its student is fed), seed and the
stream fields of its training config (`TrainingConfig.stream`: batch size, training samples,
augmentation; precision decides the frozen models' outputs, epochs how long it runs). Units equal
in all of these (`stream_key`), with no checkpoint fitted to another batch size, form a group of
at most `MAX_GROUP`, in the task's order (the launcher sorts by teacher, then student):
single-teacher and `parallel` units; sequential and soup units run alone. A group loads each
frozen model once and steps its runs in lockstep (`benchmark.training.lockstep`): one gather, one
augmentation and one forward per distinct frozen model per batch, then each unit's own step.

On a GPU the group must fit at its batch size with every one of its models (`group_fits`); one
that does not (or runs out of memory while loading) is split in two, and so on down to single
units, which fit their batch size as they would alone. Every unit ends exactly as it would alone;
one that fails stops alone (its error is its outcome) and its group-mates go on.
"""
import functools
from pathlib import Path

import pandas as pd
import torch

from benchmark.methods import get_method, reference_spec
from benchmark.methods.training import TrainingConfig
from benchmark.models import gpu
from benchmark.training import lockstep
from benchmark.units.checkpoint import checkpoint_path
from benchmark.units.multi import parallel_run
from benchmark.units.transfer import transfer_run, unit_params
from benchmark.units.unit import RunOptions, TransferUnit, Unit, transfer_units
from pairs.catalog import get_zoo, preprocessing_fields
from pairs.cost import RANDOM_INIT

MAX_GROUP = 16
# unit mode -> its run (modes not listed run alone)
_RUNS = {"": transfer_run, "parallel": parallel_run}


def shares(unit: Unit) -> bool:
    """Whether a unit may run in a lockstep group (else it runs alone, by its type)."""
    return isinstance(unit, TransferUnit) and unit.mode in _RUNS


def stream_key(unit: Unit, results_dir) -> tuple | None:
    """Units with equal keys see the same batches; None: a unit that runs alone. A unit resumed
    from a checkpoint keeps the batch size it was fitted to."""
    if not shares(unit):
        return None
    training = TrainingConfig.of(unit_params(unit))
    resumed = _resumed_batch_size(checkpoint_path(results_dir, unit.key))
    return (unit.zoo, unit.dataset, unit.seed, *training.stream(),
            resumed or training.batch_size,
            *_student_decode(unit.zoo, unit.student, unit.dataset))


@functools.lru_cache(maxsize=4096)
def _student_decode(zoo: str, student: str, dataset: str) -> tuple:
    """A run is fed its student's decode: units whose students are fed other decodes see other
    batches (once per student: a plan's cost estimate asks for every unit)."""
    return tuple(preprocessing_fields(get_zoo(zoo).get(student), dataset).values())


def _resumed_batch_size(path: Path) -> int | None:
    if not path.is_file():
        return None
    state = torch.load(path, weights_only=True, map_location="cpu", mmap=True)
    return state["batch"]["batch_size"] if "batch" in state else None


def lockstep_groups(units: list[Unit], results_dir) -> list[list[Unit]]:
    """A task's units as groups of at most MAX_GROUP, in the task's order of each group's first
    unit; a unit that runs alone is a group of one."""
    groups: dict = {}
    for i, unit in enumerate(units):
        key = stream_key(unit, results_dir)
        groups.setdefault(("alone", i) if key is None else key, []).append(unit)
    return [group[start:start + MAX_GROUP] for group in groups.values()
            for start in range(0, len(group), MAX_GROUP)]


def run_group(units: list[TransferUnit], results_dir, cache: Path, job_id: str = "",
              options: RunOptions = RunOptions()) -> dict:
    """Run the units of one group in lockstep; {key: status, or the exception it raised}."""
    loaded, runs, outcomes = {}, [], {}
    for unit in units:
        try:
            runs.append(_RUNS[unit.mode](unit, results_dir, cache, job_id, options,
                                         loaded=loaded))
        except Exception as e:           # the unit's own failure: its group-mates go on
            if gpu.is_oom(e) and len(units) > 1:
                del runs, loaded
                return _split(units, results_dir, cache, job_id, options)
            outcomes[unit.key] = e
    if len(runs) > 1 and not lockstep.group_fits([run.trainer for run in runs]):
        del runs, loaded
        return _split(units, results_dir, cache, job_id, options)
    if len(runs) == 1 and not runs[0].resumed:
        runs[0].trainer.fit_batch_size()      # alone: the batch halves until it fits
    if runs:
        lockstep.run_lockstep(runs, lambda run, e: outcomes.__setitem__(run.key, e))
    outcomes.update({run.key: run.status for run in runs if run.key not in outcomes})
    return outcomes


def _split(units: list[TransferUnit], results_dir, cache: Path, job_id: str,
           options: RunOptions) -> dict:
    """A group that does not fit, as two halves run one after the other."""
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    half = len(units) // 2
    return {**run_group(units[:half], results_dir, cache, job_id, options),
            **run_group(units[half:], results_dir, cache, job_id, options)}


def plan_groups(plan: pd.DataFrame, results_dir) -> pd.Series:
    """Each unit's lockstep group (plan's index) when a launch packs at least MAX_GROUP units
    per task: what the cost estimate assumes."""
    units = transfer_units(plan.sort_values(["teacher", "student", "key"]))
    ids = {u.key: i for i, g in enumerate(lockstep_groups(units, results_dir)) for u in g}
    return plan["key"].map(ids)


def frozen_models(unit: TransferUnit) -> list[str]:
    """The frozen models a unit forwards, by name (a randomly initialised teacher:
    `<name>@random`); a multi-teacher unit: its teachers and its student."""
    teachers = unit.teacher_names
    if unit.multi:
        return teachers + [unit.student]
    method = get_method(unit.method)(unit_params(unit))
    names = {"teacher": teachers[0], "student": unit.student,
             "random_teacher": teachers[0] + RANDOM_INIT}
    return list(dict.fromkeys(names[reference_spec(ref)[0]] for ref in method.references))
