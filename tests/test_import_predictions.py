"""`ktbench import-predictions`: timm inference.py outputs (written here as inference.py writes
them) become the predictions a predict unit would have written, and stats runs on them without a
forward pass; files that do not fit the dataset are refused in one line."""
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from benchmark.cli.main import main
from benchmark.units.unit import PredictUnit
from benchmark.units.import_checks import GivenPreprocessing, recorded_preprocessing
from pairs.catalog import ModelEntry

DATASET_OPTIONS = "@size=16,crop_pct=1"
# the inference.py flags the files were made with (the test models' timm defaults differ)
FLAGS = ["--crop-pct", "1", "--interpolation", "bilinear"]


@pytest.fixture(scope="module")
def zoo(image_folder, two_model_zoo, tmp_path_factory):
    return two_model_zoo("imported", f"imagefolder:{image_folder}{DATASET_OPTIONS}",
                         tmp_path_factory.mktemp("weights"))


@pytest.fixture(scope="module")
def reference(zoo, cache, tmp_path_factory):
    """What the predict units write, and each model's softmax outputs on the eval split."""
    from benchmark.data.datasets import load_dataset
    from benchmark.models.build import predict_logits
    from benchmark.models.loading import load_model
    from benchmark.units.predict import run_predict
    from results import read_table
    results = tmp_path_factory.mktemp("predicted")
    dataset = load_dataset(zoo.dataset, cache)
    probs = {}
    for entry in zoo.models:
        run_predict(PredictUnit.of(zoo, entry), results, cache)
        logits = predict_logits(load_model(entry, cache), dataset.eval_x, entry.mean, entry.std)
        probs[entry.name] = logits.softmax(1).numpy()
    return results, read_table(results, "predictions"), probs


def write_inference(path, probs, names, topk, order=None, output="prob", separate=False):
    """A file as timm's inference.py writes it: `filename`, the top-k `index`, `label` and outputs
    (`--topk 0`: the whole vector) as list cells (`--topk 1`: scalars); CSV through `to_csv`,
    Parquet indexed by filename; `separate`: one column per rank (`--results-separate-col`)."""
    order = np.arange(len(names)) if order is None else order
    frame = {"filename": [names[i] for i in order]}
    values = probs if output == "prob" else np.log(probs)
    if topk:
        out, idx = (t.numpy() for t in torch.from_numpy(values).topk(topk))
        labels = np.vectorize(lambda i: f"class {i}")(idx)
        values, idx, labels = ((v.squeeze(-1) if topk == 1 else v) for v in (out, idx, labels))
        frame["index"], frame["label"] = list(idx[order]), list(labels[order])
    frame[output] = list(values[order])
    if separate:
        frame = {**{k: v for k, v in frame.items() if k == "filename"},
                 **{f"{k}_{i}": np.stack(v)[:, i] for k, v in frame.items() if k != "filename"
                    for i in range(np.stack(v).shape[1])}}
    frame = pd.DataFrame(frame)
    np.set_printoptions(threshold=sys.maxsize)
    try:
        if path.suffix == ".parquet":
            frame.set_index("filename").to_parquet(path)
        else:
            frame.to_csv(path, index=False)
    finally:
        np.set_printoptions(threshold=1000)
    return path


def _names(image_folder, full):
    from benchmark.data.imagefolder import scan_folder
    names = scan_folder(image_folder / "val").names
    return names if full else [n.split("/")[-1] for n in names]


