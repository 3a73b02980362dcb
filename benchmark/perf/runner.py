"""Running benchmarks by name (`ktbench bench`): each one's figures are written as a part of the
benchmarks table even when a later one fails."""
import dataclasses
import importlib
import math
import time
import uuid
from pathlib import Path

from benchmark.perf.record import Record, format_value, machine_load
from benchmark.perf.table import write_rows
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


@dataclasses.dataclass
class BenchConfig:
    cache: Path                        # micro-zoo weights and data (built if missing)
    quick: bool = False                # tiny sizes: checks the harness, measures nothing real
    threads: int | None = None         # torch threads (default: torch's own)
    repeats: int | None = None         # override each benchmark's repetitions
    device: str | None = None          # gpu benchmark: force a device (e.g. "cpu" to dry-run)
    units: int | None = None           # scale benchmark: transfer units in the folder


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
        echo(f"target missed: {row['name']} {row['case']} {row['metric']} = "
             f"{format_value(row['value'])} (target {row['target']})")
    return 1 if missed or failed else 0
