"""The results store: atomic parts, one row per key in the views, empty tables that still query."""
import pandas as pd
import pytest

from results import connect, predictions_matrix, read_table, table_dir, write_part
from results.errors import InputError


def _class_flips(n_classes, pos=1):
    return pd.DataFrame({"teacher": "t", "student": "s", "dataset": "d",
                         "class": range(n_classes), "pos": pos, "neg": 0})


def test_fresh_folder_has_empty_views_with_columns(tmp_path):
    con = connect(tmp_path)
    df = con.execute("SELECT * FROM transfer_runs").df()
    assert df.empty and "dist_delta" in df.columns


def test_part_is_renamed_into_place_without_leftovers(tmp_path):
    path = write_part(tmp_path, "class_flips", _class_flips(3), "unit-1")
    assert path.name == "unit-1.parquet"
    assert sorted(p.name for p in table_dir(tmp_path, "class_flips").iterdir()) == ["unit-1.parquet"]
    assert sorted(read_table(tmp_path, "class_flips")["class"]) == [0, 1, 2]


def test_failed_write_leaves_nothing(tmp_path):
    bad = _class_flips(2).assign(pos=["x", "y"])   # not an int column
    with pytest.raises(Exception):
        write_part(tmp_path, "class_flips", bad, "unit-1")
    folder = table_dir(tmp_path, "class_flips")
    assert not folder.exists() or list(folder.iterdir()) == []


def test_wrong_columns_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="columns missing"):
        write_part(tmp_path, "class_flips", _class_flips(2).drop(columns="neg"), "u")


def test_rewritten_and_duplicated_keys_count_once(tmp_path):
    write_part(tmp_path, "class_flips", _class_flips(3, pos=1), "unit-1")
    write_part(tmp_path, "class_flips", _class_flips(3, pos=2), "unit-1")   # same unit again
    write_part(tmp_path, "class_flips", _class_flips(3, pos=2), "unit-2")   # a racing twin
    df = read_table(tmp_path, "class_flips")
    assert len(df) == 3 and set(df["pos"]) == {2}


def test_predictions_matrix_orders_rows_by_request(tmp_path):
    for model, preds in (("a", [0, 1, 1]), ("b", [1, 1, 0])):
        write_part(tmp_path, "predictions", pd.DataFrame({
            "model": model, "dataset": "d", "sample": [0, 1, 2], "label": [0, 1, 0],
            "pred": preds, "p_true": 0.5, "p_max": 0.9}), f"predict-{model}")
    labels, preds, p_max = predictions_matrix(tmp_path, "d", ["b", "a"])
    assert labels.tolist() == [0, 1, 0]
    assert preds.tolist() == [[1, 1, 0], [0, 1, 1]]
    with pytest.raises(InputError, match="c"):
        predictions_matrix(tmp_path, "d", ["a", "c"])


def _run_row(key: str, batch_size: int) -> pd.DataFrame:
    from results.schema import TABLES
    row = dict.fromkeys(TABLES["transfer_runs"].names)
    row.update(key=key, status="ok", seed=0, epochs=1, batch_size=batch_size, oom_retries=0,
               disk_bytes=0)
    return pd.DataFrame([row])


@pytest.mark.parametrize("older_first", [True, False])
def test_parts_of_several_schemas_read_by_name(tmp_path, older_first):
    """Reads take each table's parts as one schema when they can (cheap at 10^5 parts) and by
    name when a part lacks a column, whichever part comes first."""
    from results import query
    older, newer = ("a", "b") if older_first else ("b", "a")
    write_part(tmp_path, "transfer_runs", _run_row(older, 32), older)
    write_part(tmp_path, "transfer_runs", _run_row(newer, 64), newer)
    part = table_dir(tmp_path, "transfer_runs") / f"{older}.parquet"
    pd.read_parquet(part).drop(columns=["batch_size", "oom_retries", "disk_bytes"]).to_parquet(part)
    got = query(tmp_path, "SELECT key, batch_size FROM transfer_runs ORDER BY key")
    assert dict(zip(got["key"], got["batch_size"].astype("Int64"))) == {older: pd.NA, newer: 64}
    assert query(tmp_path, "SELECT count(*) AS n FROM transfer_runs")["n"][0] == 2


