"""The launcher: a plan -> pending units per stage -> submitit jobs.

Stages run in order (predict, stats, transfer); each submits only units without a complete
result and not held by a live job, so a second launch of a finished (or still running) plan
submits nothing. Units are packed into tasks of near-equal estimated cost (`packing`, costs
from `unit_costs`), each lockstep group whole where that leaves no task idle, so a task computes
each frozen model's outputs once per group; on SLURM the tasks of a stage form job arrays of at
most the cluster's MaxArraySize tasks.

With `wait` (the default) the launcher submits a stage, waits for it, compacts what it wrote
(`results.compact`; `compact=False` leaves the parts), then submits the next. Without it (SLURM
only) every stage is submitted at once, each stage's arrays starting after the previous stage's
jobs end (`--dependency=afterany`), and the launcher returns at once; `ktbench status PLAN
--wait` follows the work. Units held by another live launch's jobs are not submitted again:
the summary counts them and names those jobs. A plan with nothing to submit needs no weights.
"""
import dataclasses
import math
import os
import sys
import time
from pathlib import Path

import pandas as pd
import submitit
from tqdm.auto import tqdm

from benchmark import trackers
from benchmark.cores import usable_cores
from benchmark.launch.slurm import SlurmOptions, array_chunks, cluster_max_array_size, submitit_parameters
from benchmark.launch.packing import pack_by_cost
from benchmark.launch.pending import pending_units
from benchmark.launch.preflight import check_in_fresh_process
from benchmark.launch.submissions import (jobs_dir, live_units, record_submission,
                                         remove_stray_job_folder)
from benchmark.units.unit import PROBE, STAGES, RunOptions
from pairs.plan import KEEP_STUDENTS, Plan
from pairs.probe import is_probed
from results.compact import Busy, CompactError, compact
from results.errors import InputError
from results.layout import ResultsLayout

EXECUTORS = ("local", "debug", "slurm")


