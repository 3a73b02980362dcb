"""The performance benchmarks with their targets (issue 8). Not in the default run:

    python -m pytest -m bench tests/test_bench.py -s            # stats, transfer, sharing, gpu
    KTBENCH_BENCH_DEMO=1 python -m pytest -m bench tests/test_bench.py -s -k demo   # minutes

Each test runs one benchmark through `benchmark.perf.run_benchmarks` (the code behind
`ktbench bench`), prints its figures and appends them to `$KTBENCH_BENCH_OUT/benchmarks/` (default:
a temporary folder), then fails if a target was missed. The micro zoo comes from $KTBENCH_CACHE
when set (trained there if missing), else it is trained into the session's cache (minutes).
Timings on shared machines are noisy: a missed timing target is worth a rerun before a fix.
"""
import os
from pathlib import Path

import pytest

from benchmark.perf import BenchConfig, read_benchmarks, run_benchmarks

pytestmark = pytest.mark.bench


@pytest.fixture(scope="module")
def bench_cache(cache):
    return Path(os.environ["KTBENCH_CACHE"]) if os.environ.get("KTBENCH_CACHE") else cache


@pytest.fixture(scope="module")
def bench_out(tmp_path_factory):
    if os.environ.get("KTBENCH_BENCH_OUT"):
        return Path(os.environ["KTBENCH_BENCH_OUT"])
    return tmp_path_factory.mktemp("bench-out")


def _run(name, bench_out, bench_cache, **config):
    earlier = set(read_benchmarks(bench_out)["run_id"])
    code = run_benchmarks([name], bench_out, BenchConfig(cache=bench_cache, **config))
    rows = read_benchmarks(bench_out)
    rows = rows[~rows["run_id"].isin(earlier)]
    assert len(rows) and (rows["name"] == name).all()
    failed = rows[rows["metric"] == "failed"]
    assert failed.empty, failed["params"].tolist()
    missed = rows[rows["met"] == False]   # noqa: E712  (nullable column: None is no target)
    assert missed.empty, "targets missed:\n" + missed[
        ["case", "metric", "value", "target"]].to_string(index=False)
    assert code == 0
    return rows


def test_all_pairs_statistics(bench_out, bench_cache):
    """M = 400 models x 50,000 samples x 1000 classes, every ordered pair, under 10 s; the
    per-pair speed-up over the official per-sample loops at least 1000x, results equal."""
    rows = _run("stats", bench_out, bench_cache)
    assert {"core M=400", "full M=400"} <= set(rows["case"])


def test_transfer_step_within_5_percent_of_a_bare_loop(bench_out, bench_cache):
    rows = _run("transfer", bench_out, bench_cache)
    assert (rows.loc[rows["metric"] == "max_param_diff", "value"] == 0).all()


def test_teacher_sharing(bench_out, bench_cache):
    rows = _run("sharing", bench_out, bench_cache)
    speedups = rows.loc[rows["metric"] == "speedup", "value"]
    assert len(speedups) == 2


def test_gpu_kl_dp_step(bench_out, bench_cache):
    import torch
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    _run("gpu", bench_out, bench_cache)


@pytest.mark.skipif(not os.environ.get("KTBENCH_BENCH_DEMO"),
                    reason="minutes: set KTBENCH_BENCH_DEMO=1 (or run `ktbench bench demo`)")
def test_demo_cold_and_warm(bench_out, bench_cache):
    rows = _run("demo", bench_out, bench_cache)
    assert {"cold", "warm"} <= set(rows["case"])
