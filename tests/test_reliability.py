"""Faults: corrupt parts and checkpoints, kill -9 mid-unit, concurrent writers, racing launches.

Each ends with the same tables as an uninterrupted run: no row lost, none doubled.
"""
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from benchmark.units import transfer
from benchmark.units.unit import TransferUnit
from benchmark.cli.main import main
from benchmark.launch.launcher import LaunchOptions, launch
from benchmark.methods import resolve_params
from pairs.plan import all_pairs, make_plan, write_plan
from results import read_table, write_part
from results.schema import TABLES, TRANSFER_RATES
from results.verify import quarantine_unreadable, verify

# the parts as units write them (compaction has its own faults: tests/test_compact.py)
DEBUG = LaunchOptions(executor="debug", progress=False, compact=False)
TIMING = ["images_per_s", "seconds", "wall_s", "started_at", "finished_at", "host", "job_id"]
ROOT = Path(__file__).resolve().parents[1]


def _plan(zoo, epochs=2, n_pairs=1):
    names = [m.name for m in zoo.models]
    params = {"kl": resolve_params("kl", zoo.transfer_defaults,
                                   {"epochs": epochs, "train_samples": 128})}
    return make_plan(zoo, all_pairs(names)[:n_pairs], params, seeds=[0])


@pytest.fixture(scope="module")
def plan(tiny_zoo):
    return _plan(tiny_zoo)


@pytest.fixture(scope="module")
def reference(tiny_zoo, cache, plan, tmp_path_factory):
    """An uninterrupted run of `plan`: predict, stats and 2-epoch transfer units."""
    folder = tmp_path_factory.mktemp("reference")
    launch(plan, folder, cache, DEBUG)
    return folder


@pytest.fixture
def prepared(reference, tmp_path):
    """`reference` with its transfer results removed: predict and stats done, transfer pending."""
    folder = tmp_path / "results"
    shutil.copytree(reference, folder, ignore=shutil.ignore_patterns("jobs"))
    for table in ("transfer_runs", "transfer_epochs"):
        shutil.rmtree(folder / table)
    return folder


def _tables(folder) -> dict[str, pd.DataFrame]:
    out = {}
    for table in ("models", "pair_stats", "transfer_runs", "transfer_epochs"):
        df = read_table(folder, table)
        df = df.drop(columns=[c for c in TIMING if c in df.columns])
        out[table] = df.sort_values(list(df.columns[:2])).reset_index(drop=True)
    return out


def _assert_same_tables(a, b):
    ta, tb = _tables(a), _tables(b)
    for table in ta:
        pd.testing.assert_frame_equal(ta[table], tb[table], check_exact=False, rtol=1e-9,
                                      obj=table)


# --- corrupt parts and checkpoints --------------------------------------------------------------

