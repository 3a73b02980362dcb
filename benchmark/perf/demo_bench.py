"""`ktbench demo`, cold and warm (issue 8, target 4). Opt-in: it takes minutes.

cold: an empty cache and an empty results folder (the digits data are rendered, the micro zoo is
trained, then plan, launch, tables); warm: the cache the cold run filled, a fresh results folder.
Wall time and peak memory of the whole process tree (`ktbench demo` runs its units in child
processes), sampled from /proc every 0.2 s: the peak of the tree's summed RSS and the largest
single process. Short spikes between samples can be missed.
"""
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

QUICK_ARGS = ["--pairs", "1", "--methods", "kl", "--epochs", "1"]


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    return children


def tree_rss_bytes(root: int) -> tuple[int, int]:
    """(summed RSS, largest single RSS) of `root` and its descendants, in bytes."""
    children, stack, total, largest = _children_map(), [root], 0, 0
    page = os.sysconf("SC_PAGE_SIZE")
    while stack:
        pid = stack.pop()
        stack.extend(children.get(pid, []))
        try:
            with open(f"/proc/{pid}/statm") as f:
                rss = int(f.read().split()[1]) * page
        except (OSError, IndexError, ValueError):
            continue
        total, largest = total + rss, max(largest, rss)
    return total, largest


def run_demo(cache: Path, results: Path, extra_args=(), timeout: float = 3600) -> dict:
    cmd = [sys.executable, "-m", "benchmark.cli", "demo", "--cache", str(cache),
           "--results", str(results), *extra_args]
    log = results.parent / f"{results.name}.log"
    peak_total = peak_single = 0
    t0 = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        while proc.poll() is None:
            if time.perf_counter() - t0 > timeout:
                proc.kill()
                raise TimeoutError(f"ktbench demo ran past {timeout:.0f} s")
            total, single = tree_rss_bytes(proc.pid)
            peak_total, peak_single = max(peak_total, total), max(peak_single, single)
            time.sleep(0.2)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        tail = log.read_text().strip().splitlines()[-5:]
        raise RuntimeError(f"ktbench demo exited {proc.returncode}: {' | '.join(tail)}")
    return {"wall_s": wall, "peak_tree_gib": peak_total / 2**30,
            "peak_process_gib": peak_single / 2**30}


def run(config, record):
    extra = QUICK_ARGS if config.quick else []
    with tempfile.TemporaryDirectory(prefix="ktbench-demo-") as tmp:
        tmp = Path(tmp)
        runs = []
        if config.quick:        # the micro zoo must already be in the configured cache
            runs.append(("warm", Path(config.cache)))
        else:
            runs += [("cold", tmp / "cache"), ("warm", tmp / "cache")]
        for label, cache in runs:
            figures = run_demo(cache, tmp / f"results-{label}", extra)
            params = dict(args=list(extra), cpus=os.cpu_count())
            record.add(label, "wall_s", figures["wall_s"], "s", **params)
            record.add(label, "peak_tree_rss", figures["peak_tree_gib"], "GiB", **params)
            record.add(label, "peak_process_rss", figures["peak_process_gib"], "GiB", **params)
