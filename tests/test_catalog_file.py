"""Catalog files (`--zoo my_zoo.csv`): a zoo declared as a table, resolved by every process
from the file itself, keyed by its rows' content; plugins for zoos that need code."""
import os
import shutil
import textwrap
from io import StringIO

import pandas as pd
import pyarrow.parquet as pq
import pytest

from benchmark.cli.main import main
from benchmark.launch.pending import pending_units
from benchmark.launch.preflight import check_in_fresh_process
from benchmark.models.microzoo import weights_path
from pairs import get_zoo
from pairs.catalog import PLUGINS_ENV
from pairs.plan import Plan, predict_key, read_plan
from results import InputError, query


def _rows(zoo, cache) -> list[dict]:
    """The zoo's models as catalog rows, each pointing at its trained weight file."""
    return [{"name": m.name, "arch": m.arch, "weights": str(weights_path(m, cache)),
             "num_classes": m.num_classes, "img_size": m.input_size[-1], "in_chans": m.in_chans,
             "mean": " ".join(map(str, m.mean)), "std": " ".join(map(str, m.std)),
             "family": m.family, "dataset": zoo.dataset} for m in zoo.models]


def _write(rows, path):
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _plan(catalog, folder, name="plan.parquet", *extra) -> pd.DataFrame:
    assert main(["plan", "--zoo", str(catalog), "--all", "--methods", "kl", "--epochs", "1",
                 "--params", '{"train_samples": 128}', "--out", str(folder / name),
                 "--results", str(folder / "results"), *extra]) == 0
    return read_plan(folder / name)


def test_a_catalog_csv_runs_through_local_jobs(tiny_zoo, cache, tmp_path, capsys):
    catalog = _write(_rows(tiny_zoo, cache)[:2], tmp_path / "my zoo.csv")
    plan = _plan(catalog, tmp_path)
    zoo = plan["zoo"][0]
    assert zoo.startswith(str(catalog.resolve()) + "#") and len(plan) == 2
    # local jobs are fresh processes: they read the file themselves
    results = tmp_path / "results"
    assert main(["launch", str(tmp_path / "plan.parquet"), "--results", str(results),
                 "--cache", str(cache), "--executor", "local", "--tasks", "1", "--quiet"]) == 0
    models = query(results, "SELECT model, zoo, source, num_classes FROM models ORDER BY model")
    names = sorted(m.name for m in tiny_zoo.models[:2])
    assert models["model"].tolist() == names and set(models["zoo"]) == {zoo}
    assert models["source"].tolist() == [str(weights_path(tiny_zoo.get(n), cache))
                                         for n in names]
    n_eval = query(results, "SELECT count(*) AS n FROM predictions")["n"][0]
    assert n_eval > 0 and n_eval % 2 == 0
    assert query(results, "SELECT count(*) AS n FROM pair_stats")["n"][0] == 2
    assert set(query(results, "SELECT status FROM transfer_runs")["status"]) == {"ok"}


