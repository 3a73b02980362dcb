"""Compaction: a table's many small parts merged into a few large files, safe at every instant.

A table folder holds one part per unit (`<key>.parquet`); at 10^5 units every reader pays for
10^5 files. `compact(DIR)` merges each table's parts, in bounded batches, into compacted files
`<table>/compacted-<generation>-<id>.parquet` of about `max_rows` rows (or `max_bytes` of parts)
each, then removes the parts it merged. The result is plain Parquet with the table's schema,
readable by DuckDB, pandas or polars as before.

Why it is safe (docs/reliability.md#compaction):

- Nothing is removed before every compacted file is written, synced and renamed into place
  (`results.store.atomic_path`), so a kill -9 at any instant leaves each row in a part, in a
  compacted file or in both; the views keep one row per natural key, so none counts twice.
- One row per key for every reader: once the compacted files are in place, the rows of the
  table's compacted files that a newer row of their key supersedes (a unit rerun, predictions
  imported again) are dropped, each file rewritten atomically (`results.superseded`), before any
  part is removed; a kill -9 in between leaves them for the next compaction. Only parts that
  appear while it runs (newer rows, that the views prefer) may repeat a key until the next one.
- The views read compacted files oldest generation first, then parts, and keep the row read
  last: a part written after a compaction (a rerun of its unit) beats the compacted copy of its
  key, and rows keep their order inside a compacted file, so merging never changes which row
  wins.
- Only parts listed at the start are merged, so a part that appears during a compaction stays.
  A part is removed only if it is still the very file that was read (same inode, size and
  modification time): it is first renamed to a hidden `.<name>.compacting`, checked, then
  deleted, or, when a writer replaced it since it was read, put back unless a newer part
  already took its name. A compaction killed in between leaves the hidden file, which the next
  compaction puts back the same way.
- One compaction at a time per results folder (an exclusive lock on the folder).
- A part that cannot be read stops the compaction before anything changed (`CompactError`):
  `ktbench verify --fix` moves such parts aside.

Readers list a table's files when they bind it; a file that a compaction removes after that
makes them list again (`results.store.query` retries).
"""
import collections
import contextlib
import dataclasses
import fcntl
import itertools
import os
import re
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from results import superseded
from results.errors import InputError
from results.layout import ResultsLayout
from results.schema import COMPACTED_PREFIX, TABLES
from results.store import atomic_path
from results.verify import columns_problem, footer_ok
from results.views import rows_sql

MAX_ROWS = 1_000_000            # rows of one compacted file (about: whole batches)
MAX_BYTES = 256 * 2**20         # bytes of parts merged into one compacted file
ROW_GROUP_ROWS = 128 * 1024
BATCH_FILES = 2000              # files read at once (DuckDB's cost per file grows on longer lists)
BATCH_BYTES = 64 * 2**20        # bytes of files read at once
READERS = 2                     # threads reading batches, each with its own DuckDB
AHEAD = READERS + 1             # batches in flight: both readers busy while one batch is written
_HIDDEN = ".compacting"
_SPILL = ".compact.spill"       # a folder DuckDB may spill to while finding superseded rows
_GENERATION = re.compile(rf"{COMPACTED_PREFIX}(\d+)-")


class CompactError(InputError):
    """Not a results folder, or a part that cannot be read: nothing was changed (or superseded
    rows could not be looked for: the compacted files are in place, no part was removed)."""


class Busy(RuntimeError):
    """Another compaction holds the folder (raised only when not waiting for it)."""


@dataclasses.dataclass
class TableCompaction:
    table: str
    parts: int = 0            # parts merged
    merged: int = 0           # earlier compacted files merged again (small ones)
    files: int = 0            # compacted files written
    rows: int = 0             # rows written
    kept: int = 0             # parts replaced by a writer while being merged: left in place
    superseded: int = 0       # rows of compacted files dropped: a newer row has their key

    def line(self) -> str:
        merged = f" + {self.merged} small compacted file(s)" if self.merged else ""
        dropped = (f"; {self.superseded} superseded row(s) dropped (a newer row has their key)"
                   if self.superseded else "")
        kept = f"; {self.kept} part(s) rewritten meanwhile, kept" if self.kept else ""
        return (f"{self.table}: {self.parts} part(s){merged} -> {self.files} compacted "
                f"file(s), {self.rows} rows{dropped}{kept}")