def test_top_k_csv_and_full_parquet_give_the_predict_units_numbers(zoo, reference, image_folder,
                                                                    tmp_path, capsys):
    from results import read_table
    _, expected, probs = reference
    files = [write_inference(tmp_path / "teacher_e-16.csv", probs["teacher_e"],
                             _names(image_folder, full=False), topk=1),
             write_inference(tmp_path / "student_r.parquet", probs["student_r"],
                             _names(image_folder, full=True), topk=0,
                             order=np.random.default_rng(0).permutation(12))]
    results = tmp_path / "r"
    assert main(["import-predictions", *map(str, files), "--zoo", zoo.name, *FLAGS,
                 "--results", str(results)]) == 0
    out = capsys.readouterr().out
    got = read_table(results, "predictions").sort_values(["model", "sample"])
    expected = expected.sort_values(["model", "sample"])
    np.testing.assert_array_equal(got["pred"], expected["pred"])
    np.testing.assert_array_equal(got["label"], expected["label"])
    np.testing.assert_allclose(got["p_max"], expected["p_max"], rtol=1e-6)
    # top-1: p_true is known where the prediction is right, else NaN
    teacher = (got["model"] == "teacher_e").to_numpy()
    outside = got["pred"].to_numpy()[teacher] != got["label"].to_numpy()[teacher]
    assert 0 < outside.sum() < 12
    assert np.isnan(got["p_true"].to_numpy()[teacher]).tolist() == outside.tolist()
    np.testing.assert_allclose(got["p_true"].to_numpy()[~np.isnan(got["p_true"].to_numpy())],
                               expected["p_true"].to_numpy()[~np.isnan(got["p_true"].to_numpy())],
                               rtol=1e-6)
    assert f"p_true unknown for {outside.sum()} (true class outside the top 1)" in out
    models = read_table(results, "models").set_index("model")
    assert models.loc["teacher_e", "img_size"] == 16 and models.loc["student_r", "n_eval"] == 12
    assert models.loc["teacher_e", "source"] == f"import:{files[0]}"
    np.testing.assert_allclose(models["top1"].sort_index(),
                               read_table(reference[0], "models").set_index("model")["top1"]
                               .sort_index())


def test_stats_run_on_imported_predictions_without_a_forward_pass(zoo, reference, image_folder,
                                                                  tmp_path, monkeypatch, cache):
    from benchmark.launch.launcher import pending_units
    from benchmark.methods import resolve_params
    from benchmark.models import build
    from benchmark.units.stats import run_stats
    from pairs.plan import make_plan
    from results import read_table
    from benchmark.units.import_checks import GivenPreprocessing
    from benchmark.units.import_predictions import import_predictions
    _, _, probs = reference
    files = [write_inference(tmp_path / f"{m}.csv", probs[m], _names(image_folder, True), 0,
                             separate=m == "student_r") for m in probs]
    import_predictions(files, zoo, tmp_path / "r",
                       given=GivenPreprocessing(crop_pct=1.0, interpolation="bilinear"))
    plan = make_plan(zoo, [("teacher_e", "student_r")], {"kl": resolve_params("kl")}, [0])
    pending = pending_units(plan, tmp_path / "r")
    assert pending["predict"] == [] and len(pending["stats"]) == 1    # the predict stage is done

    def no_forward(*args, **kwargs):
        raise AssertionError("a forward pass")
    monkeypatch.setattr(build, "predict_logits", no_forward)
    run_stats(pending["stats"][0], tmp_path / "r", cache)
    run_stats(pending_units(plan, reference[0])["stats"][0], reference[0], cache)
    pd.testing.assert_frame_equal(read_table(tmp_path / "r", "pair_stats"),
                                  read_table(reference[0], "pair_stats"))