def test_added_columns_are_the_last_ones():
    from results.schema import ADDED_COLUMNS, TABLES, valid_columns
    for table, added in ADDED_COLUMNS.items():
        assert TABLES[table].names[-len(added):] == list(added)
    runs = TABLES["transfer_runs"].names
    assert valid_columns("transfer_runs")[0] == runs[:runs.index("batch_size")]
    assert valid_columns("transfer_epochs")[0][-1] == "knowledge_loss_step"
    assert valid_columns("models")[0][-1] == "seconds"     # parts from before crop_pct


def test_view_types_are_those_duckdb_gives_the_schema():
    """The views' column types, named by hand (DuckDB's Arrow scan would import pandas), are
    the types DuckDB gives the schema's Arrow types, and those of every named type."""
    import duckdb
    import pyarrow as pa
    from results.schema import TABLES
    from results.views import SQL_TYPES, sql_type
    named = pa.schema([pa.field(f"c{i}", kind) for i, kind in enumerate(SQL_TYPES)])
    for name, schema in {**TABLES, "named": named}.items():
        rel = duckdb.connect().from_arrow(schema.empty_table())
        assert [sql_type(field.type) for field in schema] == [str(t) for t in rel.types], name
    with pytest.raises(TypeError, match="SQL_TYPES"):
        sql_type(pa.uint8())


def test_a_table_of_many_parts_is_read_once_into_memory(tmp_path, monkeypatch):
    from results import store
    from results.compact import compact
    monkeypatch.setattr(store, "COPY_MIN_PARTS", 2)
    write_part(tmp_path, "class_flips", _class_flips(3, pos=1), "unit-1")
    write_part(tmp_path, "class_flips", _class_flips(3, pos=2), "unit-2")   # same keys, later
    write_part(tmp_path, "pair_stats", pd.DataFrame(
        {"teacher": ["t"], "student": ["s"], "dataset": ["d"], "compat": [""]}).reindex(
        columns=store.TABLES["pair_stats"].names), "stats-1")
    con = connect(tmp_path, ["class_flips", "pair_stats"])
    assert store.copy_many_parts(con, ["class_flips", "pair_stats"]) == []   # 2 parts, 1 part
    write_part(tmp_path, "class_flips", _class_flips(1, pos=3), "unit-3")    # 3 parts: copied
    con = connect(tmp_path, ["class_flips", "pair_stats"])
    assert store.copy_many_parts(con, ["class_flips", "pair_stats"]) == ["class_flips"]
    for part in table_dir(tmp_path, "class_flips").iterdir():
        part.unlink()                # the copy is read from now on, not the files
    rows = con.execute('SELECT "class", pos FROM class_flips ORDER BY "class"').fetchall()
    assert rows == [(0, 3), (1, 2), (2, 2)]      # one row per key, the last part's
    for n in (4, 5):
        write_part(tmp_path, "class_flips", _class_flips(n, pos=n), f"unit-{n}")
    compact(tmp_path)
    con = connect(tmp_path, ["class_flips"])
    assert store.copy_many_parts(con, ["class_flips"]) == []   # compacted files are not parts


def test_a_models_part_from_before_its_decode_columns_is_valid():
    """Results folders written before each model's decode was recorded (`crop_pct`,
    `interpolation`) verify and compact as they are."""
    from results.schema import TABLES
    from results.verify import columns_problem
    names = TABLES["models"].names
    assert columns_problem(names[:names.index("crop_pct")], "models") is None
    assert columns_problem(names[:names.index("interpolation")], "models") is None
    assert columns_problem(names[:-3], "models") is not None
