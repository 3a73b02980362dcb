"""The launcher: a plan -> pending units per stage -> submitit jobs, stage after stage.

Stages run in order (predict, stats, transfer); each submits only units without a complete
result, so a second launch of a finished plan submits nothing. Units are packed into tasks
(transfer units grouped by teacher, so a task computes each teacher's outputs once).
"""
import dataclasses
import os
import time
from pathlib import Path

import pandas as pd
import submitit
from tqdm.auto import tqdm

from benchmark import microzoo
from benchmark.jobs import run_task
from pairs.catalog import get_zoo
from pairs.keys import unit_key
from pairs.plan import PlanError
from results import connect, table_dir

EXECUTORS = ("local", "debug", "slurm")
STAGES = ("predict", "stats", "transfer")
# the table whose part named by a unit's key marks that unit as done
_DONE_TABLE = {"predict": "models", "stats": "pair_stats", "transfer": "transfer_runs"}


@dataclasses.dataclass
class LaunchOptions:
    executor: str = "local"
    tasks: int | None = None           # parallel tasks per stage; default: one per core locally
    threads: int | None = None         # torch threads per task
    timeout_min: int = 24 * 60
    retry_failed: bool = False
    progress: bool = True
    slurm: dict = dataclasses.field(default_factory=dict)   # submitit slurm_* parameters

    def __post_init__(self):
        if self.executor not in EXECUTORS:
            raise ValueError(f"unknown executor {self.executor!r}; use one of {', '.join(EXECUTORS)}")


def _zoo_of(plan: pd.DataFrame):
    zoos = plan["zoo"].unique()
    if len(zoos) != 1:
        raise PlanError(f"a plan must use one zoo, this one uses {', '.join(zoos)}")
    return get_zoo(zoos[0])


def pending_units(plan: pd.DataFrame, results_dir, retry_failed: bool = False) -> dict[str, list]:
    """The units of each stage that have no complete result yet."""
    zoo = _zoo_of(plan)
    dataset = zoo.dataset
    names = sorted(set(plan["teacher"]) | set(plan["student"]))
    predict = [{"stage": "predict", "key": unit_key("predict", model=zoo.get(n).fingerprint(),
                                                     dataset=dataset),
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
    pairs = plan[["teacher", "student", "compat"]].drop_duplicates()
    stats = []
    for compat, group in pairs.groupby("compat"):
        missing = sorted((t, s) for t, s, c in group.itertuples(index=False)
                         if (t, s, c) not in have_stats)
        if missing:
            stats.append({"stage": "stats", "zoo": zoo.name, "dataset": dataset, "compat": compat,
                          "pairs": missing, "key": unit_key(
                              "stats", pairs=missing, dataset=dataset, compat=compat,
                              predict=sorted(u["key"] for u in predict))})
    finished = ("ok", "diverged") if retry_failed else ("ok", "diverged", "failed")
    skip = set(runs.loc[runs["status"].isin(finished), "key"])
    transfer = [dict(row, stage="transfer") for row in
                plan[~plan["key"].isin(skip)].sort_values(["teacher", "key"]).to_dict("records")]
    return {"predict": [u for u in predict if u["key"] not in done_predict],
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


def _executor(options: LaunchOptions, folder: Path, cpus: int):
    executor = submitit.AutoExecutor(folder=folder / "%j", cluster=options.executor)
    executor.update_parameters(timeout_min=options.timeout_min, cpus_per_task=cpus,
                               name="ktbench", **options.slurm)
    return executor


def launch(plan: pd.DataFrame, results_dir, cache: Path, options: LaunchOptions) -> dict:
    """Run every pending unit of `plan`; returns {stage: {"submitted": n, "failed": n}}."""
    results_dir = Path(results_dir)
    zoo = _zoo_of(plan)
    used = set(plan["teacher"]) | set(plan["student"])
    microzoo.ensure_zoo_weights(dataclasses.replace(
        zoo, models=tuple(m for m in zoo.models if m.name in used)), cache,
        progress=options.progress)
    cores = os.cpu_count() or 1
    n_tasks = options.tasks or (cores if options.executor != "slurm" else 64)
    threads = options.threads or max(1, cores // n_tasks)
    summary = {}
    for stage in STAGES:
        # recomputed per stage: stats and transfer need the previous stage's results
        units = pending_units(plan, results_dir, options.retry_failed)[stage]
        failed = 0
        if units:
            chunks = pack(units, 1 if stage == "stats" else n_tasks)
            executor = _executor(options, results_dir / "jobs", threads)
            jobs = executor.map_array(run_task, chunks, [str(results_dir)] * len(chunks),
                                      [str(cache)] * len(chunks), [threads] * len(chunks))
            failed = _wait(jobs, stage, units, results_dir, options.progress)
        summary[stage] = {"submitted": len(units), "failed": failed}
    return summary


def _wait(jobs, stage: str, units: list, results_dir: Path, progress: bool) -> int:
    """Wait for the stage's jobs with a bar over its units; returns the number of failed units."""
    done_dir = table_dir(results_dir, _DONE_TABLE[stage])
    keys = [u["key"] for u in units]
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
    for job, chunk_units in zip(jobs, pack(units, len(jobs))):
        try:
            failed += job.result()["failed"]
        except Exception as e:   # the task died outside a unit: every unit in it is unfinished
            failed += len(chunk_units)
            tqdm.write(f"{stage} task {job.job_id} failed: {str(e).strip().splitlines()[-1]}")
    return failed