def _truncate(path: Path, keep: float = 0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def test_verify_reports_then_fix_moves_aside(reference, tmp_path, capsys):
    folder = tmp_path / "r"
    shutil.copytree(reference, folder, ignore=shutil.ignore_patterns("jobs"))
    assert verify(folder).ok
    key = read_table(folder, "transfer_runs")["key"][0]
    _truncate(folder / "transfer_runs" / f"{key}.parquet")
    (folder / "checkpoints").mkdir(exist_ok=True)
    (folder / "checkpoints" / "transfer-x.pt").write_bytes(b"not a checkpoint")
    stale = folder / "models" / ".predict-x.abc.tmp"
    stale.write_bytes(b"PAR1")
    os.utime(stale, (time.time() - 7200,) * 2)
    fresh = folder / "models" / ".predict-y.abc.tmp"       # a live writer's: left alone
    fresh.write_bytes(b"PAR1")
    # a part with a foreign schema
    pd.DataFrame({"x": [1]}).to_parquet(folder / "models" / "foreign.parquet")

    assert main(["verify", "--results", str(folder)]) == 1
    out = capsys.readouterr().out
    assert "no PAR1 footer" in out and "not a torch checkpoint" in out
    assert "stale temporary file" in out and "schema differs" in out
    assert "4 problem(s)" in out and ".predict-y" not in out

    assert main(["verify", "--results", str(folder), "--fix"]) == 0
    err = capsys.readouterr().err
    assert err.count("ktbench: warning: ") == 4
    assert (folder / "quarantine" / "transfer_runs" / f"{key}.parquet").is_file()
    assert (folder / "quarantine" / "checkpoints" / "transfer-x.pt").is_file()
    assert fresh.is_file() and not stale.exists()
    assert main(["verify", "--results", str(folder)]) == 0
    assert key not in set(read_table(folder, "transfer_runs")["key"])   # the rest still readable


def test_parts_written_before_an_added_column_stay_valid(reference, tmp_path):
    """transfer_runs gained batch_size and oom_retries, then disk_bytes, then the transfer rates:
    older parts lack them, are not flagged, and read as NULL there beside newer parts."""
    folder = tmp_path / "r"
    shutil.copytree(reference, folder, ignore=shutil.ignore_patterns("jobs"))
    part = sorted((folder / "transfer_runs").glob("*.parquet"))[0]
    pd.read_parquet(part).drop(columns=TRANSFER_RATES).to_parquet(part)          # before the rates
    assert verify(folder).ok
    pd.read_parquet(part).drop(columns=["batch_size", "oom_retries", "disk_bytes"]).to_parquet(part)
    assert verify(folder).ok
    middle = pd.read_parquet(part).assign(batch_size=1, oom_retries=0)   # before disk_bytes
    middle.astype({"batch_size": "int32", "oom_retries": "int32"}).to_parquet(part)
    assert verify(folder).ok
    pd.read_parquet(part).drop(columns=["batch_size", "oom_retries"]).to_parquet(part)
    runs = read_table(folder, "transfer_runs").set_index("key")
    older = runs.loc[pd.read_parquet(part)["key"][0]]
    assert pd.isna(older["batch_size"]) and pd.isna(older["oom_retries"])
    assert runs["batch_size"].notna().sum() == len(runs) - 1
    pd.read_parquet(part).drop(columns=["status"]).to_parquet(part)
    assert not verify(folder).ok                      # a missing original column still is


def test_truncated_part_is_quarantined_by_launch_and_unit_reruns(reference, plan, cache,
                                                                 tmp_path, capsys):
    folder = tmp_path / "r"
    shutil.copytree(reference, folder, ignore=shutil.ignore_patterns("jobs"))
    key = plan["key"][0]
    part = folder / "transfer_runs" / f"{key}.parquet"
    _truncate(part, 0.9)
    with pytest.raises(Exception):          # what a corrupt part does to DuckDB unchecked
        read_table(folder, "transfer_runs")
    write_plan(plan, tmp_path / "p.parquet")
    code = main(["launch", str(tmp_path / "p.parquet"), "--results", str(folder),
                 "--cache", str(cache), "--executor", "debug", "--quiet"])
    err = capsys.readouterr().err
    assert code == 0 and "ktbench: warning: " in err and "no PAR1 footer" in err
    assert (folder / "quarantine" / "transfer_runs" / f"{key}.parquet").is_file()
    _assert_same_tables(folder, reference)


def test_bad_checkpoint_moved_aside_and_unit_reruns_from_start(prepared, reference, plan, cache,
                                                               tmp_path, capsys):
    key = plan["key"][0]
    ckpt = transfer.checkpoint_path(prepared, key)
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    ckpt.write_bytes(b"PK\x03\x04 garbage that is no checkpoint")
    assert main(["verify", "--results", str(prepared), "--fix"]) == 0
    assert "not a torch checkpoint" in capsys.readouterr().err
    assert not ckpt.exists()
    launch(plan, prepared, cache, DEBUG)
    _assert_same_tables(prepared, reference)


def test_truncated_checkpoint_caught_by_launch_check(prepared, reference, plan, cache, tmp_path):
    """A real checkpoint cut short (a killed copy, a full disk): the cheap check moves it aside."""
    unit = TransferUnit.from_row(plan.iloc[0])
    script = _CHILD.format(root=str(ROOT), results=str(prepared), cache=str(cache),
                           unit=repr(unit), hook="die_after_checkpoint(1)")
    subprocess.run([sys.executable, "-c", script], timeout=300)
    ckpt = transfer.checkpoint_path(prepared, unit.key)
    assert ckpt.is_file()
    _truncate(ckpt)
    report = quarantine_unreadable(prepared)
    assert [p.kind for p in report.problems] == ["checkpoints"]
    launch(plan, prepared, cache, DEBUG)
    _assert_same_tables(prepared, reference)


# --- kill -9 ------------------------------------------------------------------------------------

_CHILD = """
import os, signal, sys
sys.path.insert(0, {root!r})
import numpy as np
from benchmark.units import checkpoint, transfer
from benchmark.units.unit import TransferUnit
import results.store as store
from pathlib import Path
nan = float("nan")

def die():
    os.kill(os.getpid(), signal.SIGKILL)

def die_after_checkpoint(n):
    save, calls = checkpoint.save_checkpoint, []
    def hook(path, state):
        save(path, state)
        calls.append(1)
        if len(calls) == n:
            die()
    checkpoint.save_checkpoint = hook

def die_in_checkpoint_write(n):
    import io, torch
    save, calls = torch.save, []
    def hook(obj, f, *a, **k):
        calls.append(1)
        if len(calls) == n:
            buf = io.BytesIO(); save(obj, buf, *a, **k)
            with open(f, "wb") as out:
                out.write(buf.getvalue()[: len(buf.getvalue()) // 2]); out.flush()
                os.fsync(out.fileno())
            die()
        return save(obj, f, *a, **k)
    checkpoint.torch.save = hook

def die_in_results_write(table):
    write = store.pq.write_table
    def hook(arrow, f, *a, **k):
        if Path(getattr(f, "name", "")).parent.name == table:
            import io
            buf = io.BytesIO(); write(arrow, buf, *a, **k)
            f.write(buf.getvalue()[: len(buf.getvalue()) // 2]); f.flush()
            die()
        return write(arrow, f, *a, **k)
    store.pq.write_table = hook

{hook}
transfer.run_transfer({unit}, Path({results!r}), Path({cache!r}))
"""


@pytest.mark.parametrize("hook", [
    "die_after_checkpoint(1)",                 # during epoch 2: the epoch-1 checkpoint exists
    "die_in_checkpoint_write(2)",              # half of the epoch-2 checkpoint's temp file
    "die_in_checkpoint_write(1)",              # half of the first checkpoint: none to resume
    "die_in_results_write('transfer_epochs')",
    "die_in_results_write('transfer_runs')",   # epochs written, run row (completion) not
])
def test_kill_9_then_relaunch_matches_uninterrupted(prepared, reference, plan, cache, hook):
    unit = TransferUnit.from_row(plan.iloc[0])
    script = _CHILD.format(root=str(ROOT), results=str(prepared), cache=str(cache),
                           unit=repr(unit), hook=hook)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert unit.key not in set(read_table(prepared, "transfer_runs")["key"])
    launch(plan, prepared, cache, DEBUG)
    _assert_same_tables(prepared, reference)
    runs = read_table(prepared, "transfer_runs")
    assert runs["key"].is_unique and sorted(runs["key"]) == sorted(plan["key"])
    assert not transfer.checkpoint_path(prepared, unit.key).exists()


def test_external_sigkill_during_epoch(prepared, reference, plan, cache):
    """SIGKILL from outside, as soon as the first checkpoint lands (the run is in epoch 2)."""
    unit = TransferUnit.from_row(plan.iloc[0])
    script = _CHILD.format(root=str(ROOT), results=str(prepared), cache=str(cache),
                           unit=repr(unit), hook="")
    ckpt = transfer.checkpoint_path(prepared, unit.key)
    proc = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.time() + 300
        while not ckpt.exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    launch(plan, prepared, cache, DEBUG)
    _assert_same_tables(prepared, reference)


# --- concurrency --------------------------------------------------------------------------------

def _model_row(i: int, top1: float) -> pd.DataFrame:
    row = dict.fromkeys(TABLES["models"].names)
    row.update(key=f"predict-{i}", model=f"m{i:03d}", zoo="z", family="f", arch="a",
               params_m=1.0, source="s", dataset="d", num_classes=10, top1=top1,
               top1_reported=top1, img_size=32, n_eval=100, seconds=0.1)
    return pd.DataFrame([row])


def _writer(folder: str, i: int):
    # 0..79 distinct keys; 80..99 write keys 0..19 again (a rerun of the same part, or a
    # racing job writing the same key under another part name)
    key = i % 80
    part = f"predict-{key}" if i < 90 else f"predict-{key}-again"
    for _ in range(3):
        write_part(folder, "models", _model_row(key, 0.5), part)


def test_100_concurrent_writers_and_a_reader(tmp_path):
    folder = tmp_path / "r"
    (folder / "models").mkdir(parents=True)
    errors, reads = [], [0]
    stop = threading.Event()

    def reader():
        while not stop.is_set():
            try:
                df = read_table(folder, "models")
                assert df["model"].is_unique
                reads[0] += 1
            except Exception as e:   # a half-written file would surface here
                errors.append(e)

    thread = threading.Thread(target=reader)
    thread.start()
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(str(folder), i)) for i in range(100)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    stop.set()
    thread.join()
    assert [p.exitcode for p in procs] == [0] * 100
    assert not errors, errors[:3]
    assert reads[0] > 0
    df = read_table(folder, "models")
    assert sorted(df["model"]) == [f"m{i:03d}" for i in range(80)]
    assert not list((folder / "models").glob(".*"))          # no temp file left behind
    assert verify(folder).ok


