"""Check a results folder: every Parquet part of every table, every transfer checkpoint and
every probe head.

`verify(results_dir)` reads each part in full (PAR1 magic at both ends, readable by pyarrow,
the columns of `results/schema.py`), loads each checkpoint with
`torch.load(weights_only=True)` and opens each probe head's safetensors header (whole, a
`weight` [C, D] and a `bias` [C] in float32, of the shape its `probes` row records); it also
finds hidden temporary files left by killed writers
(older than an hour, so a live writer's file is left alone). With `fix=True` every bad file is
moved aside into `<results>/quarantine/<table, checkpoints or probe_heads>/`, one warning line
each: the rest of the table stays readable and the unit whose part, checkpoint or head went
aside reruns (from the start when its only checkpoint was bad).

`quarantine_unreadable(results_dir)` is the cheap form that `ktbench launch` and `status` run
first: only the magic bytes at both ends of each part, the zip directory of each
checkpoint and each head's header (not its `probes` row), so a truncated file never breaks the
DuckDB views over the whole table, nor a job loading a probed model.
"""
import os
import shutil
import sys
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from results.layout import ResultsLayout
from results.schema import TABLES, valid_columns

MAGIC = b"PAR1"
STALE_TMP_S = 3600


@dataclass
class Problem:
    path: Path
    kind: str          # table name, "checkpoints", "probe_heads" or "tmp"
    reason: str
    moved_to: Path | None = None

    def line(self) -> str:
        where = f" -> moved to {self.moved_to}" if self.moved_to else ""
        return f"{self.path}: {self.reason}{where}"


@dataclass
class Report:
    parts: int = 0
    checkpoints: int = 0
    heads: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        checked = f"{self.parts} parts and {self.checkpoints} checkpoints"
        if self.heads:
            checked = (f"{self.parts} parts, {self.checkpoints} checkpoints and "
                       f"{self.heads} probe heads")
        return (f"checked {checked}: "
                + ("all good" if self.ok else f"{len(self.problems)} problem(s)"))


def footer_ok(path) -> str | None:
    """None when `path` starts and ends with the Parquet magic; else why not."""
    try:
        size = os.stat(path).st_size
        if size < 12:
            return f"too short for Parquet ({size} bytes)"
        with open(path, "rb") as f:
            head = f.read(4)
            f.seek(-4, os.SEEK_END)
            tail = f.read(4)
    except OSError as e:
        return f"unreadable ({e.strerror or e})"
    if head != MAGIC:
        return "no PAR1 header"
    if tail != MAGIC:
        return "no PAR1 footer (truncated)"
    return None


def columns_problem(names: list[str], table: str) -> str | None:
    """None when a file of `table` may have these columns (`results.schema.valid_columns`)."""
    if names in valid_columns(table):
        return None
    missing = sorted(set(TABLES[table].names) - set(names))
    extra = sorted(set(names) - set(TABLES[table].names))
    return f"schema differs from results/schema.py (missing {missing}, unexpected {extra})"


def _part_problem(path: Path, table: str) -> str | None:
    if reason := footer_ok(path):
        return reason
    import pyarrow.parquet as pq
    try:
        names = pq.read_table(path).schema.names
    except Exception as e:   # any pyarrow failure means the part is unusable
        return f"not readable by pyarrow ({type(e).__name__}: {str(e).splitlines()[0][:120]})"
    return columns_problem(names, table)


def _checkpoint_problem(path: Path, full: bool) -> str | None:
    if not zipfile.is_zipfile(path):
        return "not a torch checkpoint (no zip directory: truncated or foreign)"
    if not full:
        return None
    import torch
    try:
        state = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as e:
        return f"not loadable with weights_only=True ({type(e).__name__})"
    if not isinstance(state, dict):
        return f"not a state dict ({type(state).__name__})"
    return None


