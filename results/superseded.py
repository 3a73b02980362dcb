"""Superseded rows: the rows of a table's compacted files that a newer row of their natural key
replaces, found and dropped in bounded memory, so that every reader (pandas, polars, pyarrow,
DuckDB without the views) counts one row per key, as the views do.

"Newer" is the views' rule (`results.views`): files in view order (compacted by generation),
rows in file order, the row read last wins. `find` takes the files in that order and names the
rows that lose, in passes of DuckDB over the keys alone, under a memory limit (DuckDB spills to
a folder beyond it): whether any hash of a key repeats (no, almost always: then nothing else is
read; about 1 CPU-s per 10^7 rows), then the repeated hashes, then, for the rows whose hash is
among them, the newest place of each key and the rows before it (a hash shared by two keys
only costs a look at their rows). `drop` rewrites one file without its losing rows,
atomically, a row group at a time. `drop_in_parts` drops the rows of keys a unit computed
again from other inputs from the parts of other units (the views order parts by name, not age).
"""
import os
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from results.schema import COMPACTED_PREFIX, TABLE_KEYS, TABLES
from results.store import atomic_path, table_dir
from results.views import quote_name

MEMORY_LIMIT = "256MB"          # DuckDB's memory for finding them; it spills to disk beyond
_PLACE = 2**40                  # a row's place: file index * _PLACE + row in its file
PART_OPTIONS = {"compression": "zstd"}      # a part `drop_in_parts` rewrites
PART_ROW_GROUP_ROWS = 128 * 1024


class SupersededError(ValueError):
    """DuckDB could not finish looking (out of disk, say): nothing was dropped."""


def connect(spill: Path) -> duckdb.DuckDBPyConnection:
    """A DuckDB for `find`, under `MEMORY_LIMIT`, spilling to the folder `spill` (left empty)."""
    try:
        return duckdb.connect(":memory:", config={"memory_limit": MEMORY_LIMIT,
                                                 "temp_directory": str(spill)})
    except duckdb.Error as e:
        raise SupersededError(f"superseded rows not looked for ({str(e).splitlines()[0]}); "
                              "the views are right, the next compaction drops them") from None


def find(con: duckdb.DuckDBPyConnection, files: list[str], table: str) -> dict[int, np.ndarray]:
    """{index in `files`: sorted numbers of its superseded rows}, for the files of `table` in
    view order (`con` from `connect`)."""
    if len(files) == 0:
        return {}
    try:
        return _find(con, files, table)
    except duckdb.Error as e:
        raise SupersededError(f"{table}: superseded rows not looked for ({str(e).splitlines()[0]}); "
                              "the views are right, the next compaction drops them") from None