_LAUNCH = """
import sys
sys.path.insert(0, {root!r})
import pandas as pd
from pathlib import Path
from benchmark.launch.launcher import LaunchOptions, launch
print(launch(pd.read_parquet({plan!r}), Path({results!r}), Path({cache!r}),
             LaunchOptions(executor="debug", progress=False)))
"""


def test_two_launches_of_one_plan_at_once(tiny_zoo, cache, tmp_path):
    plan = _plan(tiny_zoo, epochs=1, n_pairs=2)
    plan.to_parquet(tmp_path / "p.parquet")
    script = _LAUNCH.format(root=str(ROOT), plan=str(tmp_path / "p.parquet"),
                            results=str(tmp_path / "r"), cache=str(cache))
    procs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]
    runs = read_table(tmp_path / "r", "transfer_runs")
    assert sorted(runs["key"]) == sorted(plan["key"]) and set(runs["status"]) == {"ok"}
    # each launch compacted what it found when its stage ended (one at a time): the files hold
    # every key, the views one row each
    files = (tmp_path / "r" / "transfer_runs").glob("*.parquet")
    assert set(pd.concat(pd.read_parquet(f) for f in files)["key"]) == set(plan["key"])
    epochs = read_table(tmp_path / "r", "transfer_epochs")
    assert len(epochs) == len(plan)
    assert verify(tmp_path / "r").ok


# --- security -----------------------------------------------------------------------------------

def test_every_torch_load_is_weights_only():
    calls = []
    for package in ("benchmark", "results", "pairs", "analysis"):
        for path in (ROOT / package).rglob("*.py"):
            text = path.read_text()
            start = 0
            while (i := text.find("torch.load(", start)) >= 0:
                depth, j = 0, i + len("torch.load")
                while True:                   # to the matching parenthesis
                    depth += {"(": 1, ")": -1}.get(text[j], 0)
                    j += 1
                    if depth == 0:
                        break
                calls.append((path.relative_to(ROOT), text[i:j]))
                start = j
    assert calls, "no torch.load call found: the scan is broken"
    unsafe = [f"{p}: {c}" for p, c in calls if "weights_only=True" not in c]
    assert not unsafe, unsafe
