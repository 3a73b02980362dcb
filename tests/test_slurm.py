"""The slurm executor on a real SLURM cluster (`.ci/slurm-up.sh` starts one on this machine).

Skipped when `sinfo` is missing or the cluster does not answer. Each test prints its wall
time (pytest -s shows it): the round trips through sbatch, the scheduler and the array tasks.
"""
import json
import shutil
import subprocess
import time

import pyarrow.parquet as pq
import pytest
import torch

from benchmark.launch.launcher import LaunchOptions, launch
from benchmark.methods import resolve_params
from benchmark.launch.slurm import SlurmOptions
from benchmark.launch.status import wait_for_plan
from benchmark.launch.submissions import jobs_dir
from benchmark.units.transfer import checkpoint_path
from pairs.plan import all_pairs, make_plan
from results import read_table, table_dir

pytestmark = pytest.mark.slurm


@pytest.fixture(scope="module")
def cluster():
    if shutil.which("sinfo") is None:
        pytest.skip("no SLURM client (sinfo) on this machine; start one with .ci/slurm-up.sh")
    try:
        states = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True,
                                timeout=20).stdout.split()
    except (OSError, subprocess.SubprocessError):
        states = []
    if not any(s.rstrip("*~#") in ("idle", "mixed", "allocated") for s in states):
        pytest.skip("the SLURM cluster does not answer (no node up); run .ci/slurm-up.sh")


def _options(**kwargs) -> LaunchOptions:
    # timeout_min > 10: submitit counts an interrupt as a preemption only then (notes/slurm.md);
    # memory per task, or each task would hold the whole node's memory
    slurm = SlurmOptions(cpus=1, mem="2G", **kwargs.pop("slurm", {}))
    return LaunchOptions(executor="slurm", timeout_min=60, progress=False, slurm=slurm, **kwargs)


def _plan(zoo, pairs, **params):
    methods = {"kl": resolve_params("kl", zoo.transfer_defaults, params)}
    return make_plan(zoo, pairs, methods, seeds=[0])


def _manifests(results_dir) -> list[dict]:
    folder = jobs_dir(results_dir) / "launches"
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]


@pytest.fixture(scope="module")
def launched(cluster, tiny_zoo, cache, tmp_path_factory):
    """A plan run stage by stage on SLURM, arrays limited to 2 tasks: (plan, results, summary)."""
    results_dir = tmp_path_factory.mktemp("slurm-results")
    plan = _plan(tiny_zoo, all_pairs([m.name for m in tiny_zoo.models])[:2], epochs=1)
    t0 = time.perf_counter()
    summary = launch(plan, results_dir, cache, _options(slurm={"max_array_size": 2}))
    print(f"\nslurm: 3 predict + 1 stats + 2 transfer units, stage by stage: "
          f"{time.perf_counter() - t0:.1f} s")
    return plan, results_dir, summary


def test_plan_runs_as_arrays_chunked_to_the_limit_and_relaunch_submits_nothing(
        launched, cache):
    plan, results_dir, summary = launched
    assert summary == {"predict": {"submitted": 3, "failed": 0, "held": 0,
                                   "held_by": [], "errors": []},
                       "stats": {"submitted": 1, "failed": 0, "held": 0,
                                 "held_by": [], "errors": []},
                       "transfer": {"submitted": 2, "failed": 0, "held": 0,
                                    "held_by": [], "errors": []}}
    predict = [m for m in _manifests(results_dir) if m["stage"] == "predict"]
    (jobs,) = [list(m["tasks"]) for m in predict]
    assert len(jobs) == 3 and len({j.split("_")[0] for j in jobs}) == 2   # arrays of 2 and 1
    runs = read_table(results_dir, "transfer_runs")
    assert sorted(runs["key"]) == sorted(plan["key"]) and set(runs["status"]) == {"ok"}
    assert all(job_id.split("_")[0].isdigit() for job_id in runs["job_id"])

    manifests = len(_manifests(results_dir))
    t0 = time.perf_counter()
    again = launch(plan, results_dir, cache, _options())
    print(f"slurm: relaunch of the finished plan: {time.perf_counter() - t0:.1f} s")
    assert all(stage["submitted"] == 0 for stage in again.values())
    assert len(_manifests(results_dir)) == manifests


