"""The launcher: a plan -> pending units per stage -> submitit jobs.

Stages run in order (predict, stats, transfer); each submits only units without a complete
result and not held by a live job, so a second launch of a finished (or still running) plan
submits nothing. Units are packed into tasks (transfer units grouped by teacher, so a task
computes each teacher's outputs once); on SLURM the tasks of a stage form job arrays of at most
the cluster's MaxArraySize tasks.

With `wait` (the default) the launcher submits a stage, waits for it, then submits the next.
Without it (SLURM only) every stage is submitted at once, each stage's arrays starting after
the previous stage's jobs end (`--dependency=afterany`), and the launcher returns at once;
`ktbench status PLAN --wait` follows the work.
"""
import dataclasses
import math
import os
import time
from pathlib import Path

import pandas as pd
import submitit
from tqdm.auto import tqdm

from benchmark import data, trackers

from benchmark.models import microzoo, weights
from benchmark.data.datasets import check_classes
from benchmark.launch.jobs import UnitTask
from benchmark.launch.slurm import SlurmOptions, array_chunks, cluster_max_array_size, submitit_parameters
from benchmark.units.predict import predict_key
from benchmark.launch.submissions import (jobs_dir, live_unit_ids, pair_id, record_submission,
                                         remove_stray_job_folder)
from pairs.catalog import get_zoo
from pairs.keys import unit_key
from pairs.plan import PlanError, teacher_student_pairs
from results import connect, table_dir

