"""A results folder at sweep scale (issue 15): `ktbench bench scale [--units N]`.

Builds, through the project's own writer (`results.write_part`, one atomic part per unit as the
units write them), the folder a finished sweep of N transfer units leaves (default N = 100,000;
`--quick`: 300):
N units of `kl` with 20 epochs each (N `transfer_runs` rows, 20 N `transfer_epochs` rows), one
per random ordered pair of M = N / 100 synthetic models (between 10 and 1,000, and enough for N pairs), M models'
predictions on 50 M samples (1,000 models: 50,000 samples, ImageNet validation's size), a
`probes` row per model (as if each had been probed, on the zoo's own dataset), N
`pair_stats` rows (in parts of 1,000 pairs, as stats units write them), the plan, and the launch
manifest that named every unit (`class_flips` is left out: no table reads it). The models form a
synthetic zoo registered by this module (`scale-M`, dataset imagenet), so the commands below run
in child processes that register it first and then run `ktbench ARGS` (`CHILD`: the command line
is imported by the child, never by this module, so perf stays below the CLI).

Then it runs, each in a fresh process, with its wall time and peak memory (the child's resident
high-water mark, VmHWM): `status PLAN`, `query "select count(*) from transfer_runs"`,
`tables` (every table), `tables --table probes --table success_rate_by_dataset` (the probe
stage's tables alone), a relaunch of the finished plan (`launch PLAN`: nothing pending) and
`plan --dry-run` for the same plan; then `compact`; then the same commands again, three times
each (`--repeats`: the median wall time, the largest peak). Targets apply to the compacted
folder (and to the compaction); the figures before it are reported. Each
command's output is checked (counts, nothing submitted); a command still running after an hour
is killed, and its figure is that hour (`timed_out` in its params).
"""
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa

from pairs.catalog import ModelEntry, Zoo, register_zoo
from pairs.catalog_table import register_catalog_table
from results.layout import ResultsLayout

FULL_UNITS = 100_000
QUICK_UNITS = 300
EPOCHS = 20
SAMPLES_PER_MODEL = 50           # 1,000 models: 50,000 samples
PAIRS_PER_STATS_PART = 1000
FAMILIES = ("cnn", "transformer", "mlp", "hybrid")
TARGET_S = {"status": 3.0, "query": 1.0, "tables": 10.0, "relaunch": 10.0}
TARGET_PEAK_GIB = 1.5
TARGET_COMPACT_S = 60.0
TIMEOUT_S = 3600.0               # a command still running is killed: its figure is the limit
# a child process: `ktbench ARGS` with the zoo `scale-<models>` registered
CHILD = ("import sys; from benchmark.perf.scale_bench import register; register({models}); "
         "from benchmark.cli import main; sys.exit(main(sys.argv[1:]))")