@dataclasses.dataclass
class LaunchOptions:
    executor: str = "local"
    tasks: int | None = None           # tasks per stage; default: one per core locally,
    units_per_task: int | None = None  # ... one per unit on SLURM; or this many units per task
    threads: int | None = None         # torch threads per task (SLURM default: slurm.cpus or 1)
    timeout_min: int = 24 * 60         # per task; sbatch --time on SLURM
    retry_failed: bool = False
    strict_top1: bool = False          # a model > 5 points off its reported top-1 fails predict
    log: tuple[str, ...] = ()          # trackers mirroring transfer epochs (benchmark.trackers)
    log_dir: str | None = None         # ... their folder (default <results>/trackers)
    wait: bool = True                  # False: submit all stages chained by dependencies (SLURM)
    compact: bool = True               # compact each stage's tables when it ends (with wait)
    keep_students: str = "soup"        # none | soup (the plan's soups' ingredients) | all
    progress: bool = True
    slurm: SlurmOptions = dataclasses.field(default_factory=SlurmOptions)

    def __post_init__(self):
        if self.executor not in EXECUTORS:
            raise InputError(f"unknown executor {self.executor!r}; use one of {', '.join(EXECUTORS)}")
        if not self.wait and self.executor != "slurm":
            raise InputError("not waiting (--no-wait) needs the slurm executor: local and debug "
                             "jobs end with the launcher")
        if self.keep_students not in KEEP_STUDENTS:
            raise InputError(f"keep_students must be one of {', '.join(KEEP_STUDENTS)}, "
                             f"got {self.keep_students!r}")
        self.log = trackers.parse_trackers(self.log)
        for name in ("tasks", "units_per_task", "threads", "timeout_min"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise InputError(f"{name} must be >= 1, got {getattr(self, name)}")


def _local_slots() -> int:
    """Tasks a local launch runs at once by default: one per GPU on a GPU machine (each then
    gets its share of the cores for loader workers), else one per core."""
    import torch
    return torch.cuda.device_count() or usable_cores()


# executor -> default (tasks, most units per task) for n units: locally one task per GPU or
# core, on SLURM one per unit
_DEFAULT_TASKS = {"local": lambda n: (_local_slots(), None),
                  "debug": lambda n: (_local_slots(), None), "slurm": lambda n: (n, 1)}
# executor -> the most tasks one array may hold
_ARRAY_LIMITS = {"local": lambda options: math.inf, "debug": lambda options: math.inf,
                 "slurm": lambda options: options.slurm.max_array_size or cluster_max_array_size()}


def _tasks(stage: str, units: list, options: LaunchOptions, results_dir) -> list[list]:
    """The stage's units packed into tasks of near-equal estimated cost (`packing`)."""
    if stage == "stats":       # one vectorised pass over every pair
        return [units]
    if options.units_per_task:
        n_tasks, most = math.ceil(len(units) / options.units_per_task), options.units_per_task
    elif options.tasks:
        n_tasks, most = options.tasks, None
    else:
        n_tasks, most = _DEFAULT_TASKS[options.executor](len(units))
    if most == 1:              # a unit per task: nothing to weigh (10^5 units cost a minute)
        return [[unit] for unit in units]
    from benchmark.launch.unit_costs import unit_costs     # torch: only when something runs
    costs, groups = unit_costs(stage, units, results_dir)
    return [[units[i] for i in task] for task in pack_by_cost(costs, groups, n_tasks, most)]


def _threads(options: LaunchOptions, n_tasks: int) -> int:
    if options.threads:
        return options.threads
    if options.executor == "slurm":
        return options.slurm.cpus or 1
    return max(1, usable_cores() // n_tasks)       # local tasks all run at once


def _executor(options: LaunchOptions, results_dir: Path, stage: str, cpus: int,
              dependency: str | None):
    # a job starts as `python -m submitit...`, which puts its working folder first on sys.path:
    # a folder there named like one of ours (a `results/` of the user's) would shadow the
    # package; jobs inherit this environment (local: the process; SLURM: sbatch exports it)
    os.environ["PYTHONSAFEPATH"] = "1"
    executor = submitit.AutoExecutor(folder=jobs_dir(results_dir) / "%j", cluster=options.executor,
                                     slurm_max_num_timeout=options.slurm.max_timeouts)
    slurm = submitit_parameters(options.slurm)
    if dependency:
        slurm["slurm_dependency"] = dependency
    if options.executor == "local" and options.slurm.gpus is None:
        # submitit hides every GPU from a local job that asks for none
        import torch
        slurm["gpus_per_node"] = torch.cuda.device_count()
    executor.update_parameters(timeout_min=options.timeout_min, cpus_per_task=cpus,
                               name=f"ktbench-{stage}", **slurm)
    return executor


def _submit(stage: str, tasks: list[list], options: LaunchOptions, run_options: RunOptions,
            results_dir: Path, cache: Path, threads: int, dependency: str | None = None) -> list:
    """Submit a stage's tasks as job arrays of at most the array limit, each with the run
    options its units need; record which job holds which units."""
    from benchmark.launch.jobs import UnitTask      # torch: only when something runs
    cpus = options.slurm.cpus or threads
    limit = _ARRAY_LIMITS[options.executor](options)
    arrays = array_chunks(tasks, limit) if limit < len(tasks) else [tasks]
    jobs = []
    for array in arrays:
        n = len(array)
        executor = _executor(options, results_dir, stage, cpus, dependency)
        jobs += executor.map_array(UnitTask(), array, [str(results_dir)] * n, [str(cache)] * n,
                                   [threads] * n, [run_options.for_task(t) for t in array])
    record_submission(results_dir, options.executor, stage, [j.job_id for j in jobs], tasks)
    return jobs


def _held(unfinished: dict[str, list], live: dict[str, dict[str, str]]) -> dict[str, dict]:
    """Per stage, the unfinished unit ids that live jobs hold, and those jobs."""
    held = {}
    for stage in STAGES:
        holders = live.get(stage, {})
        ids = [i for unit in unfinished[stage] for i in unit.ids if i in holders]
        held[stage] = {"held": len(ids), "held_by": sorted({holders[i] for i in ids})}
    return held


def launch(plan: Plan | pd.DataFrame, results_dir, cache: Path, options: LaunchOptions) -> dict:
    """Run (or, without `wait`, submit) every pending unit of `plan`; returns, per stage,
    {"submitted": n, "failed": n (0 when not waiting), "errors": the failed units' distinct
    errors (`StageError`), "held": units held by live jobs of another launch, "held_by": those
    jobs}, and "blocked_by": a stage it needs whose units all failed (then it did not run)."""
    results_dir, plan = Path(results_dir), Plan.of(plan)
    trackers.check_available(options.log)
    if options.log and not options.log_dir:
        trackers_dir = ResultsLayout(results_dir.resolve()).trackers
        options = dataclasses.replace(options, log_dir=str(trackers_dir))
    live = live_units(results_dir)
    pending = pending_units(plan, results_dir, options.retry_failed)
    held = _held(pending, live)
    if any(h["held"] for h in held.values()):
        pending = pending_units(plan, results_dir, options.retry_failed, live)
    # the probe stage is the plan's only where its zoo is probed (pairs.probe)
    stages = [s for s in STAGES if s != PROBE.name or is_probed(plan.zoo.name)]
    summary = {stage: {"submitted": 0, "failed": 0, "errors": [], **held[stage]}
               for stage in stages}
    if not any(pending.values()):
        return summary
    _preflight(plan, cache, options, pending[PROBE.name])
    run_options = RunOptions(options.strict_top1, options.log, options.log_dir,
                             frozenset(plan.kept_students(options.keep_students)))
    if not options.wait:
        dependency = None
        for stage in stages:
            if units := pending[stage]:
                tasks = _tasks(stage, units, options, results_dir)
                jobs = _submit(stage, tasks, options, run_options, results_dir, cache,
                               _threads(options, len(tasks)), dependency)
                array_ids = sorted({job.job_id.split("_")[0] for job in jobs})
                dependency = "afterany:" + ":".join(array_ids)
            summary[stage]["submitted"] = len(pending[stage])
        remove_stray_job_folder(results_dir)
        return summary
    all_failed = set()
    for i, stage in enumerate(stages):
        if blocked := [need for need in STAGES[stage].needs if need in all_failed]:
            summary[stage]["blocked_by"] = blocked[0]   # its inputs are not there: not run
            all_failed.add(stage)
            continue
        # recomputed per stage: stats and transfer need the previous stage's results
        if i:
            pending = pending_units(plan, results_dir, options.retry_failed, live)
        if units := pending[stage]:
            tasks = _tasks(stage, units, options, results_dir)
            jobs = _submit(stage, tasks, options, run_options, results_dir, cache,
                           _threads(options, len(tasks)))
            failed, errors = _wait(jobs, tasks, stage, results_dir, options.progress)
            summary[stage].update(failed=failed, errors=errors)
            if failed == len(units):
                all_failed.add(stage)
            elif options.compact:
                _compact(results_dir, stage)
        summary[stage]["submitted"] = len(units)
    remove_stray_job_folder(results_dir)
    return summary


def _preflight(plan: Plan, cache: Path, options: LaunchOptions, pending_probes: list):
    """Every missing weight, a head that does not fit the dataset's classes, a model to probe
    without timm's feature interface, or a zoo or dataset that job processes would not resolve,
    in one line, before any job (and GPU time) is spent. Debug jobs run in this process: they
    see what it sees."""
    from benchmark import data                      # torch: only when something runs
    from benchmark.data.datasets import check_classes
    from benchmark.models import microzoo, weights
    from benchmark.models.build import check_probeable_archs
    from pairs.probe import backbone_of, backbone_zoo
    if options.executor != "debug":
        check_in_fresh_process(plan)
    zoo, used = plan.zoo, set(plan.models)
    entries = [m for m in zoo.models if m.name in used]
    check_classes(data.num_classes_of(zoo.dataset), entries)
    used_zoo = dataclasses.replace(zoo, models=tuple(entries))
    check_probeable_archs(backbone_of(zoo.get(unit.model)) for unit in pending_probes)
    weights.resolve_all([m for m in backbone_zoo(used_zoo).models if m.recipe is None])
    microzoo.ensure_zoo_weights(used_zoo, cache, progress=options.progress)


def _compact(results_dir: Path, stage: str):
    """Compact the stage's tables; a compaction already running, or a part it cannot read,
    leaves them as they are (with a warning: the results are complete either way)."""
    try:
        compact(results_dir, STAGES[stage].tables, wait=False)
    except (Busy, CompactError, OSError) as e:
        tqdm.write(f"ktbench: warning: {stage} results not compacted: {e}", file=sys.stderr)


@dataclasses.dataclass
class StageError:
    """One distinct error of a stage's failed units: its first line, how many units it failed,
    and the log of the first job it came from."""
    message: str
    count: int
    log: str


def _wait(jobs, tasks: list[list], stage: str, results_dir: Path,
          progress: bool) -> tuple[int, list[StageError]]:
    """Wait for the stage's jobs with a bar over its units (a unit counts once its part shows
    or its task's job ended: a compaction may merge the part before the bar sees it); returns
    the number of failed units and their distinct errors, most frequent first."""
    marks = STAGES[stage]
    settled: set[str] = set()
    total = sum(len(task) for task in tasks)
    with tqdm(total=total, desc=stage, unit="unit", disable=not progress) as bar:
        while True:
            ended = [job.done() for job in jobs]
            for job_ended, task in zip(ended, tasks):
                settled.update(u.key for u in task if u.key not in settled and (
                    job_ended or marks.part_shows(results_dir, u.key)))
            bar.update(len(settled) - bar.n)
            if all(ended):
                break
            time.sleep(0.5)
    failed, errors = 0, {}
    for job, task in zip(jobs, tasks):
        try:
            result = job.result()
            failed += result["failed"]
            lines = result["errors"]
        except Exception as e:   # the task died outside a unit: every unit in it is unfinished
            failed += len(task)
            lines = [str(e).strip().splitlines()[-1]] * len(task)
        for line in lines:
            error = errors.setdefault(line, StageError(line, 0, str(job.paths.stderr)))
            error.count += 1
    return failed, sorted(errors.values(), key=lambda e: -e.count)
