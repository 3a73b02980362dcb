"""Launcher pieces that need no SLURM: array chunks, options and config files, manifests of live
jobs, and the per-stage status of a plan (packing: test_packing.py)."""
import json
import os
import pickle
import subprocess
import time

import pytest

from benchmark.launch import submissions
from benchmark.cli.main import main, parser
from benchmark.cli.launch_args import options_from_args
from benchmark.launch.jobs import UnitTask
from benchmark.launch.launcher import _ARRAY_LIMITS, LaunchOptions, launch
from benchmark.launch.pending import pending_units
from benchmark.launch.config import read_config
from benchmark.methods import resolve_params
from benchmark.launch.slurm import (SlurmOptions, array_chunks, cluster_max_array_size, parse_time_min,
                             submitit_parameters)
from benchmark.launch.status import plan_status
from benchmark.units.unit import RunOptions, StatsUnit, TransferUnit
from pairs.plan import all_pairs, make_plan


def test_array_chunks_respect_the_limit():
    tasks = list(range(2503))
    chunks = array_chunks(tasks, 1001)
    assert [len(c) for c in chunks] == [1001, 1001, 501]
    assert [t for c in chunks for t in c] == tasks
    assert array_chunks(tasks[:3], 1) == [[0], [1], [2]]
    with pytest.raises(ValueError):
        array_chunks(tasks, 0)


def test_max_array_size_from_scontrol_or_override(monkeypatch):
    config = "Configuration data as of ...\nMaxArraySize            = 77\nMaxJobCount = 10000\n"
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(
        a, 0, stdout=config, stderr=""))
    assert cluster_max_array_size() == 77
    assert _ARRAY_LIMITS["slurm"](LaunchOptions(executor="slurm")) == 77
    overridden = LaunchOptions(executor="slurm", slurm=SlurmOptions(max_array_size=5))
    assert _ARRAY_LIMITS["slurm"](overridden) == 5

    def missing(*a, **k):
        raise FileNotFoundError("scontrol")
    monkeypatch.setattr(subprocess, "run", missing)
    assert cluster_max_array_size() == 1001


@pytest.mark.parametrize("text, minutes", [("90", 90), ("1:30", 2), ("02:00:00", 120),
                                           ("1-00", 1440), ("1-02:30", 1590),
                                           ("0-00:00:30", 1)])
def test_sbatch_time_syntax(text, minutes):
    assert parse_time_min(text) == minutes


def test_submitit_parameters_only_for_options_set():
    options = SlurmOptions(partition="gpu", gpus=2, mem="32G", sbatch={"reservation": "kt"})
    assert submitit_parameters(options) == {
        "slurm_partition": "gpu", "gpus_per_node": 2, "slurm_mem": "32G",
        "slurm_additional_parameters": {"reservation": "kt"}}
    assert submitit_parameters(SlurmOptions()) == {}


def _launch_args(*argv):
    return parser().parse_args(["launch", "plan.parquet", *argv])


def test_config_file_and_flags(tmp_path):
    toml = tmp_path / "launch.toml"
    toml.write_text('executor = "slurm"\ntime = "02:00:00"\nunits_per_task = 3\n'
                    '[slurm]\npartition = "gpu"\ncpus = 8\n[slurm.sbatch]\nreservation = "kt"\n')
    options = options_from_args(_launch_args("--config", str(toml), "--cpus", "4",
                                             "--sbatch", "exclude=node1", "--no-wait"))
    assert options.executor == "slurm" and options.timeout_min == 120
    assert options.units_per_task == 3 and not options.wait
    assert options.slurm.partition == "gpu" and options.slurm.cpus == 4
    assert options.slurm.sbatch == {"reservation": "kt", "exclude": "node1"}

    js = tmp_path / "launch.json"
    js.write_text(json.dumps({"executor": "debug", "timeout_min": 30, "slurm": {"qos": "low"}}))
    options = options_from_args(_launch_args("--config", str(js), "--time", "45"))
    assert options.executor == "debug" and options.timeout_min == 45
    assert options.slurm.qos == "low" and options.wait

    assert options_from_args(_launch_args()).executor == "local"


@pytest.mark.parametrize("content, message", [
    ('executor = "slurm"\nbogus = 1\n', "unknown option(s) bogus"),
    ('[slurm]\npartitoin = "gpu"\n', "[slurm]: unknown option(s) partitoin"),
    ('executor = ', "is not valid TOML"),
])
def test_bad_config_files(tmp_path, content, message):
    path = tmp_path / "launch.toml"
    path.write_text(content)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[").replace("]", r"\]")):
        read_config(path)


