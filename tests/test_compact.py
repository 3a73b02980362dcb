"""Compaction: parts merged into compacted files with the same rows, safe at every instant
(kill -9 anywhere, writers running beside it, a part rewritten meanwhile), idempotent, and
refusing bad input without changing anything."""
import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from benchmark.cli.main import main
import results.compact as compact_module
from results import query, read_table, write_part
from results.compact import Busy, CompactError, compact
from results.schema import TABLES, TRANSFER_RATES
from results.verify import verify

ROOT = Path(__file__).resolve().parents[1]


def _run(key: str, status: str = "ok", acc: float = 50.0) -> pd.DataFrame:
    row = dict.fromkeys(TABLES["transfer_runs"].names)
    row.update(key=key, plan="p", teacher="t", student="s", method="kl", params="{}", seed=0,
               dataset="d", compat="", status=status, teachers="t", mode="", epochs=2,
               student_acc=acc, error="", batch_size=8, oom_retries=0, disk_bytes=0)
    return pd.DataFrame([row])


def _epochs(key: str, acc: float = 50.0) -> pd.DataFrame:
    rows = []
    for epoch in range(2):
        row = dict.fromkeys(TABLES["transfer_epochs"].names)
        row.update(key=key, epoch=epoch, student_acc=acc + epoch, step=0, step_teacher="t")
        rows.append(row)
    return pd.DataFrame(rows)


def _unit(folder, i: int, status="ok", acc=None):
    key = f"transfer-{i:04d}"
    acc = float(i) if acc is None else acc
    write_part(folder, "transfer_epochs", _epochs(key, acc), key)
    write_part(folder, "transfer_runs", _run(key, status, acc), key)


def _folder(tmp_path, n=12) -> Path:
    folder = tmp_path / "results"
    for i in range(n):
        _unit(folder, i)
    return folder


def _files(folder: Path) -> dict[str, list[str]]:
    return {t: sorted(p.name for p in (folder / t).iterdir())
            for t in ("transfer_runs", "transfer_epochs") if (folder / t).is_dir()}


def _views(folder: Path) -> dict[str, pd.DataFrame]:
    return {"runs": read_table(folder, "transfer_runs").sort_values("key").reset_index(drop=True),
            "epochs": read_table(folder, "transfer_epochs").sort_values(["key", "epoch"])
            .reset_index(drop=True)}


def _assert_views(folder, expected):
    got = _views(folder)
    for name in expected:
        pd.testing.assert_frame_equal(got[name], expected[name], obj=name)


def test_parts_become_compacted_files_with_the_same_rows(tmp_path):
    folder = _folder(tmp_path)
    before = _views(folder)
    reports = compact(folder)
    assert [(r.table, r.parts, r.files, r.rows) for r in reports] == [
        ("transfer_epochs", 12, 1, 24), ("transfer_runs", 12, 1, 12)]
    files = _files(folder)
    assert all(len(names) == 1 and names[0].startswith("compacted-0000000001-")
               for names in files.values())
    _assert_views(folder, before)
    # plain Parquet with the table's schema, readable without ktbench
    (path,) = (folder / "transfer_runs").glob("*.parquet")
    assert pq.read_schema(path).names == TABLES["transfer_runs"].names
    raw = pd.read_parquet(folder / "transfer_epochs")
    assert len(raw) == 24 and sorted(raw["key"].unique()) == [f"transfer-{i:04d}" for i in range(12)]
    assert verify(folder).ok
    # idempotent: nothing left to merge, nothing changes
    assert compact(folder) == [] and _files(folder) == files


def test_polars_reads_compacted_files(tmp_path):
    import polars      # a test dependency: the files must read without ktbench
    folder = _folder(tmp_path, 3)
    compact(folder)
    assert polars.read_parquet(str(folder / "transfer_runs" / "*.parquet")).height == 3