def _find(con, files: list[str], table: str) -> dict[int, np.ndarray]:
    keys = [quote_name(k) for k in TABLE_KEYS[table]]
    key_list = ", ".join(keys)
    same_key = " AND ".join(f"r.{k} IS NOT DISTINCT FROM n.{k}" for k in keys)
    con.execute("SET VARIABLE kt_files = ?", [files])
    scan = (f"SELECT {key_list}, file_index AS kt_file, file_row_number AS kt_row "
            "FROM read_parquet(getvariable('kt_files'), union_by_name = true)")
    hashes = f"SELECT hash({key_list}) AS h FROM ({scan})"
    # counting distinct hashes costs two thirds of collecting the repeated ones
    if con.execute(f"SELECT count(*) = count(DISTINCT h) FROM ({hashes})").fetchone()[0]:
        return {}
    con.execute(f"CREATE OR REPLACE TEMP TABLE kt_repeated AS SELECT h FROM ({hashes}) "
                "GROUP BY h HAVING count(*) > 1")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE kt_superseded AS
        WITH r AS (SELECT *, kt_file * {_PLACE} + kt_row AS place FROM ({scan})
                   WHERE hash({key_list}) IN (SELECT h FROM kt_repeated)),
             n AS (SELECT {key_list}, max(place) AS newest FROM r GROUP BY ALL)
        SELECT r.kt_file, r.kt_row FROM r JOIN n ON {same_key} WHERE r.place < n.newest""")
    found = {}
    for (index,) in con.execute("SELECT DISTINCT kt_file FROM kt_superseded "
                                "ORDER BY kt_file").fetchall():
        rows = con.execute("SELECT kt_row FROM kt_superseded WHERE kt_file = ? "
                           "ORDER BY kt_row", [index]).fetchnumpy()["kt_row"]
        found[index] = np.asarray(rows, dtype=np.int64)
    return found


def _as_schema(data: pa.Table, schema: pa.Schema) -> pa.Table:
    """`data` with the table's columns (NULLs for the columns a file from before they were added
    lacks)."""
    columns = [data.column(f.name) if f.name in data.column_names else pa.nulls(len(data), f.type)
               for f in schema]
    return pa.Table.from_arrays(columns, names=schema.names).cast(schema)


def drop(path: str, table: str, rows: np.ndarray, options: dict, row_group_rows: int) -> int:
    """Rewrite compacted file `path` without the rows numbered `rows` (sorted), atomically, with
    the writer `options`; a file left with no row is removed. Returns the rows dropped."""
    source = pq.ParquetFile(path)
    if len(rows) >= source.metadata.num_rows:
        source.close()
        os.unlink(path)
        return len(rows)
    schema = TABLES[table]
    with source, atomic_path(path) as tmp, pq.ParquetWriter(tmp, schema, **options) as writer:
        start = 0
        for batch in source.iter_batches(batch_size=row_group_rows):
            end = start + batch.num_rows
            keep = np.ones(batch.num_rows, dtype=bool)
            keep[rows[np.searchsorted(rows, start):np.searchsorted(rows, end)] - start] = False
            kept = pa.Table.from_batches([batch]).filter(pa.array(keep))
            writer.write_table(_as_schema(kept, schema), row_group_size=row_group_rows)
            start = end
    return len(rows)


def drop_in_parts(results_dir, table: str, keys: dict[str, list], own: str) -> int:
    """Drop from the parts of `table`, except unit `own`'s (`<own>.parquet`, `<own>.<i>.parquet`),
    the rows whose values in `keys`' columns (a natural key or its first columns) are one of
    `keys`' rows, which unit `own` has just written again from other inputs (a stats unit after
    a model's predictions changed): the views order parts by name, not by age, so an earlier
    part could win. Compacted files keep theirs (any part beats them; the next compaction drops
    them). A part at a time (its rows to drop in memory, not the table's), each rewritten
    atomically (`drop`); one that a compaction merged meanwhile is left to it. Returns the rows
    dropped."""
    parts = sorted(str(p) for p in table_dir(results_dir, table).glob("*.parquet")
                   if not p.name.startswith((COMPACTED_PREFIX, own + ".")))
    if not parts or not keys:
        return 0
    columns = ", ".join(quote_name(c) for c in keys)
    wanted = ", ".join(f"unnest($k{i}) AS {quote_name(c)}" for i, c in enumerate(keys))
    dropped = 0
    with duckdb.connect() as con:
        con.execute(f"CREATE TEMP TABLE kt_keys AS SELECT {wanted}",
                    {f"k{i}": list(values) for i, values in enumerate(keys.values())})
        for part in parts:
            try:
                rows = con.execute(
                    "SELECT file_row_number FROM read_parquet(?, file_row_number = true) "
                    f"SEMI JOIN kt_keys USING ({columns}) ORDER BY ALL", [part]
                ).fetchnumpy()["file_row_number"].astype(np.int64)
                if len(rows):
                    dropped += drop(part, table, rows, PART_OPTIONS, PART_ROW_GROUP_ROWS)
            except (FileNotFoundError, duckdb.IOException):
                if os.path.exists(part):
                    raise
                # merged by a compaction meanwhile: any part beats its compacted copy
    return dropped