def _generation(name: str) -> int:
    found = _GENERATION.match(name)
    return int(found.group(1)) if found else 0


def _identity(stat: os.stat_result) -> tuple:
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


@dataclasses.dataclass
class _Input:
    path: str                   # strings, not Paths: at 10^5 parts pathlib's cost shows
    name: str
    size: int
    identity: tuple | None      # a part's identity when listed; None for a compacted file


def _listing(folder: Path, max_rows: int, max_bytes: int) -> tuple[list[_Input], list[str], int]:
    """The files to merge, in view order (compacted by generation, then parts), the compacted
    files that stay (in view order) and the next generation. Compacted files are merged again
    only when small and after every full one."""
    compacted, parts = [], []
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name.startswith(".") or not entry.name.endswith(".parquet"):
                continue
            try:
                stat = entry.stat(follow_symlinks=False)
            except FileNotFoundError:      # quarantined or replaced meanwhile
                continue
            if entry.name.startswith(COMPACTED_PREFIX):
                compacted.append(_Input(entry.path, entry.name, stat.st_size, None))
            else:
                parts.append(_Input(entry.path, entry.name, stat.st_size, _identity(stat)))
    compacted.sort(key=lambda i: i.name)
    parts.sort(key=lambda i: i.name)
    small = []
    for item in reversed(compacted):
        if item.size >= max_bytes // 2 or pq.read_metadata(item.path).num_rows >= max_rows // 2:
            break
        small.insert(0, item)
    generation = max((_generation(i.name) for i in compacted), default=0) + 1
    staying = [i.path for i in compacted[:len(compacted) - len(small)]]
    return small + parts, staying, generation


def _batches(inputs: list[_Input], limit_files: int, limit_bytes: int):
    batch, size = [], 0
    for item in inputs:
        if batch and (len(batch) >= limit_files or size + item.size > limit_bytes):
            yield batch
            batch, size = [], 0
        batch.append(item)
        size += item.size
    if batch:
        yield batch


def _reader() -> duckdb.DuckDBPyConnection:
    """A DuckDB for one reading thread. One thread per DuckDB keeps rows in file order without
    an ORDER BY (which cost as much as the read on large parts), and each file is read once, so
    DuckDB's file cache would only copy. No async I/O threads: handing each small file's reads
    to them cost more CPU than the reads (a fifth of a compaction of 2 * 10^5 parts)."""
    return duckdb.connect(":memory:", config={"threads": 1, "async_threads": 0,
                                              "enable_external_file_cache": False})


def _read(con, table: str, paths: list[str]) -> pa.Table:
    """The rows of `paths` in file order (`con` from `_reader`), as the table's schema. Files of
    one schema are read as they are; files written before a column was added take the view's
    route (NULLs there); a file that is unreadable or of a foreign schema is a CompactError."""
    schema = TABLES[table]
    columns = ", ".join(f'"{n}"' for n in schema.names)
    try:
        return con.sql(f"SELECT {columns} FROM read_parquet($paths, hive_partitioning = false)",
                       params={"paths": paths}).to_arrow_table().cast(schema)
    except duckdb.Error:
        pass
    for path in paths:
        try:
            problem = footer_ok(path) or columns_problem(pq.read_schema(path).names, table)
        except Exception as e:     # any pyarrow failure means the part is unusable
            problem = f"not readable ({type(e).__name__}: {str(e).splitlines()[0][:120]})"
        if problem:
            raise CompactError(f"{path}: {problem}; move it aside with ktbench verify --fix")
    con.execute("SET VARIABLE kt_batch = ?", [paths])
    try:
        return con.sql(f"SELECT {columns} FROM ({rows_sql(table, 'kt_batch')}) "
                       "ORDER BY kt_file, kt_row").to_arrow_table().cast(schema)
    except duckdb.Error as e:
        raise CompactError(f"{table}: parts not readable together ({str(e).splitlines()[0]}); "
                           "ktbench verify names the bad part") from None


