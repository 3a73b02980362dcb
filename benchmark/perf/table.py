"""The benchmarks table: one Parquet part per benchmark run under `<out>/benchmarks/`, written
atomically, read back as one frame (past runs can be queried like results)."""
import socket
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from results.layout import ResultsLayout
from results.store import atomic_path

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


def write_rows(out, rows: list[dict], name: str, run_id: str) -> Path | None:
    """Append rows as one new part of `<out>/benchmarks/`, atomically (a temporary file in the
    same folder, then os.replace), so a reader never sees a half-written part."""
    if not rows:
        return None
    from benchmark.version import code_version
    now = datetime.now(timezone.utc)
    common = dict(run_id=run_id, host=socket.gethostname(), timestamp=now,
                  code_version=code_version())
    table = pa.Table.from_pylist([{**common, **row} for row in rows], schema=SCHEMA)
    part = f"{name}-{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}.parquet"
    final = ResultsLayout(out).benchmarks / part
    with atomic_path(final) as tmp:
        pq.write_table(table, tmp)
    return final


def read_benchmarks(out):
    """Every benchmark row under `<out>/benchmarks/` as pandas (empty frame if none)."""
    folder = ResultsLayout(out).benchmarks
    parts = sorted(folder.glob("*.parquet")) if folder.is_dir() else []
    if not parts:
        return SCHEMA.empty_table().to_pandas()
    return pa.concat_tables([pq.read_table(p, schema=SCHEMA) for p in parts]).to_pandas()