def test_bad_rows_one_line_each(tiny_zoo, cache, tmp_path, capsys):
    rows = _rows(tiny_zoo, cache)
    rows[1]["num_classes"] = "ten"
    rows[2]["weights"] = "missing.safetensors"
    catalog = _write(rows, tmp_path / "zoo.csv")
    assert main(["zoo", "show", str(catalog)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2
    assert err[0].endswith(f"row 2 ({rows[1]['name']}): num_classes: 'ten' is not a positive "
                           "integer")
    assert f"row 3 ({rows[2]['name']}): weights: no file" in err[1]
    # any other command refuses it in one line too
    assert main(["plan", "--zoo", str(catalog), "--all", "--dry-run"]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert main(["zoo", "show", str(_write(rows[:1], tmp_path / "good.csv"))]) == 0


@pytest.mark.parametrize("column, value", [("weights", None), ("crop_pct", 0.95),
                                           ("interpolation", "bicubic"), ("num_classes", 11),
                                           ("arch", "test_efficientnet"), ("mean", "0.5")])
def test_editing_a_row_moves_its_keys_only(tiny_zoo, cache, tmp_path, column, value):
    rows = _rows(tiny_zoo, cache)
    catalog = _write(rows, tmp_path / "zoo.csv")
    before = Plan(_plan(catalog, tmp_path, "before.parquet"))
    edited, old_models = rows[0]["name"], before.zoo.models
    if column == "weights":        # the same weights under another name: another file
        value = str(shutil.copy(rows[0]["weights"], tmp_path / "copy.safetensors"))
    rows[0][column] = value
    _write(rows, catalog)
    with pytest.raises(InputError, match="changed since this plan was made"):
        Plan(before.rows).zoo
    after = Plan(_plan(catalog, tmp_path, "after.parquet"))
    # read before the edit: the old plan's zoo as it was
    moved = {m.name for m, n in zip(old_models, after.zoo.models)
             if predict_key(m, before.dataset) != predict_key(n, after.dataset)}
    assert moved == {edited}
    keys = before.rows.set_index(["teacher", "student"])["key"]
    new = after.rows.set_index(["teacher", "student"])["key"]
    changed = {pair for pair in keys.index if keys[pair] != new[pair]}
    assert changed == {pair for pair in keys.index if edited in pair}


def test_a_plugin_registers_a_zoo_for_this_process_and_its_jobs(tiny_zoo, tmp_path,
                                                                monkeypatch, capsys):
    (tmp_path / "my_plugin.py").write_text(textwrap.dedent("""
        from pairs import Zoo, get_zoo, register_zoo

        @register_zoo("from_plugin")
        def zoo():
            return Zoo("from_plugin", "digits16", get_zoo("tiny").models[:2])
        """))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        p for p in (str(tmp_path), os.environ.get("PYTHONPATH")) if p))
    monkeypatch.setenv(PLUGINS_ENV, "")       # restored after the test: --plugin adds to it
    with pytest.raises(InputError, match="unknown zoo 'from_plugin'"):
        get_zoo("from_plugin")
    assert main(["zoo", "show", "--zoo", "from_plugin", "--plugin", "my_plugin"]) == 0
    assert tiny_zoo.models[0].name in capsys.readouterr().out
    plan = _plan("from_plugin", tmp_path)
    check_in_fresh_process(Plan(plan))          # a job process imports it too: no error
    monkeypatch.setenv(PLUGINS_ENV, "")          # a job started without the plugin
    with pytest.raises(InputError, match="a job process cannot resolve zoo 'from_plugin'"):
        check_in_fresh_process(Plan(plan))
    assert main(["zoo", "show", "--plugin", "no_such_plugin"]) == 2
    assert "plugin 'no_such_plugin'" in capsys.readouterr().err


def test_parquet_and_yaml_catalogs_read_as_the_csv(tiny_zoo, cache, tmp_path):
    import yaml
    from pairs.zoos.catalog_file import read_catalog
    rows = _rows(tiny_zoo, cache)
    csv = read_catalog(_write(rows, tmp_path / "zoo.csv")).zoo
    pd.DataFrame(rows).assign(mean=[list(m.mean) for m in tiny_zoo.models]).to_parquet(
        tmp_path / "zoo.parquet")
    parquet = read_catalog(tmp_path / "zoo.parquet").zoo
    (tmp_path / "zoo.yaml").write_text(yaml.safe_dump({
        "dataset": tiny_zoo.dataset, "transfer": {"epochs": 1},
        "models": [{k: v for k, v in row.items() if k != "dataset"} for row in rows]}))
    as_yaml = read_catalog(tmp_path / "zoo.yaml").zoo
    # the same rows, the same models (the tiny zoo's own, less its training recipe)
    expected = [m.fingerprint() for m in tiny_zoo.models]
    for zoo in (csv, parquet, as_yaml):
        assert [m.fingerprint() for m in zoo.models] != expected     # weights file, no recipe
        assert [m.weights for m in zoo.models] == [r["weights"] for r in rows]
        assert [(m.arch, m.num_classes, m.input_size, m.mean, m.std) for m in zoo.models] == [
            (m.arch, 10, (1, 16, 16), m.mean, m.std) for m in tiny_zoo.models]
    assert [m.fingerprint() for m in parquet.models] == [m.fingerprint() for m in csv.models]
    assert [m.fingerprint() for m in as_yaml.models] == [m.fingerprint() for m in csv.models]
    assert as_yaml.transfer_defaults == {"epochs": 1} and csv.transfer_defaults == {}


def test_an_edited_row_predicts_again_and_its_new_predictions_win(tiny_zoo, cache, tmp_path):
    from benchmark.launch.pending import pending_units
    from benchmark.units.dispatch import run_unit
    rows = _rows(tiny_zoo, cache)
    catalog = _write(rows, tmp_path / "zoo.csv")
    results = tmp_path / "results"

    def predict(plan):
        for unit in pending_units(plan, results)["predict"]:
            run_unit(unit, results, cache)

    predict(_plan(catalog, tmp_path, "before.parquet"))
    old_key = query(results, "SELECT key FROM models WHERE model = ?", [rows[0]["name"]])["key"][0]
    rows[0]["weights"] = str(shutil.copy(rows[0]["weights"], tmp_path / "copy.safetensors"))
    _write(rows, catalog)
    plan = _plan(catalog, tmp_path, "after.parquet")
    assert [u.model for u in pending_units(plan, results)["predict"]] == [rows[0]["name"]]
    predict(plan)
    assert pending_units(plan, results)["predict"] == []
    # the new row is the one every reader sees, whatever the order of the two keys' part names;
    # the old parts are set aside, not lost
    models = query(results, "SELECT model, source FROM models ORDER BY model")
    assert dict(zip(models["model"], models["source"])) == {r["name"]: r["weights"] for r in rows}
    assert [p.name for p in (results / "quarantine" / "superseded" / "models").iterdir()] \
        == [f"{old_key}.parquet"]


def _hand_stats(results, teacher, student) -> tuple[float, float]:
    """acc_t and pos_flips (% of samples the teacher gets right and the student wrong) of a
    pair, counted from its models' predictions."""
    preds = query(results, "SELECT model, sample, pred = label AS right FROM predictions")
    right = preds.pivot(index="sample", columns="model", values="right")
    return (100 * right[teacher].mean(), 100 * (right[teacher] & ~right[student]).mean())


def test_editing_a_row_recomputes_the_statistics_of_its_pairs_only(tiny_zoo, cache, tmp_path,
                                                                   capsys):
    rows = _rows(tiny_zoo, cache)
    catalog, results = _write(rows, tmp_path / "zoo.csv"), tmp_path / "results"
    launch = ["--results", str(results), "--cache", str(cache), "--executor", "debug",
              "--quiet", "--no-compact"]     # the earlier statistics stay in parts
    _plan(catalog, tmp_path)
    assert main(["launch", str(tmp_path / "plan.parquet"), *launch]) == 0
    columns = "teacher, student, acc_t, pos_flips, teacher_key, student_key"
    before = query(results, f"SELECT {columns} FROM pair_stats").set_index(["teacher", "student"])
    parts = set((results / "pair_stats").glob("*.parquet"))
    edited = rows[0]["name"]
    rows[0]["mean"] = "0.5"                  # other inputs, other predictions
    _write(rows, catalog)
    after_plan = Plan(_plan(catalog, tmp_path))
    assert main(["launch", str(tmp_path / "plan.parquet"), *launch]) == 0
    new_parts = set((results / "pair_stats").glob("*.parquet")) - parts
    written = pd.concat([pd.read_parquet(p) for p in new_parts])
    involved = {pair for pair in before.index if edited in pair}
    assert len(involved) == 4 and set(zip(written["teacher"], written["student"])) == involved
    capsys.readouterr()
    assert main(["query", f"SELECT {columns} FROM pair_stats ORDER BY teacher, student",
                 "--format", "csv", "--results", str(results)]) == 0
    shown = pd.read_csv(StringIO(capsys.readouterr().out)).set_index(["teacher", "student"])
    assert sorted(shown.index) == sorted(before.index)          # one row per pair
    keys = {m.name: predict_key(m, after_plan.dataset) for m in after_plan.zoo.models}
    for (teacher, student), row in shown.iterrows():
        assert (row["teacher_key"], row["student_key"]) == (keys[teacher], keys[student])
        assert row[["acc_t", "pos_flips"]].tolist() == pytest.approx(
            _hand_stats(results, teacher, student))
        if (teacher, student) not in involved:        # untouched
            assert row.tolist() == before.loc[(teacher, student)].tolist()
    assert before.loc[(edited, rows[1]["name"]), "acc_t"] != shown.loc[
        (edited, rows[1]["name"]), "acc_t"]            # the edit changed the predictions
    # every reader counts one row per pair, before and after compaction
    for table, count in (("pair_stats", 6), ("class_flips", 6 * 10)):
        assert len(pd.read_parquet(results / table)) == count
    assert main(["compact", "--results", str(results)]) == 0
    for table, count in (("pair_stats", 6), ("class_flips", 6 * 10)):
        assert len(pd.read_parquet(results / table)) == count
        assert query(results, f"SELECT count(*) AS n FROM {table}")["n"][0] == count
    # statistics written before the keys were recorded: computed again, once
    old = pq.read_table(next((results / "pair_stats").glob("*.parquet")))
    pq.write_table(old.drop(["teacher_key", "student_key"]), results / "pair_stats" / "old.parquet")
    stats = pending_units(after_plan, results)["stats"]
    assert sorted(p for unit in stats for p in unit.pairs) == sorted(before.index)