def _read_ahead(batches):
    """(table, batch, its rows) for each (table, batch) in order, read `AHEAD` batches ahead on
    `READERS` threads (DuckDB and the Parquet writer release the GIL: on 10^5 small parts the
    reads are most of the time, so both cores read while the caller writes). One stream over
    every table keeps the readers busy across the tables' boundaries."""
    local, readers = threading.local(), []

    def read(table, batch):
        if not hasattr(local, "con"):
            local.con = _reader()
            readers.append(local.con)
        return _read(local.con, table, [i.path for i in batch])

    batches = iter(batches)
    try:
        with ThreadPoolExecutor(READERS) as pool:
            ahead = collections.deque((table, batch, pool.submit(read, table, batch))
                                      for table, batch in itertools.islice(batches, AHEAD))
            while ahead:
                table, batch, rows = ahead.popleft()
                if (following := next(batches, None)) is not None:
                    ahead.append((*following, pool.submit(read, *following)))
                yield table, batch, rows.result()
    finally:
        for con in readers:
            con.close()


class _Output:
    """One table's compacted files, written batch by batch: hidden until `stack` closes, then
    renamed into place. Strings are dictionary-encoded (ids, names: few distinct values), other
    columns plain; zstd: half the writer's time of the defaults on 5 * 10^7 prediction rows,
    and smaller files."""

    def __init__(self, stack: contextlib.ExitStack, report: TableCompaction, folder: Path,
                 generation: int, max_rows: int, max_bytes: int):
        self.stack, self.report, self.folder = stack, report, folder
        self.generation, self.max_rows, self.max_bytes = generation, max_rows, max_bytes
        self.writer, self.rows, self.size = None, 0, 0
        self.paths = []           # the compacted files' final paths, in view order
        schema = TABLES[report.table]
        self.options = dict(compression="zstd", use_dictionary=[
            f.name for f in schema if pa.types.is_string(f.type)])

    def write(self, batch: list[_Input], data: pa.Table) -> None:
        if self.writer is not None and (self.rows >= self.max_rows or self.size >= self.max_bytes):
            self.close()
        if self.writer is None:
            name = f"{COMPACTED_PREFIX}{self.generation:010d}-{uuid.uuid4().hex[:8]}.parquet"
            self.paths.append(os.path.join(self.folder, name))
            tmp = self.stack.enter_context(atomic_path(self.folder / name))
            self.writer = self.stack.enter_context(
                pq.ParquetWriter(tmp, TABLES[self.report.table], **self.options))
            self.generation, self.rows, self.size = self.generation + 1, 0, 0
            self.report.files += 1
        self.writer.write_table(data, row_group_size=ROW_GROUP_ROWS)
        self.rows, self.size = self.rows + data.num_rows, self.size + sum(i.size for i in batch)
        self.report.rows += data.num_rows

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def drop_superseded(self, con, staying: list[str]) -> None:
        """Drop the rows of the table's compacted files (those that stay, then these, in view
        order) that a newer row of their key supersedes (called once these are in place; `con`
        from `superseded.connect`)."""
        files = staying + self.paths
        for index, rows in superseded.find(con, files, self.report.table).items():
            self.report.superseded += superseded.drop(files[index], self.report.table, rows,
                                                      self.options, ROW_GROUP_ROWS)


def _put_back(hidden, path) -> None:
    """`hidden` back at `path` unless a newer file took that name (never overwrites)."""
    try:
        os.link(hidden, path)
    except FileExistsError:
        pass
    os.unlink(hidden)


def _remove(item: _Input) -> bool:
    """Remove a merged file; a part only if it is still the file that was read (True if a
    writer replaced it meanwhile, so it stays)."""
    if item.identity is None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(item.path)
        return False
    hidden = os.path.join(os.path.dirname(item.path), f".{item.name}{_HIDDEN}")
    try:
        os.rename(item.path, hidden)
    except FileNotFoundError:        # moved aside (quarantine) meanwhile
        return False
    if _identity(os.stat(hidden)) == item.identity:
        os.unlink(hidden)
        return False
    _put_back(hidden, item.path)
    return True