def test_bounded_files_and_small_ones_merged_again_in_order(tmp_path, monkeypatch):
    folder = _folder(tmp_path, 10)
    # 2 epochs rows a part: files close at 6 rows (whole batches of 3 parts)
    monkeypatch.setattr(compact_module, "BATCH_FILES", 3)
    reports = compact(folder, tables=["transfer_epochs"], max_rows=6)
    assert reports[0].files == 4 and reports[0].rows == 20
    names = _files(folder)["transfer_epochs"]
    assert [n.split("-")[1] for n in names] == ["0000000001", "0000000002", "0000000003",
                                                "0000000004"]
    assert [pq.read_metadata(folder / "transfer_epochs" / n).num_rows for n in names] == [6, 6, 6, 2]
    # a later unit: the small last file (2 rows < 6 / 2) is merged again with it, the full ones stay
    _unit(folder, 10)
    (report,) = compact(folder, tables=["transfer_epochs"], max_rows=6)
    assert (report.parts, report.merged, report.files, report.rows) == (1, 1, 1, 4)
    assert len(_files(folder)["transfer_epochs"]) == 4
    assert len(read_table(folder, "transfer_epochs")) == 22


def test_a_part_written_after_compaction_wins_and_keeps_winning(tmp_path):
    folder = _folder(tmp_path, 4)
    _unit(folder, 4, status="failed", acc=1.0)
    compact(folder)
    _unit(folder, 4, status="ok", acc=99.0)            # --retry-failed: the same key again
    runs = read_table(folder, "transfer_runs").set_index("key")
    assert runs.loc["transfer-0004", "status"] == "ok" and len(runs) == 5
    compact(folder)                                   # merged again: the order keeps it winning
    runs = read_table(folder, "transfer_runs").set_index("key")
    assert runs.loc["transfer-0004", "status"] == "ok" and len(runs) == 5
    assert runs.loc["transfer-0004", "student_acc"] == 99.0


def _hook(monkeypatch, after_reads: int, action):
    """Run `action()` once, right after the compaction's `after_reads`-th batch read."""
    read, calls = compact_module._read, []

    def hooked(*args):
        data = read(*args)
        calls.append(1)
        if len(calls) == after_reads:
            action()
        return data
    monkeypatch.setattr(compact_module, "_read", hooked)


def test_writers_beside_a_compaction_lose_nothing(tmp_path, monkeypatch):
    folder = _folder(tmp_path, 6)

    def writers():
        _unit(folder, 2, acc=222.0)      # a part rewritten after it was read: a newer result
        _unit(folder, 6, acc=6.0)        # a new unit's parts, appearing during the compaction
    _hook(monkeypatch, 1, writers)
    (epochs, runs) = compact(folder)
    assert (runs.parts, runs.kept) == (6, 1)
    names = _files(folder)["transfer_runs"]
    assert "transfer-0002.parquet" in names and "transfer-0006.parquet" in names
    got = read_table(folder, "transfer_runs").set_index("key")["student_acc"]
    assert got.to_dict() == {**{f"transfer-{i:04d}": float(i) for i in (0, 1, 3, 4, 5, 6)},
                             "transfer-0002": 222.0}