def test_no_wait_needs_slurm():
    with pytest.raises(ValueError, match="needs the slurm executor"):
        LaunchOptions(executor="local", wait=False)


def _unit(key: str, teacher: str = "t") -> TransferUnit:
    return TransferUnit("plan", key, "zoo", "data", teacher, "s", "kl", "{}", 0)


def test_unit_task_is_checkpointable_with_the_same_arguments():
    task = UnitTask()
    options = RunOptions(strict_top1=True, keep_students=frozenset({"k"}))
    resubmission = task.checkpoint([_unit("k")], "/r", "/c", 2, options)
    assert resubmission.function is task
    assert resubmission.args == ([_unit("k")], "/r", "/c", 2, options)
    # submitit pickles a task's arguments: units and options come back equal
    stats = StatsUnit("s", "zoo", "data", "", (("a", "b"),), (("a", "ka"), ("b", "kb")))
    assert pickle.loads(pickle.dumps(resubmission.args + (stats,))) == resubmission.args + (stats,)


def test_manifests_mark_units_of_live_jobs(tmp_path, monkeypatch):
    units = [_unit("t1"), _unit("t2")]
    stats = [StatsUnit("s", "zoo", "data", "", (("a", "b"), ("b", "a")),
                       (("a", "ka"), ("b", "kb")))]
    submissions.record_submission(tmp_path, "slurm", "transfer", ["10_0", "10_1"],
                                  [units[:1], units[1:]])
    submissions.record_submission(tmp_path, "slurm", "stats", ["11"], [stats])
    monkeypatch.setitem(submissions.LIVE_JOBS, "slurm", lambda ids, _: {"10_1", "11"})
    assert submissions.live_unit_ids(tmp_path) == {"transfer": {"t2"},
                                                    "stats": {"a|b||ka|kb", "b|a||kb|ka"}}
    # a later submission of the same unit supersedes the earlier one
    submissions.record_submission(tmp_path, "debug", "transfer", ["DEBUG_1"], [units[1:]])
    assert "transfer" not in submissions.live_unit_ids(tmp_path)
    assert not list((tmp_path / "jobs" / "launches").glob(".*"))    # no temporary files left