def restore_interrupted(folder: Path) -> None:
    """Put back the parts a killed compaction left hidden, and remove the compacted files it
    left half-written (run under the lock: no other compaction is writing)."""
    with os.scandir(folder) as entries:       # one pass: a folder may hold 10^5 parts
        hidden = [entry.name for entry in entries if entry.name.startswith(".")]
    for name in hidden:
        if name.endswith(_HIDDEN):
            _put_back(folder / name, folder / name[1:-len(_HIDDEN)])
        elif name.startswith(f".{COMPACTED_PREFIX}") and name.endswith(".tmp"):
            (folder / name).unlink(missing_ok=True)


@contextlib.contextmanager
def _locked(results_dir: Path, wait: bool):
    """The folder's compaction lock (a lock file, as NFS needs; released when the process
    ends, however it ends)."""
    fd = os.open(ResultsLayout(results_dir).compact_lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            raise Busy(f"another compaction of {results_dir} is running") from None
        yield
    finally:
        os.close(fd)


def check_results_folder(results_dir) -> Path:
    results_dir = Path(results_dir)
    layout = ResultsLayout(results_dir)
    if not results_dir.is_dir() or not any(layout.table(t).is_dir() for t in TABLES):
        raise CompactError(f"{results_dir} is not a ktbench results folder (no table folder: "
                           f"{', '.join(TABLES)})")
    return results_dir


def compact(results_dir, tables=None, max_rows: int = MAX_ROWS, max_bytes: int = MAX_BYTES,
            wait: bool = True) -> list[TableCompaction]:
    """Merge the parts of every table (or of `tables`) into compacted files; one report per
    table that had something to merge. Raises CompactError (nothing changed) for a folder that
    is not a results folder or a part that cannot be read, and Busy when another compaction
    holds the folder and `wait` is false."""
    results_dir = check_results_folder(results_dir)
    names = list(TABLES) if tables is None else list(tables)

    def listing(folder: Path):
        restore_interrupted(folder)
        return _listing(folder, max_rows, max_bytes)

    with _locked(results_dir, wait), ThreadPoolExecutor(READERS) as pool:
        layout = ResultsLayout(results_dir)
        folders = [layout.table(t) for t in names if layout.table(t).is_dir()]
        # the tables' folders are listed, and their merged parts removed, on threads: the
        # system calls release the GIL and folders do not share a directory lock; a lone part
        # is merged too (it may supersede rows of the compacted files)
        todo = [(folder, *listed) for folder, listed in zip(folders, pool.map(listing, folders))
                if len(listed[0]) >= 2 or any(i.identity is not None for i in listed[0])]
        outputs = {}
        # every compacted file, or none: a part that cannot be read (CompactError) leaves
        # nothing written and nothing removed
        with contextlib.ExitStack() as stack:
            for folder, inputs, _, generation in todo:
                report = TableCompaction(
                    folder.name, parts=sum(i.identity is not None for i in inputs),
                    merged=sum(i.identity is None for i in inputs))
                outputs[folder.name] = _Output(stack, report, folder, generation, max_rows,
                                               max_bytes)
            batches = ((folder.name, batch) for folder, inputs, _, _ in todo
                       for batch in _batches(inputs, BATCH_FILES, BATCH_BYTES))
            with contextlib.closing(_read_ahead(batches)) as stream:
                for table, batch, data in stream:
                    outputs[table].write(batch, data)
            for output in outputs.values():
                output.close()
        if todo:
            try:
                with contextlib.closing(superseded.connect(results_dir / _SPILL)) as con:
                    for folder, _, staying, _ in todo:
                        outputs[folder.name].drop_superseded(con, staying)
            except superseded.SupersededError as e:
                raise CompactError(str(e)) from None
        reports = [output.report for output in outputs.values()]
        removals = pool.map(lambda inputs: sum(_remove(item) for item in inputs),
                            [inputs for _, inputs, _, _ in todo])
        for report, kept in zip(reports, removals):
            report.kept = kept
    return reports