EXECUTORS = ("local", "debug", "slurm")
STAGES = ("predict", "stats", "transfer")
# the table whose part named by a unit's key marks that unit as done
_DONE_TABLE = {"predict": "models", "stats": "pair_stats", "transfer": "transfer_runs"}


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
    progress: bool = True
    slurm: SlurmOptions = dataclasses.field(default_factory=SlurmOptions)

    def __post_init__(self):
        if self.executor not in EXECUTORS:
            raise ValueError(f"unknown executor {self.executor!r}; use one of {', '.join(EXECUTORS)}")
        if not self.wait and self.executor != "slurm":
            raise ValueError("not waiting (--no-wait) needs the slurm executor: local and debug "
                             "jobs end with the launcher")
        self.log = trackers.parse_trackers(self.log)
        for name in ("tasks", "units_per_task", "threads", "timeout_min"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")


def _zoo_of(plan: pd.DataFrame):
    zoos = plan["zoo"].unique()
    if len(zoos) != 1:
        raise PlanError(f"a plan must use one zoo, this one uses {', '.join(zoos)}")
    zoo = get_zoo(zoos[0])
    if other := sorted(set(plan["dataset"]) - {zoo.dataset}):
        raise PlanError(f"the plan is for dataset {other[0]!r}, zoo {zoo.name!r} now reads "
                        f"{zoo.dataset!r} (its environment changed since the plan was made?)")
    return zoo


def pending_units(plan: pd.DataFrame, results_dir, retry_failed: bool = False,
                  busy: dict[str, set] | None = None) -> dict[str, list]:
    """The units of each stage that have no complete result yet, leaving out the unit ids in
    `busy` (stage -> ids held by live jobs, see `benchmark.launch.submissions`)."""
    busy = busy or {}
    zoo = _zoo_of(plan)
    dataset = zoo.dataset
    pairs = teacher_student_pairs(plan)     # every teacher of multi-teacher units too
    names = sorted(set(pairs["teacher"]) | set(pairs["student"]))
    predict = [{"stage": "predict", "key": predict_key(zoo.get(n), dataset),
                "zoo": zoo.name, "dataset": dataset, "model": n} for n in names]
    con = connect(results_dir)
    try:
        done_predict = set(con.execute("SELECT key FROM models").df()["key"])
        have_stats = set(map(tuple, con.execute(
            "SELECT teacher, student, compat FROM pair_stats WHERE dataset = ?",
            [dataset]).df().itertuples(index=False)))
        runs = con.execute("SELECT key, status FROM transfer_runs").df()
    finally:
        con.close()
    stats = []
    for compat, group in pairs.groupby("compat"):
        missing = sorted((t, s) for t, s, c in group.itertuples(index=False)
                         if (t, s, c) not in have_stats
                         and pair_id(t, s, c) not in busy.get("stats", ()))
        if missing:
            stats.append({"stage": "stats", "zoo": zoo.name, "dataset": dataset, "compat": compat,
                          "pairs": missing, "key": unit_key(
                              "stats", pairs=missing, dataset=dataset, compat=compat,
                              predict=sorted(u["key"] for u in predict))})
    finished = ("ok", "diverged") if retry_failed else ("ok", "diverged", "failed")
    skip = set(runs.loc[runs["status"].isin(finished), "key"]) | busy.get("transfer", set())
    # multi-teacher units last: a soup then finds its single-teacher runs done
    todo = plan[~plan["key"].isin(skip)]
    todo = todo.assign(_multi=todo["mode"].astype(bool))
    transfer = [dict(row, stage="transfer") for row in
                todo.sort_values(["_multi", "teacher", "key"]).drop(columns="_multi")
                .to_dict("records")]
    skip_predict = done_predict | busy.get("predict", set())
    return {"predict": [u for u in predict if u["key"] not in skip_predict],
            "stats": stats, "transfer": transfer}


def pack(units: list, n_tasks: int) -> list[list]:
    """Contiguous chunks of near-equal size (units arrive sorted by teacher)."""
    n_tasks = max(1, min(n_tasks, len(units)))
    size, extra = divmod(len(units), n_tasks)
    chunks, start = [], 0
    for i in range(n_tasks):
        end = start + size + (i < extra)
        chunks.append(units[start:end])
        start = end
    return chunks


def _local_slots() -> int:
    """Tasks a local launch runs at once by default: one per GPU on a GPU machine (each then
    gets its share of the cores for loader workers), else one per core."""
    import torch
    return torch.cuda.device_count() or os.cpu_count() or 1


# executor -> default number of tasks for n units (local: one per GPU or core; SLURM: one per unit)
_DEFAULT_TASKS = {"local": lambda n: _local_slots(), "debug": lambda n: _local_slots(),
                  "slurm": lambda n: n}
# executor -> the most tasks one array may hold
_ARRAY_LIMITS = {"local": lambda options: math.inf, "debug": lambda options: math.inf,
                 "slurm": lambda options: options.slurm.max_array_size or cluster_max_array_size()}


def _tasks(stage: str, units: list, options: LaunchOptions) -> list[list]:
    if stage == "stats":       # one vectorised pass over every pair
        return pack(units, 1)
    if options.units_per_task:
        return pack(units, math.ceil(len(units) / options.units_per_task))
    return pack(units, options.tasks or _DEFAULT_TASKS[options.executor](len(units)))


def _threads(options: LaunchOptions, n_tasks: int) -> int:
    if options.threads:
        return options.threads
    if options.executor == "slurm":
        return options.slurm.cpus or 1
    return max(1, (os.cpu_count() or 1) // n_tasks)


def _executor(options: LaunchOptions, results_dir: Path, stage: str, cpus: int,
              dependency: str | None):
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


def _submit(stage: str, tasks: list[list], options: LaunchOptions, results_dir: Path,
            cache: Path, threads: int, dependency: str | None = None) -> list:
    """Submit a stage's tasks as job arrays of at most the array limit; record which job
    holds which units."""
    cpus = options.slurm.cpus or threads
    limit = _ARRAY_LIMITS[options.executor](options)
    arrays = array_chunks(tasks, limit) if limit < len(tasks) else [tasks]
    jobs = []
    for array in arrays:
        n = len(array)
        executor = _executor(options, results_dir, stage, cpus, dependency)
        jobs += executor.map_array(UnitTask(), array, [str(results_dir)] * n, [str(cache)] * n,
                                   [threads] * n)
    record_submission(results_dir, options.executor, stage, [j.job_id for j in jobs], tasks)
    return jobs


def launch(plan: pd.DataFrame, results_dir, cache: Path, options: LaunchOptions) -> dict:
    """Run (or, without `wait`, submit) every pending unit of `plan`; returns
    {stage: {"submitted": n, "failed": n}} (failed: 0 when not waiting)."""
    results_dir = Path(results_dir)
    zoo = _zoo_of(plan)
    trackers.check_available(options.log)
    if options.log and not options.log_dir:
        options = dataclasses.replace(options, log_dir=str(results_dir.resolve() / "trackers"))
    pairs = teacher_student_pairs(plan)
    used = set(pairs["teacher"]) | set(pairs["student"])
    # every missing weight, or a head that does not fit the dataset's classes, in one line,
    # before any job (and GPU time) is spent
    entries = [m for m in zoo.models if m.name in used]
    check_classes(data.num_classes_of(zoo.dataset), entries)
    weights.resolve_all([m for m in entries if m.recipe is None])
    microzoo.ensure_zoo_weights(dataclasses.replace(zoo, models=tuple(entries)), cache,
                                progress=options.progress)
    busy = live_unit_ids(results_dir)
    summary = {}
    if not options.wait:
        pending = pending_units(plan, results_dir, options.retry_failed, busy)
        dependency = None
        for stage in STAGES:
            if units := _with_options(pending[stage], options):
                tasks = _tasks(stage, units, options)
                jobs = _submit(stage, tasks, options, results_dir, cache,
                               _threads(options, len(tasks)), dependency)
                array_ids = sorted({job.job_id.split("_")[0] for job in jobs})
                dependency = "afterany:" + ":".join(array_ids)
            summary[stage] = {"submitted": len(pending[stage]), "failed": 0}
        remove_stray_job_folder(results_dir)
        return summary
    for stage in STAGES:
        # recomputed per stage: stats and transfer need the previous stage's results
        units = _with_options(pending_units(plan, results_dir, options.retry_failed, busy)[stage],
                              options)
        failed = 0
        if units:
            tasks = _tasks(stage, units, options)
            jobs = _submit(stage, tasks, options, results_dir, cache,
                           _threads(options, len(tasks)))
            failed = _wait(jobs, tasks, stage, results_dir, options.progress)
        summary[stage] = {"submitted": len(units), "failed": failed}
    remove_stray_job_folder(results_dir)
    return summary


def _with_options(units: list[dict], options: LaunchOptions) -> list[dict]:
    """Units carrying the launch options that change how (not what) they run."""
    extra = dict(strict_top1=True) if options.strict_top1 else {}
    if options.log:
        extra.update(log=",".join(options.log), log_dir=options.log_dir)
    return [dict(u, **extra) for u in units] if extra else units


def _wait(jobs, tasks: list[list], stage: str, results_dir: Path, progress: bool) -> int:
    """Wait for the stage's jobs with a bar over its units; returns the number of failed units."""
    done_dir = table_dir(results_dir, _DONE_TABLE[stage])
    keys = [u["key"] for task in tasks for u in task]
    with tqdm(total=len(keys), desc=stage, unit="unit", disable=not progress) as bar:
        while True:
            finished = all(job.done() for job in jobs)
            done = sum((done_dir / f"{k}.parquet").is_file() for k in keys)
            if done > bar.n:
                bar.update(done - bar.n)
            if finished:
                break
            time.sleep(0.5)
    failed = 0
    for job, task in zip(jobs, tasks):
        try:
            failed += job.result()["failed"]
        except Exception as e:   # the task died outside a unit: every unit in it is unfinished
            failed += len(task)
            tqdm.write(f"{stage} task {job.job_id} failed: {str(e).strip().splitlines()[-1]}")
    return failed
