"""Bad input the CLI tests (tests/test_cli.py) do not cover yet: one line, exit 2, nothing written.

Library-level refusals live beside their code (a weight file that is not a state dict in
tests/test_weights.py, `ktbench query` writes in tests/test_analysis.py); a missing image folder,
a class-count mismatch and missing weights are refused by `ktbench launch` here.
"""
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from benchmark.cli.main import main


def _one_line(capsys, argv, message, tmp_path):
    code = main([a.replace("{tmp}", str(tmp_path)) for a in argv])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("ktbench: error: ") and message in err, err
    # nothing written: at most the empty results folder the writability probe made
    assert not (tmp_path / "out.parquet").exists()
    assert not [f for f in (tmp_path / "r").rglob("*") if f.is_file()]


@pytest.mark.parametrize("argv, message", [
    (["--multi", "nope:resnet_tiny,resmlp_tiny"], "nope"),           # unknown model
    (["--all", "--epochs", "0"], "epochs and batch_size must be >= 1"),
    (["--all", "--lr", "-0.1"], "lr > 0"),
    (["--all", "--params", '{"train_samples": -5}'], "train_samples >= 0"),
    (["--all", "--params", '{"epochs": 1.5}'], "parameter 'epochs' must be int"),
    (["--all", "--params", "{not json"], "--params is not valid JSON"),
    (["--all", "--methods", ","], "--methods lists no method"),
    (["--all", "--seeds", "x"], "x"),
])
def test_bad_plan_arguments(capsys, tmp_path, argv, message):
    _one_line(capsys, ["plan", "--zoo", "tiny", "--out", "{tmp}/out.parquet", *argv], message,
              tmp_path)


def _launch(plan_file):
    return ["launch", str(plan_file), "--results", "{tmp}/r", "--executor", "debug", "--quiet"]


def test_empty_plan(capsys, tmp_path):
    main(["plan", "--zoo", "tiny", "--pairs", "1", "--out", str(tmp_path / "p.parquet")])
    capsys.readouterr()
    table = pq.read_table(tmp_path / "p.parquet")
    pq.write_table(table.slice(0, 0), tmp_path / "empty.parquet")
    _one_line(capsys, _launch(tmp_path / "empty.parquet"), "is empty", tmp_path)


def test_plan_from_an_older_schema(capsys, tmp_path):
    main(["plan", "--zoo", "tiny", "--pairs", "1", "--out", str(tmp_path / "p.parquet")])
    capsys.readouterr()
    table = pq.read_table(tmp_path / "p.parquet")
    pq.write_table(table.replace_schema_metadata({b"ktbench_plan_version": b"0"}),
                   tmp_path / "old.parquet")
    _one_line(capsys, _launch(tmp_path / "old.parquet"), "schema version 0", tmp_path)


def test_plan_that_is_not_parquet(capsys, tmp_path):
    (tmp_path / "p.parquet").write_text("teacher,student\n")
    _one_line(capsys, _launch(tmp_path / "p.parquet"), "not a readable Parquet file", tmp_path)


def test_plan_of_two_zoos(capsys, tmp_path):
    main(["plan", "--zoo", "tiny", "--pairs", "1", "--out", str(tmp_path / "p.parquet")])
    capsys.readouterr()
    table = pq.read_table(tmp_path / "p.parquet")
    meta = table.schema.metadata
    zoo = pa.array(["tiny"] * (table.num_rows - 1) + ["micro"]) if table.num_rows > 1 else None
    if zoo is None:   # one unit: duplicate it under another zoo
        table = pa.concat_tables([table, table])
        zoo = pa.array(["tiny", "micro"])
    table = table.set_column(table.schema.get_field_index("zoo"), "zoo", zoo)
    pq.write_table(table.replace_schema_metadata(meta), tmp_path / "two.parquet")
    _one_line(capsys, _launch(tmp_path / "two.parquet"), "must use one zoo", tmp_path)


def test_verify_of_an_unknown_results_folder_is_clean(capsys, tmp_path):
    assert main(["verify", "--results", str(tmp_path / "none")]) == 0
    assert "checked 0 parts and 0 checkpoints: all good" in capsys.readouterr().out


@pytest.mark.parametrize("case, message", [
    ("missing_folder", "does not exist"),
    ("wrong_head", "has 3 classes but these models' heads do not match: wide (5)"),
    ("missing_weights", "'resnet_w' not found; looked at"),
])
def test_launch_refuses_a_real_zoo_it_cannot_run(capsys, tmp_path, case, message):
    """Checked before any job: the dataset's folder, each head against its classes, weights."""
    from pairs.catalog import ModelEntry, Zoo, register_zoo
    from pairs.plan import make_plan, write_plan
    from benchmark.methods import resolve_params
    folder = tmp_path / "imagenet"
    for split in ("train", "val"):
        for c in ("n01", "n02", "n03"):
            (folder / split / c).mkdir(parents=True)
    if case == "missing_folder":
        folder = tmp_path / "nowhere"
    entry = ModelEntry("resnet_w", "test_resnet", "cnn", 3, input_size=(3, 16, 16),
                       weights=str(tmp_path / "weights"))
    wide = ModelEntry("wide", "test_resnet", "cnn", 5 if case == "wrong_head" else 3,
                      input_size=(3, 16, 16), weights=str(tmp_path / "weights"))
    name = f"refused_{case}"
    zoo = register_zoo(name)(lambda: Zoo(name, f"imagefolder:{folder}@size=16", (entry, wide)))()
    plan = make_plan(zoo, [("resnet_w", "wide")], {"kl": resolve_params("kl")}, [0])
    write_plan(plan, tmp_path / "plan.parquet")
    _one_line(capsys, _launch(tmp_path / "plan.parquet"), message, tmp_path)