def test_a_corrupt_part_or_a_foreign_folder_changes_nothing(tmp_path, capsys):
    folder = _folder(tmp_path, 3)
    part = folder / "transfer_runs" / "transfer-0001.parquet"
    part.write_bytes(part.read_bytes()[:-10])          # truncated
    files = _files(folder)
    with pytest.raises(CompactError, match="transfer-0001.parquet: no PAR1 footer"):
        compact(folder)
    assert _files(folder) == files
    # magic bytes intact, contents not: found when read, still before any change
    part.write_bytes(b"PAR1" + b"\0" * 64 + b"PAR1")
    assert main(["compact", "--results", str(folder)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ktbench: error: ") and "transfer-0001" in err[0]
    assert _files(folder) == files and not list(folder.rglob(".*.tmp"))
    for bad in (tmp_path / "missing", tmp_path / "empty"):
        (tmp_path / "empty").mkdir(exist_ok=True)
        assert main(["compact", "--results", str(bad)]) == 2
        assert "not a ktbench results folder" in capsys.readouterr().err
    assert not (tmp_path / "missing").exists() and list((tmp_path / "empty").iterdir()) == []


def test_parts_of_an_older_schema_are_merged_with_nulls(tmp_path):
    folder = _folder(tmp_path, 3)
    part = folder / "transfer_runs" / "transfer-0000.parquet"
    pd.read_parquet(part).drop(columns=["disk_bytes", *TRANSFER_RATES]).to_parquet(part)
    older = folder / "transfer_runs" / "transfer-0001.parquet"
    pd.read_parquet(older).drop(columns=["batch_size", "oom_retries", "disk_bytes",
                                         *TRANSFER_RATES]).to_parquet(older)
    epochs = folder / "transfer_epochs" / "transfer-0001.parquet"
    pd.read_parquet(epochs).drop(columns=TRANSFER_RATES).to_parquet(epochs)
    before = _views(folder)
    compact(folder)
    _assert_views(folder, before)
    runs = before["runs"].set_index("key")
    assert pd.isna(runs.loc["transfer-0001", "batch_size"]) and runs.loc["transfer-0002", "batch_size"] == 8
    assert verify(folder).ok


def test_one_compaction_at_a_time(tmp_path):
    folder = _folder(tmp_path, 2)
    with compact_module._locked(folder, wait=True):
        with pytest.raises(Busy):
            compact(folder, wait=False)
    assert len(compact(folder, wait=False)) == 2


def test_the_command_prints_one_line_per_table(tmp_path, capsys):
    folder = _folder(tmp_path, 3)
    assert main(["compact", "--results", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "transfer_runs: 3 part(s) -> 1 compacted file(s), 3 rows" in out
    assert "transfer_epochs: 3 part(s) -> 1 compacted file(s), 6 rows" in out
    assert main(["compact", "--results", str(folder)]) == 0
    assert "nothing to compact" in capsys.readouterr().out


# --- kill -9 ------------------------------------------------------------------------------------

_CHILD = """
import os, signal, sys
sys.path.insert(0, {root!r})
from pathlib import Path
import results.compact as c
calls = []

def die_after(name, n):
    real = getattr(c, name) if hasattr(c, name) else getattr(os, name)
    def hook(*args, **kwargs):
        calls.append(1)
        if len(calls) == n:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(*args, **kwargs)
    return hook

{hook}
c.compact(Path({folder!r}))
"""


@pytest.mark.parametrize("hook", [
    "c._read = die_after('_read', 2)",                   # while writing the compacted files
    "c._remove = die_after('_remove', 1)",               # compacted files in place, no part gone
    "c._remove = die_after('_remove', 7)",               # halfway through removing parts
    "c.os.unlink = die_after('unlink', 3)",              # a part renamed to hidden, not deleted
    "c._put_back = die_after('_put_back', 1)",           # a rewritten part hidden, not put back
])
def test_kill_9_anywhere_loses_nothing_and_counts_nothing_twice(tmp_path, hook):
    folder = _folder(tmp_path, 6)
    expected = _views(folder)
    if "_put_back" in hook:     # a part rewritten between its read and its removal
        _unit(folder, 3, acc=333.0)
        expected = _views(folder)
        hook = hook + "\n" + _REWRITE_DURING_READ.format(part=str(
            folder / "transfer_runs" / "transfer-0003.parquet"))
    script = _CHILD.format(root=str(ROOT), folder=str(folder), hook=hook)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    if "_put_back" not in hook:      # (the rewritten part is hidden until the next compaction)
        _assert_views(folder, expected)
    compact(folder)                  # the next compaction finishes the job
    _assert_views(folder, expected)
    hidden = [p for t in ("transfer_runs", "transfer_epochs") for p in (folder / t).glob(".*")]
    assert not hidden
    assert verify(folder).ok
    assert all(len(names) <= 2 for names in _files(folder).values())


# the part is replaced by an identical-content copy (a new file) after the compaction read it
# (only after the read of its own batch: the other table's batch is read on another thread)
_REWRITE_DURING_READ = """
read = c._read
def read_then_rewrite(con, table, paths):
    data = read(con, table, paths)
    if {part!r} in paths:
        import shutil
        shutil.copyfile({part!r}, {part!r} + ".new")
        os.replace({part!r} + ".new", {part!r})
    return data
c._read = read_then_rewrite
"""


def test_query_lists_again_when_a_compaction_removed_a_file(tmp_path, monkeypatch):
    folder = _folder(tmp_path, 3)
    from results import store
    connect, calls = store.connect, []

    def connect_then_compact(*args, **kwargs):
        con = connect(*args, **kwargs)
        if not calls:
            calls.append(1)
            compact(folder)       # the files this connection listed are gone
        return con
    monkeypatch.setattr(store, "connect", connect_then_compact)
    assert query(folder, "SELECT count(*) AS n FROM transfer_runs")["n"][0] == 3
    assert os.listdir(folder / "transfer_runs")[0].startswith("compacted-")


# --- one row per key for every reader -----------------------------------------------------------

def _predictions(model: str, pred: int, samples: int = 40) -> pd.DataFrame:
    return pd.DataFrame({"model": model, "dataset": "d", "sample": range(samples),
                         "label": 0, "pred": pred, "p_true": 0.5, "p_max": 0.5}).astype(
        {"sample": "int32", "label": "int32", "pred": "int32", "p_true": "float32",
         "p_max": "float32"})


def _raw_readers(folder: Path, table: str) -> dict[str, pd.DataFrame]:
    """The table as plain Parquet readers see it (no ktbench, no views)."""
    import pyarrow.dataset
    files = sorted(str(p) for p in (folder / table).glob("*.parquet"))
    raw = {"pandas": pd.read_parquet(folder / table),
           "pyarrow": pyarrow.dataset.dataset(files, format="parquet").to_table().to_pandas()}
    with contextlib.suppress(ImportError):
        import polars
        raw["polars"] = polars.read_parquet(files).to_pandas()
    return raw


def _assert_raw_equals_query(folder: Path, expected_preds: dict[str, int], samples: int = 40):
    """Every raw reader holds exactly one row per (model, dataset, sample), with the newest
    prediction, and so does `ktbench query`."""
    expected = pd.DataFrame([(m, s, p) for m, p in sorted(expected_preds.items())
                             for s in range(samples)], columns=["model", "sample", "pred"])
    viewed = query(folder, "SELECT model, sample, pred FROM predictions ORDER BY model, sample")
    pd.testing.assert_frame_equal(viewed.astype({"sample": "int64", "pred": "int64"}), expected)
    for reader, raw in _raw_readers(folder, "predictions").items():
        got = raw[["model", "sample", "pred"]].sort_values(["model", "sample"]).reset_index(
            drop=True).astype({"sample": "int64", "pred": "int64"})
        pd.testing.assert_frame_equal(got, expected, obj=reader)


def test_a_reimport_compacted_twice_leaves_one_row_per_key_for_every_reader(tmp_path, capsys):
    folder = tmp_path / "results"
    for i, model in enumerate(("a", "b", "c")):
        write_part(folder, "predictions", _predictions(model, pred=i), f"import-{model}-1")
    compact(folder)
    # model b imported again from another file: another part, newer predictions
    write_part(folder, "predictions", _predictions("b", pred=7), "import-b-2")
    assert len(pd.read_parquet(folder / "predictions")) == 160     # before compacting: 4 copies
    assert main(["compact", "--results", str(folder)]) == 0
    assert "40 superseded row(s) dropped" in capsys.readouterr().out
    _assert_raw_equals_query(folder, {"a": 0, "b": 7, "c": 2})
    # and a third import, compacted again: still 120 rows, the newest predictions
    write_part(folder, "predictions", _predictions("b", pred=9), "import-b-3")
    compact(folder)
    _assert_raw_equals_query(folder, {"a": 0, "b": 9, "c": 2})
    assert compact(folder) == []
    assert not (folder / ".compact.spill").exists() and verify(folder).ok


def test_a_full_compacted_file_loses_its_superseded_rows(tmp_path):
    folder = tmp_path / "results"
    for model in ("a", "b", "c"):
        write_part(folder, "predictions", _predictions(model, pred=1), f"p-{model}")
    # 40-row files are full at max_rows 40: never merged again, rewritten without b's rows
    full_rows = 40
    compact(folder, max_rows=full_rows)
    full = sorted((folder / "predictions").glob("*.parquet"))
    assert len(full) == 1      # one batch of three parts: one file of 120 rows
    write_part(folder, "predictions", _predictions("b", pred=5), "p-b-again")
    write_part(folder, "predictions", _predictions("a", pred=6).iloc[:10], "p-a-partly")
    (report,) = compact(folder, max_rows=full_rows)
    assert report.superseded == 50 and report.parts == 2
    preds = _raw_readers(folder, "predictions")["pandas"]
    assert len(preds) == 120
    got = preds.groupby("model")["pred"].apply(sorted).to_dict()
    assert got == {"a": [1] * 30 + [6] * 10, "b": [5] * 40, "c": [1] * 40}
    # a key repeated inside one part: its last row wins, as in the views
    twice = pd.concat([_predictions("c", pred=3).iloc[:2], _predictions("c", pred=4).iloc[:2]])
    write_part(folder, "predictions", twice, "p-c-twice")
    compact(folder, max_rows=full_rows)
    preds = _raw_readers(folder, "predictions")["pandas"].set_index(["model", "sample"])
    assert len(preds) == 120 and preds.loc[("c", 0), "pred"] == 4 and preds.loc[("c", 1), "pred"] == 4
    assert preds.loc[("c", 2), "pred"] == 1


# the first compacted file rewritten without its superseded rows, the others not yet
_KILL_AFTER_FIRST_DROP = """
drop = c.superseded.drop
def drop_then_die(*args):
    drop(*args)
    os.kill(os.getpid(), signal.SIGKILL)
c.superseded.drop = drop_then_die
"""


def test_kill_9_while_dropping_superseded_rows_loses_nothing(tmp_path):
    folder = _folder(tmp_path, 6)
    compact(folder)
    for i in (1, 4):
        _unit(folder, i, acc=100.0 + i)                 # reruns: newer rows of two keys
    expected = _views(folder)
    script = _CHILD.format(root=str(ROOT), folder=str(folder),
                           hook=_KILL_AFTER_FIRST_DROP)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    _assert_views(folder, expected)
    compact(folder)
    _assert_views(folder, expected)
    for table, keys in (("transfer_runs", ["key"]), ("transfer_epochs", ["key", "epoch"])):
        raw = pd.read_parquet(folder / table)
        assert len(raw) == len(raw.drop_duplicates(keys)) == (6 if table == "transfer_runs" else 12)
    assert not [p for t in ("transfer_runs", "transfer_epochs") for p in (folder / t).glob(".*")]


def test_a_failed_search_for_superseded_rows_removes_no_part(tmp_path, monkeypatch, capsys):
    import duckdb
    from results import superseded
    folder = _folder(tmp_path, 3)
    compact(folder)
    _unit(folder, 1, acc=111.0)
    expected = _views(folder)

    def out_of_memory(*args):
        raise duckdb.OutOfMemoryException("Out of Memory Error: failed to allocate")
    monkeypatch.setattr(superseded, "_find", out_of_memory)
    assert main(["compact", "--results", str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "superseded rows not looked for (Out of Memory" in err, err
    # the rerun's parts are still there, and the views still prefer them
    assert "transfer-0001.parquet" in _files(folder)["transfer_runs"]
    _assert_views(folder, expected)
    monkeypatch.undo()
    compact(folder)
    _assert_views(folder, expected)
    assert len(pd.read_parquet(folder / "transfer_runs")) == 3


def _flips(teachers: str, value: int) -> pd.DataFrame:
    """class_flips rows of pairs (teacher, 's') on 'd', two classes each, `pos` = value."""
    return pd.DataFrame({"teacher": [t for t in teachers for _ in range(2)], "student": "s",
                         "dataset": "d", "class": [0, 1] * len(teachers), "pos": value,
                         "neg": 0})


def test_a_unit_drops_the_rows_it_wrote_again_from_other_parts_only(tmp_path):
    from results.superseded import drop_in_parts
    folder = tmp_path / "results"
    write_part(folder, "class_flips", _flips("ab", 1), "z-old.0000")     # sorts after the new
    write_part(folder, "class_flips", _flips("c", 1), "z-old.0001")
    write_part(folder, "class_flips", _flips("e", 1), "z-elsewhere.0000")
    compact(folder, ["class_flips"])
    write_part(folder, "class_flips", _flips("a", 1), "y-later.0000")    # a part again
    write_part(folder, "class_flips", _flips("ac", 2), "new.0000")
    keys = {"teacher": ["a", "c"], "student": ["s", "s"], "dataset": ["d", "d"]}
    # a's rows in the part y-later (2), none in its own; compacted files keep theirs
    assert drop_in_parts(folder, "class_flips", keys, "new") == 2
    assert sorted(p.name for p in (folder / "class_flips").glob("[!c]*")) == ["new.0000.parquet"]
    write_part(folder, "class_flips", _flips("abc", 1), "z-old.0000")
    assert drop_in_parts(folder, "class_flips", keys, "new") == 4
    assert pq.read_table(folder / "class_flips" / "z-old.0000.parquet")["teacher"].to_pylist() \
        == ["b", "b"]
    view = query(folder, "SELECT teacher, sum(pos) AS pos FROM class_flips GROUP BY teacher "
                         "ORDER BY teacher")
    assert view.to_dict("list") == {"teacher": ["a", "b", "c", "e"], "pos": [4, 2, 4, 2]}