def n_models(units: int) -> int:
    """N / 100 models, between 10 and 1,000, and enough for N distinct ordered pairs."""
    return max(int(np.clip(units // 100, 10, 1000)), math.isqrt(units) + 2)


def zoo_name(units: int) -> str:
    return f"scale-{n_models(units)}"


def synthetic_zoo(models: int) -> Zoo:
    """`models` ImageNet classifiers that are only names: no weights, never run."""
    entries = tuple(ModelEntry(name=f"m{i:04d}", arch="resnet18", family=FAMILIES[i % 4],
                               num_classes=1000, top1_reported=60.0 + 30.0 * i / models)
                    for i in range(models))
    return Zoo(f"scale-{models}", "imagenet", entries, {"epochs": EPOCHS, "augment": False})


def _catalog(models: int):
    import pandas as pd
    zoo = synthetic_zoo(models)
    return pd.DataFrame({"name": [m.name for m in zoo.models], "arch": "resnet18",
                         "family": [m.family for m in zoo.models],
                         "params_m": np.linspace(5.0, 100.0, models),
                         "top1": [m.top1_reported for m in zoo.models], "top5": math.nan,
                         "img_size": 224, "test_img_size": 224, "crop_pct": 0.875,
                         "interpolation": "bicubic", "mean": [m.mean for m in zoo.models],
                         "std": [m.std for m in zoo.models], "num_classes": 1000,
                         "label_offset": 0, "weights": None})


def register(models: int) -> None:
    """Register the zoo `scale-<models>` and its catalog table."""
    register_zoo(f"scale-{models}")(lambda: synthetic_zoo(models))
    register_catalog_table(f"scale-{models}")(lambda: _catalog(models))


def make_scale_plan(units: int):
    from benchmark.methods import resolve_params
    from pairs.plan import make_plan, random_pairs
    zoo = synthetic_zoo(n_models(units))
    pairs = random_pairs([m.name for m in zoo.models], units, seed=0)
    return make_plan(zoo, pairs, {"kl": resolve_params("kl", zoo.transfer_defaults)}, [0])


# --- building the folder -------------------------------------------------------------------------

def _columns(table: str, n: int, rng, **given) -> pa.Table:
    """`n` rows of `table`: the given columns, random numbers elsewhere."""
    from results.schema import TABLES
    columns = {}
    for field in TABLES[table]:
        if field.name in given:
            value = given[field.name]
            columns[field.name] = pa.array(np.broadcast_to(np.asarray(value, dtype=object), (n,))
                                           if np.ndim(value) == 0 else value, field.type)
        elif pa.types.is_floating(field.type):
            columns[field.name] = pa.array(rng.uniform(0, 100, n).astype(
                field.type.to_pandas_dtype()))
        elif pa.types.is_integer(field.type):
            columns[field.name] = pa.array(rng.integers(0, 100, n), field.type)
        else:
            columns[field.name] = pa.nulls(n, field.type)
    return pa.table(columns)


def _write_models(results_dir: str, units: int, first: int, last: int):
    from pairs.plan import predict_key
    from pairs.probe import DEFAULT_RECIPE, probe_key
    from results import write_part
    zoo = synthetic_zoo(n_models(units))
    samples = SAMPLES_PER_MODEL * len(zoo.models)
    rng = np.random.default_rng(first)
    labels = np.arange(samples, dtype=np.int32) % 1000
    for entry in zoo.models[first:last]:
        key = predict_key(entry, zoo.dataset)
        right = rng.random(samples) < entry.top1_reported / 100
        preds = np.where(right, labels, rng.integers(0, 1000, samples)).astype(np.int32)
        write_part(results_dir, "predictions", _columns(
            "predictions", samples, rng, model=entry.name, dataset=zoo.dataset,
            sample=np.arange(samples, dtype=np.int32), label=labels, pred=preds), key)
        write_part(results_dir, "models", _columns(
            "models", 1, rng, key=key, model=entry.name, zoo=zoo.name, family=entry.family,
            arch=entry.arch, source="hub", dataset=zoo.dataset, num_classes=1000,
            top1=100 * right.mean(), top1_reported=entry.top1_reported), key)
        probe = probe_key(entry, zoo.dataset, DEFAULT_RECIPE)
        write_part(results_dir, "probes", _columns(
            "probes", 1, rng, key=probe, model=entry.name, zoo=zoo.name, dataset=zoo.dataset,
            recipe=DEFAULT_RECIPE, num_classes=1000, head=f"probe_heads/{probe}.safetensors"),
            probe)


def _write_units(results_dir: str, plan_path: str, first: int, last: int):
    import pandas as pd
    from results import write_part
    plan = pd.read_parquet(plan_path).iloc[first:last]
    rng = np.random.default_rng(first)
    n = len(plan)
    now = datetime.now(timezone.utc)
    status = rng.choice(["ok", "diverged", "failed"], n, p=[0.98, 0.01, 0.01])
    runs = _columns("transfer_runs", n, rng, **{c: plan[c].to_numpy() for c in (
        "key", "plan", "teacher", "student", "method", "params", "dataset", "compat",
        "teachers", "mode")}, seed=plan["seed"].to_numpy(), status=status,
        epochs=np.where(status == "failed", 0, EPOCHS).astype(np.int32),
        error=np.where(status == "failed", "Traceback (most recent call last): ...", ""),
        host="node", job_id="1_0", code_version="scale", started_at=now, finished_at=now,
        batch_size=128, oom_retries=0, disk_bytes=0)
    keys = np.repeat(plan["key"].to_numpy(), EPOCHS)
    epochs = _columns("transfer_epochs", n * EPOCHS, rng, key=keys,
                      epoch=np.tile(np.arange(EPOCHS, dtype=np.int32), n),
                      step=np.zeros(n * EPOCHS, np.int32), step_teacher=np.repeat(
                          plan["teacher"].to_numpy(), EPOCHS))
    for i, key in enumerate(plan["key"]):
        if status[i] != "failed":
            write_part(results_dir, "transfer_epochs", epochs.slice(i * EPOCHS, EPOCHS), key)
        write_part(results_dir, "transfer_runs", runs.slice(i, 1), key)


def _write_stats(results_dir: str, plan_path: str, units: int, first: int, last: int):
    import pandas as pd
    from pairs.keys import unit_key
    from pairs.plan import predict_key
    from results import write_part
    plan = pd.read_parquet(plan_path).iloc[first:last]
    rng = np.random.default_rng(first)
    zoo = synthetic_zoo(n_models(units))
    keys = {entry.name: predict_key(entry, zoo.dataset) for entry in zoo.models}
    for start in range(0, len(plan), PAIRS_PER_STATS_PART):
        chunk = plan.iloc[start:start + PAIRS_PER_STATS_PART]
        key = unit_key("stats", pairs=list(zip(chunk["teacher"], chunk["student"])))
        write_part(results_dir, "pair_stats", _columns(
            "pair_stats", len(chunk), rng, teacher=chunk["teacher"].to_numpy(),
            student=chunk["student"].to_numpy(), dataset=chunk["dataset"].to_numpy(),
            compat="", teacher_key=chunk["teacher"].map(keys).to_numpy(),
            student_key=chunk["student"].map(keys).to_numpy()), key)


def build_folder(results_dir: Path, units: int, workers: int = 2) -> Path:
    """The folder of a finished sweep of `units` units; returns the plan's path."""
    from benchmark.launch.submissions import record_submission
    from benchmark.units.unit import transfer_units
    from pairs.plan import write_plan
    plan = make_scale_plan(units)
    plan_path = write_plan(plan, ResultsLayout(results_dir).plan("scale"))
    models = n_models(units)
    jobs = [(_write_models, str(results_dir), units, i, i + 50) for i in range(0, models, 50)]
    step = 5000
    jobs += [(_write_units, str(results_dir), str(plan_path), i, i + step)
             for i in range(0, units, step)]
    jobs += [(_write_stats, str(results_dir), str(plan_path), units, i,
              i + 10 * PAIRS_PER_STATS_PART)
             for i in range(0, units, 10 * PAIRS_PER_STATS_PART)]
    with ProcessPoolExecutor(workers) as pool:
        for future in [pool.submit(*job) for job in jobs]:
            future.result()
    tasks = [transfer_units(plan.iloc[i:i + 2500]) for i in range(0, units, 2500)]
    record_submission(results_dir, "debug", "transfer", [f"DEBUG_{i}" for i in range(len(tasks))],
                      tasks)
    return plan_path


# --- measuring commands --------------------------------------------------------------------------

def _peak_rss(pid: int) -> int:
    """The process's resident-set high-water mark since it started its program (VmHWM), bytes;
    0 once it has exited."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def run_command(args: list[str], models: int, timeout: float) -> dict:
    """`ktbench ARGS` in a child process that knows the zoo `scale-<models>`: wall time, peak
    resident memory (GiB: the high-water mark read every 10 ms until it exits; the maximum RSS of
    wait4 would count the forked parent's pages), CPU time and output; killed after `timeout`
    seconds (`timed_out`)."""
    with tempfile.TemporaryFile("w+") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", CHILD.format(models=models), *args],
                                stdout=out, stderr=subprocess.STDOUT)
        peak, timed_out = 0, False
        while True:
            peak = max(peak, _peak_rss(proc.pid))
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if not timed_out and time.perf_counter() - t0 > timeout:
                proc.kill()
                timed_out = True
            time.sleep(0.01)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read()
    if proc.returncode != 0 and not timed_out:
        raise RuntimeError(f"ktbench {' '.join(args)} exited {proc.returncode}: "
                           f"{' | '.join(text.strip().splitlines()[-3:])}")
    return {"wall_s": wall, "peak_gib": peak / 2**30, "cpu_s": usage.ru_utime + usage.ru_stime,
            "out": text, "timed_out": timed_out}


def _commands(plan_path: Path, results_dir: Path, units: int) -> dict[str, tuple[list, str]]:
    """name -> (arguments, a line its output must hold)."""
    common = ["--results", str(results_dir)]
    models = n_models(units)
    return {
        "status": (["status", str(plan_path), *common, "--quiet"],
                   f"| transfer | {units - _failed(results_dir)} "),
        "query": (["query", "select count(*) as n from transfer_runs", "--format", "csv",
                   *common], f"\n{units}\n"),
        "tables": (["tables", *common], "## success_rate"),
        "probe_tables": (["tables", "--table", "probes", "--table", "success_rate_by_dataset",
                          *common], "## success_rate_by_dataset"),
        "relaunch": (["launch", str(plan_path), *common, "--quiet"], "transfer: 0 submitted"),
        "dry_run": (["plan", "--zoo", zoo_name(units), "--pairs", str(units), "--methods", "kl",
                     "--dry-run", *common], f"| predict  | {models}"),
    }


def _failed(results_dir: Path) -> int:
    from results import query
    return int(query(results_dir, "SELECT count(*) AS n FROM transfer_runs "
                                  "WHERE status = 'failed'")["n"][0])


def _folder_size(results_dir: Path) -> tuple[int, int]:
    plans = ResultsLayout(results_dir).plans
    files = [p for p in results_dir.rglob("*.parquet") if p.parent != plans]
    return len(files), sum(p.stat().st_size for p in files)


def _median_run(args: list[str], models: int, repeats: int) -> dict:
    """`run_command` `repeats` times: the median wall and CPU time, the largest peak."""
    runs = [run_command(args, models, TIMEOUT_S) for _ in range(repeats)]
    middle = sorted(runs, key=lambda r: r["wall_s"])[len(runs) // 2]
    return dict(middle, peak_gib=max(r["peak_gib"] for r in runs), runs=repeats)


def run(config, record):
    units = config.units or (QUICK_UNITS if config.quick else FULL_UNITS)
    repeats = config.repeats or 3      # the compacted folder's figures: medians of 3 runs
    with tempfile.TemporaryDirectory(prefix="ktbench-scale-") as tmp:
        results_dir = Path(tmp) / "results"
        t0 = time.perf_counter()
        plan_path = build_folder(results_dir, units)
        files, size = _folder_size(results_dir)
        models = n_models(units)
        params = dict(units=units, models=models,
                      samples=SAMPLES_PER_MODEL * n_models(units), epochs=EPOCHS)
        record.add("build", "wall_s", time.perf_counter() - t0, "s", files=files, **params)
        record.add("build", "disk", size / 2**30, "GiB", files=files, **params)
        commands = _commands(plan_path, results_dir, units)
        for phase in ("parts", "compacted"):
            if phase == "compacted":
                figures = run_command(["compact", "--results", str(results_dir)], models,
                                      TIMEOUT_S)
                files, size = _folder_size(results_dir)
                record.add("compact", "wall_s", figures["wall_s"], "s",
                           f"<= {TARGET_COMPACT_S:g}", cpu_s=figures["cpu_s"], **params)
                record.add("compact", "peak_rss", figures["peak_gib"], "GiB",
                           f"<= {TARGET_PEAK_GIB:g}", **params)
                record.add("compacted", "disk", size / 2**30, "GiB", files=files, **params)
            for name, (args, expected) in commands.items():
                figures = _median_run(args, models, 1 if phase == "parts" else repeats)
                if not figures["timed_out"] and expected not in figures["out"]:
                    raise AssertionError(f"ktbench {' '.join(args)}: no {expected!r} in its "
                                         f"output:\n{figures['out'][-2000:]}")
                target = phase == "compacted" and name in TARGET_S
                record.add(f"{name} ({phase})", "wall_s", figures["wall_s"], "s",
                           f"<= {TARGET_S[name]:g}" if target else "", cpu_s=figures["cpu_s"],
                           files=files, timed_out=figures["timed_out"], runs=figures["runs"],
                           **params)
                record.add(f"{name} ({phase})", "peak_rss", figures["peak_gib"], "GiB",
                           f"<= {TARGET_PEAK_GIB:g}" if target else "", files=files, **params)

