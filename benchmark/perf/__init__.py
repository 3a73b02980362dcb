"""Performance benchmarks with targets (issue 8), separate from the tests' default run.

Each benchmark is a module with `run(config, record)`: it measures, checks correctness where it
can, and adds figures to `record`. The runner prints every figure and appends one Parquet part
per benchmark run to `<out>/benchmarks/`, so past runs can be queried like results:

    ktbench bench                       # stats, transfer, sharing, gpu (skipped without CUDA)
    ktbench bench demo --out DIR        # the slow, opt-in `ktbench demo` cold/warm timing
    ktbench bench scale --units 100000  # a results folder at sweep scale, before and after compaction
    duckdb -c "SELECT * FROM read_parquet('DIR/benchmarks/*.parquet')"

The runner (`runner`), one run's figures (`record`) and the benchmarks table's schema, writer
and reader (`table`) are modules of their own; this face names what is public. Eager: none of
them loads torch or pandas at import.

These machines are shared and noisy: compare figures as ratios taken within one run (the
benchmarks interleave what they compare and report medians); absolute times are indicative.
"""
from benchmark.perf.record import Record
from benchmark.perf.runner import BENCHMARKS, DEFAULT_BENCHMARKS, BenchConfig, run_benchmarks
from benchmark.perf.table import SCHEMA, read_benchmarks, write_rows

__all__ = ["BENCHMARKS", "DEFAULT_BENCHMARKS", "SCHEMA", "BenchConfig", "Record",
           "read_benchmarks", "run_benchmarks", "write_rows"]
