"""The features unit on the tiny zoo, and `ktbench predictors` end to end over its results."""
import numpy as np
import pytest
import torch

from benchmark import data
from benchmark.units.features import (SPLITS, arrays_dir, features_unit, load_split,
                                run_features)
from benchmark.models.loading import load_model
from benchmark.units.dispatch import run_unit
from benchmark.units.unit import FEATURES
from results import TABLES, read_table
from results.errors import InputError


@pytest.fixture(scope="module")
def feature_results(tmp_path_factory, tiny_zoo, cache):
    """A results folder with the tiny zoo's features: 300 eval and 200 transfer samples."""
    folder = tmp_path_factory.mktemp("features")
    keys = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)          # as a launcher task; two threads crawl on a busy machine
    try:
        for i, entry in enumerate(tiny_zoo.models):
            unit = features_unit(tiny_zoo, entry.name, eval_samples=300, transfer_samples=200)
            # the unit runs directly or through the dispatcher every stage goes through
            assert (run_features if i else run_unit)(unit, folder, cache) == "ok"
            keys.append(unit.key)
    finally:
        torch.set_num_threads(threads)
    return folder, keys


def test_features_unit_stores_features_logits_and_labels(feature_results, tiny_zoo, cache):
    folder, keys = feature_results
    table = read_table(folder, "features")
    assert list(table.columns) == TABLES["features"].names
    assert len(table) == len(tiny_zoo.models) * len(SPLITS)
    assert FEATURES.done_ids(folder, tiny_zoo.dataset) == set(keys)
    entry = tiny_zoo.models[0]
    dataset = data.load_dataset(tiny_zoo.dataset, cache)
    model = load_model(entry, cache)
    with torch.inference_mode():
        x = data.normalize(dataset.eval_x[:300], entry.mean, entry.std)
        logits = model(x).numpy()
        feats = model.forward_head(model.forward_features(x), pre_logits=True).numpy()
    stored = arrays_dir(folder, keys[0])
    f = np.load(stored / "eval_features.npy")
    z = np.load(stored / "eval_logits.npy")
    assert f.dtype == np.float16 and f.shape == feats.shape
    np.testing.assert_allclose(f, feats, rtol=2e-3, atol=2e-3)
    np.testing.assert_allclose(z, logits, rtol=2e-3, atol=2e-2)
    np.testing.assert_array_equal(np.load(stored / "eval_labels.npy"), dataset.eval_y[:300])
    np.testing.assert_array_equal(np.load(stored / "transfer_labels.npy"),
                                  dataset.train_y[:200])
    row = table[(table["key"] == keys[0]) & (table["split"] == "eval")].iloc[0]
    assert row["samples"] == 300 and row["dim"] == feats.shape[1]
    assert row["top1"] == pytest.approx(100 * (logits.argmax(1) == dataset.eval_y[:300].numpy())
                                        .mean())
    assert not list(stored.glob(".*"))                 # no temporary file left behind


def test_load_split_aligns_prefixes_and_names_what_is_missing(feature_results, tiny_zoo):
    folder, keys = feature_results
    names = [m.name for m in tiny_zoo.models]
    arrays = load_split(folder, names, tiny_zoo.dataset, "transfer", keys=keys)
    assert arrays.samples == 200 and arrays.models == names and arrays.keys == keys
    assert isinstance(arrays.features[0], np.memmap)
    assert load_split(folder, names, tiny_zoo.dataset, "eval", samples=100).samples == 100
    with pytest.raises(ValueError, match="fewer than 400"):
        load_split(folder, names, tiny_zoo.dataset, "eval", samples=400)
    with pytest.raises(InputError, match="nope"):
        load_split(folder, names + ["nope"], tiny_zoo.dataset)
    with pytest.raises(InputError):
        load_split(folder, names, tiny_zoo.dataset, keys=["features-0000000000000000"])


def test_ktbench_predictors_end_to_end(feature_results, tiny_zoo, cache, tmp_path, capsys):
    import shutil
    from benchmark.cli.main import main
    from analysis.predictors import pair_predictor_table
    folder = tmp_path / "results"
    shutil.copytree(feature_results[0], folder)           # features done: no forward pass
    argv = ["predictors", "--zoo", "tiny", "--eval-samples", "300", "--transfer-samples", "200",
            "--set-sizes", "1,2", "--draws", "10", "--boot", "50", "--results", str(folder),
            "--cache", str(cache), "--out", str(tmp_path / "tables")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "3 models, 6 pairs, 300 eval samples" in out
    assert "which predictor best ranks pairs for kl_dp" in out
    models = read_table(folder, "model_predictors")
    pairs = read_table(folder, "pair_predictors")
    assert len(models) == 3 and len(pairs) == 6
    assert np.isfinite(models[["tmi", "logme", "hscore", "leep", "nce"]].to_numpy()).all()
    assert pairs["cka"].between(0, 1).all()
    sets = read_table(folder, "teacher_sets")
    assert set(sets["k"]) == {1, 2} and len(sets) == 3 * 2 * 4
    wide = pair_predictor_table(folder)
    assert len(wide) == 6 and wide["tmi_diff"].notna().all()
    assert (tmp_path / "tables").is_dir()
    # the planner ranks pairs by a predictor of this folder
    plan = tmp_path / "plan.parquet"
    assert main(["plan", "--zoo", "tiny", "--strategy", "top-predictor", "--stats-metric",
                 "leep_err", "--pairs", "2", "--methods", "kl_dp", "--out", str(plan),
                 "--results", str(folder)]) == 0
    from pairs.plan import read_plan
    chosen = read_plan(plan)[["teacher", "student"]].drop_duplicates()
    best = pairs.sort_values("leep_err", ascending=False).head(2)[["teacher", "student"]]
    assert sorted(map(tuple, chosen.to_numpy())) == sorted(map(tuple, best.to_numpy()))