@pytest.mark.parametrize("case, message", [
    ("train_split", "30 samples, the dataset's eval split has 12"),
    ("other_names", "row 0 is 'img0'"),
    ("class_index", "class index 7 is outside the dataset's 3 classes"),
    ("top_k_logits", "top-2 logits give no probabilities"),
    ("no_indices", "2 outputs a sample and no class indices"),
    ("unknown_model", "no model of zoo 'imported' is named 'resnet50-224'"),
    ("missing_file", "does not exist"),
])
def test_a_file_that_does_not_fit_is_refused(zoo, reference, image_folder, tmp_path, capsys,
                                             case, message):
    _, _, probs = reference
    p, names = probs["teacher_e"], _names(image_folder, full=True)
    path = tmp_path / "teacher_e.csv"
    if case == "train_split":
        write_inference(path, np.tile(p, (3, 1))[:30], [f"n01/x{i}.png" for i in range(30)], 2)
    elif case == "other_names":
        write_inference(path, p, [n.replace("img", "other") for n in names], 2)
    elif case == "class_index":
        write_inference(path, p, names, 2)
        frame = pd.read_csv(path)
        frame.loc[3, "index"] = "[7 0]"
        frame.to_csv(path, index=False)
    elif case == "top_k_logits":
        write_inference(path, p, names, 2, output="logit")
    elif case == "no_indices":
        write_inference(path, p, names, 2)
        pd.read_csv(path).drop(columns="index").to_csv(path, index=False)
    elif case == "unknown_model":
        path = write_inference(tmp_path / "resnet50-224.csv", p, names, 2)
    else:
        path = tmp_path / "absent.csv"
    if case == "other_names":
        message = f"row 0 is '{names[0].replace('img', 'other')[:-4]}'"
    capsys.readouterr()
    code = main(["import-predictions", str(path), "--zoo", zoo.name, *FLAGS,
                 "--results", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("ktbench: error: "), err
    assert message in err, err
    assert not [f for f in (tmp_path / "r").rglob("*") if f.is_file()]


def test_a_built_in_dataset_has_no_names_to_match(tmp_path, capsys):
    (tmp_path / "resnet_tiny.csv").write_text("filename,prob\nx,0.5\n")
    code = main(["import-predictions", str(tmp_path / "resnet_tiny.csv"), "--zoo", "tiny",
                 "--results", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and err == ("ktbench: error: dataset 'digits16' has no sample names to match "
                                 "files by (datasets named imagefolder:..., hfds:..., wds:... "
                                 "have)\n")


# --- what an import checks: the preprocessing, and a spot check against the model -----------------

def _import(path, zoo, tmp_path, cache, *flags):
    return main(["import-predictions", str(path), "--zoo", zoo.name, *flags,
                 "--results", str(tmp_path / "r"), "--cache", str(cache)])


def _refused(code, capsys, tmp_path) -> str:
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("ktbench: error: "), err
    assert not [f for f in (tmp_path / "r").rglob("*") if f.is_file()]
    return err


def test_predictions_made_with_the_predict_stages_preprocessing_pass_the_spot_check(
        zoo, reference, image_folder, tmp_path, capsys, cache):
    from results import read_table
    _, _, probs = reference
    path = write_inference(tmp_path / "teacher_e-16.csv", probs["teacher_e"],
                           _names(image_folder, True), topk=2)
    assert _import(path, zoo, tmp_path, cache, *FLAGS) == 0
    out = capsys.readouterr().out
    # the 12 eval samples, all spot-checked: the model predicts what the file holds
    assert "at 16 px, crop 1, bilinear, spot check 100% agree" in out
    assert len(read_table(tmp_path / "r", "predictions")) == 12


@pytest.mark.parametrize("name, flags", [
    ("teacher_e.csv", []),                                     # inference.py's defaults: 0.95, bicubic
    ("teacher_e-224.csv", FLAGS),                              # made at 224 px (its file name says)
    ("teacher_e.csv", ["--img-size", "32", *FLAGS]),
    ("teacher_e.csv", ["--crop-pct", "0.875", "--interpolation", "bilinear"]),
    ("teacher_e.csv", ["--crop-pct", "1", "--interpolation", "bicubic"]),
])
def test_predictions_made_with_other_preprocessing_are_refused_with_the_flags_to_use(
        zoo, reference, image_folder, tmp_path, capsys, cache, name, flags):
    _, _, probs = reference
    path = write_inference(tmp_path / name, probs["teacher_e"], _names(image_folder, True), 2)
    err = _refused(_import(path, zoo, tmp_path, cache, *flags), capsys, tmp_path)
    # the dataset is decoded at 16 px, crop 1, bilinear (DATASET_OPTIONS; bilinear: the default)
    assert "run inference.py with --img-size 16 --crop-pct 1 --interpolation bilinear" in err, err
    if not flags:       # timm's pretrained config of test_efficientnet: crop 0.95, bicubic
        assert "made at 16 px, crop 0.95, bicubic" in err, err


def test_the_spot_check_catches_another_models_predictions(zoo, reference, image_folder,
                                                           tmp_path, capsys, cache):
    from results import read_table
    _, expected, probs = reference
    preds = expected.pivot(index="sample", columns="model", values="pred")
    disagree = float((preds["teacher_e"] != preds["student_r"]).mean())
    assert disagree > 0.1          # the two test models tell apart on these 12 images
    path = write_inference(tmp_path / "teacher_e.csv", probs["student_r"],
                           _names(image_folder, True), 2)
    err = _refused(_import(path, zoo, tmp_path, cache, *FLAGS), capsys, tmp_path)
    assert f"teacher_e itself predicts the file's top-1 class on only {1 - disagree:.0%} of 12" in err
    assert "--no-check" in err
    # --no-check: imported as given
    assert _import(path, zoo, tmp_path, cache, *FLAGS, "--no-check") == 0
    assert "not spot-checked" in capsys.readouterr().out
    got = read_table(tmp_path / "r", "predictions").sort_values("sample")["pred"].to_numpy()
    np.testing.assert_array_equal(got, preds["student_r"].to_numpy())


def test_repeated_file_names_in_another_order_suggest_fullname(zoo, reference, image_folder,
                                                                tmp_path, capsys, cache):
    _, _, probs = reference
    # base names: each class folder holds img0..img3, so 8 of the 12 names repeat
    path = write_inference(tmp_path / "teacher_e.csv", probs["teacher_e"],
                           _names(image_folder, full=False), 2, order=np.arange(12)[::-1])
    err = _refused(_import(path, zoo, tmp_path, cache, *FLAGS), capsys, tmp_path)
    assert "8 of its file names repeat" in err and "run inference.py with --fullname" in err, err


def test_the_predict_stage_stores_top1_in_float64(reference):
    from results import read_table
    results, predictions, _ = reference
    right = (predictions["pred"] == predictions["label"]).groupby(predictions["model"]).sum()
    top1 = read_table(results, "models").set_index("model")["top1"]
    for model, k in right.items():
        # k of 12 right: 100 k / 12 to float64's precision (through float32: off by ~1e-6)
        assert abs(top1[model] - 100 * int(k) / 12) < 1e-12, (model, top1[model], k)


def test_a_reimport_compacted_twice_reads_the_same_in_pandas_and_ktbench_query(
        zoo, reference, image_folder, tmp_path, capsys, cache):
    import pyarrow.parquet as pq
    _, expected, probs = reference
    results = tmp_path / "r"

    def imported(model, values):
        path = write_inference(tmp_path / f"{model}.csv", values, _names(image_folder, True), 0)
        assert main(["import-predictions", str(path), "--zoo", zoo.name, *FLAGS, "--no-check",
                     "--results", str(results)]) == 0

    for model in probs:
        imported(model, probs[model])
    assert main(["compact", "--results", str(results)]) == 0
    # teacher_e imported again, from a file whose top-1 is another class everywhere
    rolled = np.roll(probs["teacher_e"], 1, axis=1)
    imported("teacher_e", rolled)
    assert main(["compact", "--results", str(results)]) == 0
    capsys.readouterr()
    assert main(["query", "--results", str(results), "--format", "csv",
                 "SELECT model, count(*) AS n, sum(pred) AS s FROM predictions GROUP BY model "
                 "ORDER BY model"]) == 0
    viewed = capsys.readouterr().out.split()
    raw = pd.read_parquet(results / "predictions")
    arrow = pq.ParquetDataset(results / "predictions").read().to_pandas()
    newest = {"student_r": expected[expected["model"] == "student_r"]["pred"].to_numpy(),
              "teacher_e": rolled.argmax(1)}
    for frame in (raw, arrow):
        assert len(frame) == 24
        for model, preds in newest.items():
            np.testing.assert_array_equal(
                frame[frame["model"] == model].sort_values("sample")["pred"], preds)
    assert viewed == ["model,n,s"] + [f"{m},12,{newest[m].sum()}" for m in sorted(newest)]


@pytest.mark.parametrize("name_size, given, expected", [
    # timm's inference.py without flags runs resnet50.a1_in1k at its config's test size and crop
    (None, GivenPreprocessing(), (288, 1.0, "bicubic")),
    (224, GivenPreprocessing(), (224, 1.0, "bicubic")),       # "-224" in the name: size only
    (None, GivenPreprocessing(224), (224, 1.0, "bicubic")),   # the test crop still applies
    (None, GivenPreprocessing(224, 0.95, "bilinear"), (224, 0.95, "bilinear")),
])
def test_recorded_preprocessing_follows_inference_py_at_the_test_size(name_size, given, expected):
    entry = ModelEntry(name="r50", arch="resnet50.a1_in1k", family="cnn", num_classes=1000)
    recorded = recorded_preprocessing(entry, name_size, given, channels=3)
    assert (recorded.size, recorded.crop_pct, recorded.interpolation) == expected