def test_interrupted_task_requeues_and_resumes_from_its_checkpoint(
        launched, tiny_zoo, cache):
    from submitit import SlurmJob
    _, results_dir, _ = launched      # predictions exist; this pair has no stats yet
    epochs = 4
    pair = all_pairs([m.name for m in tiny_zoo.models])[2]
    plan = _plan(tiny_zoo, [pair], epochs=epochs, train_samples=2048)
    key = plan["key"][0]
    t0 = time.perf_counter()
    summary = launch(plan, results_dir, cache, _options(wait=False))   # chained by a dependency
    assert [s["submitted"] for s in summary.values()] == [0, 1, 1]
    transfer = [m for m in _manifests(results_dir) if m["stage"] == "transfer"][-1]
    (job_id,) = transfer["tasks"]

    checkpoint = checkpoint_path(results_dir, key)
    deadline = time.monotonic() + 150
    while not checkpoint.is_file():
        assert time.monotonic() < deadline, "the transfer task wrote no checkpoint"
        time.sleep(0.1)
    saved = torch.load(checkpoint, weights_only=True)["rows"]
    # a preemption signal (the job is far from its time limit, so submitit takes USR2 for one).
    # Not `_interrupt()`'s SIGTERM-then-USR2: SLURM may deliver them in either order, and a
    # SIGTERM after the USR2 kills the `scontrol requeue` its handler started (seen once in a
    # full suite run: the unit was recorded failed instead of requeued).
    SlurmJob(folder=jobs_dir(results_dir) / "%j", job_id=job_id)._interrupt(timeout=True)
    t_interrupt = time.perf_counter()
    assert 0 < len(saved) < epochs

    status = wait_for_plan(plan, results_dir, poll_s=1.0, progress=False)
    print(f"\nslurm: stats -> transfer chained, transfer preempted after "
          f"{len(saved)}/{epochs} epochs, requeued and finished: {time.perf_counter() - t0:.1f} s "
          f"({time.perf_counter() - t_interrupt:.1f} s after the interrupt)")
    assert status["done"].tolist() == [2, 1, 1] and status.drop(columns="done").sum().sum() == 0

    log = (jobs_dir(results_dir) / job_id / f"{job_id}_0_log.out").read_text()
    assert "requeu" in log.lower()
    # no lost or duplicated rows: one part file per table for the unit, every epoch once
    (part,) = table_dir(results_dir, "transfer_epochs").glob(f"{key}.parquet")
    rows = pq.read_table(part).to_pandas().sort_values("epoch")
    assert rows["epoch"].tolist() == list(range(epochs))
    (run,) = read_table(results_dir, "transfer_runs").query("key == @key").itertuples()
    assert run.status == "ok" and run.epochs == epochs
    # the epochs done before the interrupt were resumed from the checkpoint, not redone
    for before in saved:
        assert rows.loc[rows["epoch"] == before["epoch"], "seconds"].item() == before["seconds"]
    assert not checkpoint.exists()


SWEEP_SEEDS = 251           # x 4 ordered pairs of the tiny zoo: 1,004 transfer units


def test_a_sweep_of_a_thousand_units_packed_into_arrays(cluster, tiny_zoo, cache,
                                                        tmp_path_factory):
    """1,004 one-batch units packed 51 to a task (20 tasks: each pays its imports once) into
    arrays of at most 10 tasks, stages chained on the cluster; a compaction while the transfer
    arrays run; every unit lands once, status counts them, a relaunch submits nothing. The
    students are the two CNNs: evaluating the MLP-mixer student would triple the sweep's time."""
    from results.compact import compact
    import pyarrow.dataset as ds
    results_dir = tmp_path_factory.mktemp("slurm-sweep")
    names = [m.name for m in tiny_zoo.models]
    params = resolve_params("kl", tiny_zoo.transfer_defaults,
                            {"epochs": 1, "train_samples": 64, "batch_size": 64})
    pairs = [(teacher, student) for teacher, student in all_pairs(names)
             if student != "resmlp_tiny"]
    plan = make_plan(tiny_zoo, pairs, {"kl": params}, seeds=range(SWEEP_SEEDS))
    assert len(plan) == 1004
    t0 = time.perf_counter()
    summary = launch(plan, results_dir, cache, _options(
        wait=False, units_per_task=51, slurm={"max_array_size": 10}))
    submitted = time.perf_counter() - t0
    assert [s["submitted"] for s in summary.values()] == [3, 1, 1004]
    (transfer,) = [m for m in _manifests(results_dir) if m["stage"] == "transfer"]
    arrays = {job.split("_")[0] for job in transfer["tasks"]}
    assert len(transfer["tasks"]) == 20 and len(arrays) == 2

    # a compaction while the transfer arrays write their parts
    runs_dir = table_dir(results_dir, "transfer_runs")
    deadline = time.monotonic() + 900
    while len(list(runs_dir.glob("transfer-*.parquet")) if runs_dir.is_dir() else []) < 200:
        assert time.monotonic() < deadline, "200 transfer results took over 15 minutes"
        time.sleep(1)
    middle = compact(results_dir)
    assert any(r.table == "transfer_runs" and r.parts >= 200 for r in middle)

    status = wait_for_plan(plan, results_dir, poll_s=2.0, progress=False)
    wall = time.perf_counter() - t0
    assert status["done"].tolist() == [3, 4, 1004]
    assert status.drop(columns="done").to_numpy().sum() == 0
    compact(results_dir)
    # every unit's rows exactly once, in the files themselves (not only in the deduplicating views)
    raw = ds.dataset(runs_dir, format="parquet").to_table(columns=["key", "status"]).to_pandas()
    assert len(raw) == 1004 and sorted(raw["key"]) == sorted(plan["key"])
    assert set(raw["status"]) == {"ok"}
    epochs = ds.dataset(table_dir(results_dir, "transfer_epochs"), format="parquet").to_table(
        columns=["key"]).to_pandas()
    assert sorted(epochs["key"]) == sorted(plan["key"])
    runs = read_table(results_dir, "transfer_runs", ["key", "job_id"])
    assert runs["job_id"].str.split("_").str[0].isin(arrays).all()

    manifests = len(_manifests(results_dir))
    again = launch(plan, results_dir, cache, _options())
    assert all(stage["submitted"] == 0 for stage in again.values())
    assert len(_manifests(results_dir)) == manifests
    print(f"\nslurm sweep: 1,004 units in 20 tasks, 2 transfer arrays: submitted in "
          f"{submitted:.1f} s, all done after {wall:.1f} s; {len(raw)} transfer_runs and "
          f"{len(epochs)} transfer_epochs rows, each once")