def head_problem(path: Path, shape: tuple[int, int] | None = None) -> str | None:
    """None when `path` is a whole safetensors file holding a linear head, `weight` [C, D] and
    `bias` [C] in float32 (of `shape` (C, D), if given); else why not. Reads the header only."""
    from safetensors import safe_open
    try:
        with safe_open(str(path), framework="numpy") as f:
            tensors = {k: (f.get_slice(k).get_dtype(), tuple(f.get_slice(k).get_shape()))
                       for k in f.keys()}
    except Exception as e:   # the library's error for a cut or foreign file
        return f"not a whole safetensors file ({str(e).splitlines()[0][:120]})"
    want = tuple(shape) if shape else tensors.get("weight", ("", ()))[1]
    if len(want) != 2 or tensors != {"weight": ("F32", want), "bias": ("F32", want[:1])}:
        recorded = f" with (C, D) = {want}, as its probes row records" if shape else ""
        return f"holds {tensors}: a probe head is a F32 weight [C, D] and bias [C]{recorded}"
    return None


def _probe_shapes(parts: list[Path]) -> dict[str, tuple[int, int]]:
    """probe key -> (classes, feature dim) its `probes` row records, over readable parts."""
    import pyarrow.parquet as pq
    shapes = {}
    for part in parts:
        rows = pq.read_table(part, columns=["key", "num_classes", "dim"]).to_pylist()
        shapes.update((r["key"], (r["num_classes"], r["dim"])) for r in rows)
    return shapes


def _quarantine(results_dir: Path, path: Path, kind: str) -> Path:
    folder = ResultsLayout(results_dir).quarantine(kind)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / path.name.lstrip(".")
    if target.exists():
        target = folder / f"{target.name}.{time.time_ns()}"
    shutil.move(str(path), target)
    return target


def _scan(results_dir: Path, fix: bool, full: bool, report: Report):
    now = time.time()

    def bad(path, kind, reason):
        problem = Problem(path, kind, reason)
        if fix:
            try:
                problem.moved_to = _quarantine(results_dir, path, kind)
            except FileNotFoundError:   # a racing writer or launch moved or replaced it
                return
            print(f"ktbench: warning: {problem.line()}", file=sys.stderr)
        report.problems.append(problem)

    def stale_tmps(folder: Path, kind: str):
        for tmp in folder.glob(".*"):
            if ".tmp" in tmp.name and tmp.is_file():
                try:
                    age = now - tmp.stat().st_mtime
                except FileNotFoundError:
                    continue
                if age > STALE_TMP_S:
                    bad(tmp, "tmp", f"stale temporary file ({age / 3600:.1f} h old)")

    layout = ResultsLayout(results_dir)
    probe_parts = []
    for table in TABLES:
        folder = layout.table(table)
        if not folder.is_dir():
            continue
        for part in sorted(folder.glob("*.parquet")):
            report.parts += 1
            reason = _part_problem(part, table) if full else footer_ok(part)
            if reason:
                bad(part, table, reason)
            elif table == "probes":
                probe_parts.append(part)
        if full:
            stale_tmps(folder, table)
    ckpts = layout.checkpoints
    if ckpts.is_dir():
        for ckpt in sorted(ckpts.glob("*.pt")):
            report.checkpoints += 1
            if reason := _checkpoint_problem(ckpt, full):
                bad(ckpt, "checkpoints", reason)
        if full:
            stale_tmps(ckpts, "checkpoints")
    if layout.probe_heads.is_dir():
        # the shape each head's row records: in full only (the cheap check reads no rows)
        shapes = _probe_shapes(probe_parts) if full else {}
        for head in sorted(layout.probe_heads.glob("*.safetensors")):
            report.heads += 1
            if reason := head_problem(head, shapes.get(head.name.removesuffix(".safetensors"))):
                bad(head, "probe_heads", reason)
        if full:
            stale_tmps(layout.probe_heads, "probe_heads")


def verify(results_dir, fix: bool = False) -> Report:
    """Check every part, checkpoint and probe head under `results_dir` in full; `fix` moves
    bad ones aside."""
    report = Report()
    _scan(Path(results_dir), fix, True, report)
    return report


def quarantine_unreadable(results_dir) -> Report:
    """The cheap check (magic bytes, zip directory) with bad files moved aside and warned about."""
    report = Report()
    if Path(results_dir).is_dir():
        _scan(Path(results_dir), True, False, report)
    return report
