"""Performance benchmarks with targets (issue 8), separate from the tests' default run.

Each benchmark is a module with `run(config, record)`: it measures, checks correctness where it
can, and adds figures to `record`. The runner prints every figure and appends one Parquet part
per benchmark run to `<out>/benchmarks/`, so past runs can be queried like results:

    ktbench bench                       # stats, transfer, sharing, gpu (skipped without CUDA)
    ktbench bench demo --out DIR        # the slow, opt-in `ktbench demo` cold/warm timing
    ktbench bench scale --units 100000  # a results folder at sweep scale, before and after compaction
    duckdb -c "SELECT * FROM read_parquet('DIR/benchmarks/*.parquet')"

These machines are shared and noisy: compare figures as ratios taken within one run (the
benchmarks interleave what they compare and report medians); absolute times are indicative.
"""
import dataclasses
import importlib
import json
import math
import os
import platform
import socket
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from results.errors import InputError

# name -> module; `demo` and `scale` are opt-in (minutes), the rest run by default
BENCHMARKS = {
    "stats": "benchmark.perf.stats_bench",
    "transfer": "benchmark.perf.transfer_bench",
    "sharing": "benchmark.perf.sharing_bench",
    "gpu": "benchmark.perf.gpu_bench",
    "demo": "benchmark.perf.demo_bench",
    "scale": "benchmark.perf.scale_bench",
}
DEFAULT_BENCHMARKS = ("stats", "transfer", "sharing", "gpu")

SCHEMA = pa.schema([
    ("run_id", pa.string()),          # one `ktbench bench` invocation
    ("name", pa.string()),            # benchmark: stats, transfer, ...
    ("case", pa.string()),            # what was measured, e.g. "M=400" or "kl resnet->effnet"
    ("metric", pa.string()),          # e.g. wall_s, images_per_s, ratio
    ("value", pa.float64()),
    ("unit", pa.string()),
    ("target", pa.string()),          # e.g. "<= 10" ("" when the figure has none)
    ("met", pa.bool_()),              # null when there is no target
    ("params", pa.string()),          # JSON: sizes, threads, repetitions, load average, ...
    ("host", pa.string()),
    ("timestamp", pa.timestamp("us", tz="UTC")),
    ("code_version", pa.string()),
])


@dataclasses.dataclass
class BenchConfig:
    cache: Path                        # micro-zoo weights and data (built if missing)
    quick: bool = False                # tiny sizes: checks the harness, measures nothing real
    threads: int | None = None         # torch threads (default: torch's own)
    repeats: int | None = None         # override each benchmark's repetitions
    device: str | None = None          # gpu benchmark: force a device (e.g. "cpu" to dry-run)
    units: int | None = None           # scale benchmark: transfer units in the folder


class Record:
    """The figures of one benchmark run; `add` prints each as it comes."""

    def __init__(self, name: str, run_id: str, echo=print):
        self.name, self.run_id, self.rows, self.echo = name, run_id, [], echo

    def add(self, case: str, metric: str, value, unit: str = "", target: str = "", **params):
        """target: "<= X" or ">= X" (the figure must satisfy it), or "" for none."""
        value = float(value) if value is not None else math.nan
        met = _meets(value, target) if target else None
        params = {**machine_load(), **params}
        self.rows.append(dict(name=self.name, case=case, metric=metric, value=value, unit=unit,
                              target=target, met=met,
                              params=json.dumps(params, sort_keys=True, default=str)))
        verdict = "" if met is None else f"   target {target}: {'met' if met else 'MISSED'}"
        self.echo(f"  {self.name:<8} {case:<34} {metric:<22} {_fmt(value):>12} {unit}{verdict}")

    def missed(self) -> list[dict]:
        return [r for r in self.rows if r["met"] is False]


def _meets(value: float, target: str) -> bool:
    op, bound = target.split()
    if op not in ("<=", ">="):
        raise ValueError(f"target {target!r} must be '<= X' or '>= X'")
    return bool(value <= float(bound) if op == "<=" else value >= float(bound))


def _fmt(value: float) -> str:
    if math.isnan(value):
        return "nan"
    if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
        return f"{value:.3g}"
    return f"{value:.4g}"


def write_rows(out, rows: list[dict], name: str, run_id: str) -> Path | None:
    """Append rows as one new part of `<out>/benchmarks/`, atomically (a temporary file in the
    same folder, then os.replace), so a reader never sees a half-written part."""
    if not rows:
        return None
    from benchmark.version import code_version
    from results.store import atomic_path
    now = datetime.now(timezone.utc)
    common = dict(run_id=run_id, host=socket.gethostname(), timestamp=now,
                  code_version=code_version())
    table = pa.Table.from_pylist([{**common, **row} for row in rows], schema=SCHEMA)
    final = Path(out) / "benchmarks" / f"{name}-{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}.parquet"
    with atomic_path(final) as tmp:
        pq.write_table(table, tmp)
    return final


def read_benchmarks(out):
    """Every benchmark row under `<out>/benchmarks/` as pandas (empty frame if none)."""
    folder = Path(out) / "benchmarks"
    parts = sorted(folder.glob("*.parquet")) if folder.is_dir() else []
    if not parts:
        return SCHEMA.empty_table().to_pandas()
    return pa.concat_tables([pq.read_table(p, schema=SCHEMA) for p in parts]).to_pandas()


def machine_load() -> dict:
    """What the figures were measured under: cores, load average, torch threads."""
    info = {"cpus": os.cpu_count(), "python": platform.python_version()}
    try:
        info["loadavg_1m"] = round(os.getloadavg()[0], 2)
    except OSError:
        pass
    return info


def run_benchmarks(names, out, config: BenchConfig, echo=print) -> int:
    """Run the named benchmarks (default: DEFAULT_BENCHMARKS); 0 if every target was met,
    1 if one was missed or a benchmark failed. Each benchmark's figures are written even when a
    later one fails."""
    names = list(names) or list(DEFAULT_BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        raise InputError(f"unknown benchmark {', '.join(unknown)}; benchmarks: "
                         f"{', '.join(BENCHMARKS)} (default: {', '.join(DEFAULT_BENCHMARKS)})")
    import torch
    threads = torch.get_num_threads()
    if config.threads:
        torch.set_num_threads(config.threads)
    try:
        return _run_all(names, out, config, echo)
    finally:
        torch.set_num_threads(threads)


def _run_all(names, out, config: BenchConfig, echo) -> int:
    run_id = uuid.uuid4().hex[:12]
    missed, failed = [], []
    for name in names:
        record = Record(name, run_id, echo)
        echo(f"[{name}] {machine_load()}")
        t0 = time.perf_counter()
        try:
            importlib.import_module(BENCHMARKS[name]).run(config, record)
        except Exception as e:   # keep the figures measured so far, run the next benchmark
            failed.append(name)
            record.add("error", "failed", math.nan, "", error=f"{type(e).__name__}: {e}")
            echo(f"[{name}] failed: {type(e).__name__}: {e}")
        part = write_rows(out, record.rows, name, run_id)
        missed += record.missed()
        echo(f"[{name}] {time.perf_counter() - t0:.0f} s" + (f" -> {part}" if part else ""))
    for row in missed:
        echo(f"target missed: {row['name']} {row['case']} {row['metric']} = {_fmt(row['value'])}"
             f" (target {row['target']})")
    return 1 if missed or failed else 0