def test_local_jobs_are_live_while_their_process_runs(tmp_path):
    import os
    assert submissions.LIVE_JOBS["local"]({str(os.getpid()), "999999999", "x"}, tmp_path) \
        == {str(os.getpid())}
    (tmp_path / "jobs" / str(os.getpid())).mkdir(parents=True)
    (tmp_path / "jobs" / str(os.getpid()) / f"{os.getpid()}_0_result.pkl").write_bytes(b"")
    assert submissions.LIVE_JOBS["local"]({str(os.getpid())}, tmp_path) == set()


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs /proc")
def test_a_local_job_is_its_process_not_its_pid(tmp_path):
    """A zombie, or another process that got the job's PID, does not hold the job's units."""
    me = str(os.getpid())
    started = submissions.process_start(me)
    live = submissions.LIVE_JOBS["local"]
    assert live({me: started}, tmp_path) == {me}
    assert live({me: started + 1}, tmp_path) == set()           # same PID, another process
    child = subprocess.Popen(["true"])                         # never waited for: a zombie
    while open(f"/proc/{child.pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z":
        time.sleep(0.01)
    os.kill(child.pid, 0)                                      # what the old check relied on
    assert live({str(child.pid): submissions.process_start(str(child.pid))}, tmp_path) == set()
    child.wait()
    # the manifest records a local job's start, so a relaunch can tell
    path = submissions.record_submission(tmp_path, "local", "transfer", [me],
                                         [[_unit("k")]])
    assert json.loads(path.read_text())["started"] == {me: started}
    assert submissions.live_units(tmp_path) == {"transfer": {"k": me}}


def _plan(zoo, epochs=1):
    names = [m.name for m in zoo.models]
    methods = {"kl": resolve_params("kl", zoo.transfer_defaults, {"epochs": epochs})}
    return make_plan(zoo, all_pairs(names)[:2], methods, seeds=[0])


def test_status_and_busy_units(tiny_zoo, cache, tmp_path, monkeypatch):
    plan = _plan(tiny_zoo)
    status = plan_status(plan, tmp_path)
    assert status.loc["predict"].tolist() == [0, 0, 3, 0]
    assert status.loc["stats"].tolist() == [0, 0, 2, 0]
    assert status.loc["transfer"].tolist() == [0, 0, 2, 0]

    # a unit held by a live job is running, and a relaunch leaves it alone
    key = plan["key"][0]
    submissions.record_submission(tmp_path, "slurm", "transfer", ["7"],
                                  [[_unit(key)]])
    monkeypatch.setitem(submissions.LIVE_JOBS, "slurm", lambda ids, _: set(ids))
    assert plan_status(plan, tmp_path).loc["transfer"].tolist() == [0, 1, 1, 0]
    busy = submissions.live_unit_ids(tmp_path)
    assert [u.key for u in pending_units(plan, tmp_path, busy=busy)["transfer"]] \
        == [plan["key"][1]]

    monkeypatch.setitem(submissions.LIVE_JOBS, "slurm", lambda ids, _: set())
    summary = launch(plan, tmp_path, cache, LaunchOptions(executor="debug", progress=False))
    assert summary["transfer"] == {"submitted": 2, "failed": 0, "held": 0,
                                   "held_by": [], "errors": []}
    status = plan_status(plan, tmp_path)
    assert status["done"].tolist() == [3, 2, 2] and status.drop(columns="done").sum().sum() == 0
    # each stage's parts were compacted when it ended; the views and a relaunch see it all
    assert [p.name[:10] for p in (tmp_path / "transfer_runs").iterdir()] == ["compacted-"]
    again = launch(plan, tmp_path, cache, LaunchOptions(executor="debug", progress=False))
    assert all(stage["submitted"] == 0 for stage in again.values())


def test_a_relaunch_names_the_jobs_holding_units(tiny_zoo, cache, tmp_path, monkeypatch, capsys):
    plan = _plan(tiny_zoo)
    held = plan["key"][0]
    submissions.record_submission(tmp_path, "slurm", "transfer", ["7_3"],
                                  [[_unit(held)]])
    monkeypatch.setitem(submissions.LIVE_JOBS, "slurm", lambda ids, _: set(ids))
    from pairs.plan import write_plan
    write_plan(plan, tmp_path / "plan.parquet")
    assert main(["launch", str(tmp_path / "plan.parquet"), "--results", str(tmp_path),
                 "--cache", str(cache), "--executor", "debug", "--quiet", "--no-compact"]) == 0
    out = capsys.readouterr().out
    assert "transfer: 1 submitted, 0 failed, 1 held by live job 7_3 of another launch" in out
    assert "predict: 3 submitted, 0 failed\n" in out
    assert (tmp_path / "transfer_runs" / f"{plan['key'][1]}.parquet").is_file()   # not compacted
    assert not (tmp_path / "transfer_runs" / f"{held}.parquet").exists()


def test_demo_says_which_units_another_launch_holds(monkeypatch, tmp_path, capsys):
    from benchmark.launch import launcher
    summary = {stage: {"submitted": 0, "failed": 0, "held": 0, "held_by": [], "errors": []}
               for stage in ("predict", "stats", "transfer")}
    summary["transfer"].update(held=18, held_by=["4242", "4243"])
    monkeypatch.setattr(launcher, "launch", lambda *a, **k: summary)
    assert main(["demo", "--results", str(tmp_path / "r"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "18 held by live jobs 4242, 4243 of another launch" in out
    assert "18 unit(s) still run in another launch's jobs" in out and "## success_rate" not in out


def test_slurm_jobs_unknown_when_squeue_fails(monkeypatch, tmp_path):
    def timed_out(*a, **k):
        raise subprocess.CalledProcessError(1, "squeue", stderr="Socket timed out")
    monkeypatch.setattr(subprocess, "run", timed_out)
    monkeypatch.setattr(submissions.time, "sleep", lambda s: None)
    with pytest.raises(RuntimeError, match="squeue failed 3 times.*Socket timed out"):
        submissions.LIVE_JOBS["slurm"]({"12"}, tmp_path)

    def missing(*a, **k):
        raise FileNotFoundError("squeue")
    monkeypatch.setattr(subprocess, "run", missing)
    assert submissions.LIVE_JOBS["slurm"]({"12"}, tmp_path) == set()

    monkeypatch.setattr(subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(
        a, 0, stdout="12_1\n13\n", stderr=""))
    assert submissions.LIVE_JOBS["slurm"]({"12_1": None, "12_2": None}, tmp_path) == {"12_1"}
