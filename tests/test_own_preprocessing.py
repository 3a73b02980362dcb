"""Each model is fed a file-backed dataset at its own preprocessing (docs/protocol.md, section
Preprocessing): predictions equal timm's own eval transform of the model's config on the PIL
images, each distinct preprocessing is decoded once, a name that fixes a size feeds every model
that one as before (same keys), transfer runs across models of different sizes, and an import
made at another preprocessing is refused with the model's own inference.py flags."""
import dataclasses
import json

import numpy as np
import pytest
import torch

from pairs.catalog import ModelEntry, Zoo, register_zoo
from pairs.keys import unit_key
from results.errors import InputError

# (name, timm arch, input side, crop_pct and interpolation set in the catalog or None: timm's)
MODELS = (("small_r", "test_resnet", 16, None, None),      # timm's config: crop 0.95, bilinear
          ("twin_r", "test_resnet", 16, None, None),       # the same preprocessing as small_r
          ("wide_e", "test_efficientnet", 20, 0.875, "bicubic"))
OWN = {"small_r": (16, 0.95, "bilinear"), "twin_r": (16, 0.95, "bilinear"),
       "wide_e": (20, 0.875, "bicubic")}


@pytest.fixture(scope="module")
def entries(tmp_path_factory):
    from safetensors.torch import save_file
    from benchmark.models.build import create_model
    weights = tmp_path_factory.mktemp("own_weights")
    made = []
    for seed, (name, arch, size, crop, interpolation) in enumerate(MODELS):
        entry = ModelEntry(name, arch, "cnn", 3, input_size=(3, size, size),
                           weights=str(weights), crop_pct=crop, interpolation=interpolation,
                           mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.3))
        torch.manual_seed(seed)
        save_file({k: v.contiguous() for k, v in
                   create_model(entry, pretrained=False).state_dict().items()},
                  str(weights / f"{name}.safetensors"))
        made.append(entry)
    return tuple(made)


def zoo_on(name: str, dataset: str, entries) -> Zoo:
    return register_zoo(name)(lambda: Zoo(name, dataset, entries))()


def timm_eval_probs(entry: ModelEntry, root, size: int, crop: float, interpolation: str):
    """The independent expectation: timm's `create_transform` eval pipeline of the config on
    each PIL image of `val/` (class folders, then file names, sorted), then the model."""
    from PIL import Image
    from timm.data import create_transform
    from benchmark.models.loading import load_model
    transform = create_transform(input_size=(3, size, size), crop_pct=crop,
                                 interpolation=interpolation, mean=entry.mean, std=entry.std,
                                 is_training=False)
    files = sorted(p for p in (root / "val").glob("*/*.png"))
    x = torch.stack([transform(Image.open(f).convert("RGB")) for f in files])
    with torch.no_grad():
        return load_model(entry, None).eval()(x).softmax(1).numpy()


def predictions_of(results, model: str) -> dict:
    from results import query
    return query(results, "SELECT * FROM predictions WHERE model = ? ORDER BY sample", [model])


def test_each_model_gets_its_own_decode_once_per_distinct_preprocessing(
        entries, image_folder, tmp_path, monkeypatch):
    from benchmark.data import splits
    from benchmark.units.predict import run_predict
    from benchmark.units.unit import PredictUnit
    from results import query
    decodes = []
    decode_into = splits.decode_into

    def counted(out, split, positions, cfg, *args, **kwargs):
        decodes.append((tuple(cfg["input_size"]), cfg["crop_pct"], cfg["interpolation"]))
        return decode_into(out, split, positions, cfg, *args, **kwargs)
    monkeypatch.setattr(splits, "decode_into", counted)
    zoo = zoo_on("own_preprocessing", f"imagefolder:{image_folder}", entries)
    for _ in range(2):                 # the second round finds every decode in the cache
        for entry in entries:
            run_predict(PredictUnit.of(zoo, entry), tmp_path / "results", tmp_path)
    # one decode (train side, eval side) per distinct preprocessing: small_r and twin_r share
    assert sorted(decodes) == sorted(2 * [((3, 16, 16), 0.95, "bilinear")]
                                     + 2 * [((3, 20, 20), 0.875, "bicubic")])
    for entry in entries:
        got = predictions_of(tmp_path / "results", entry.name)
        expected = timm_eval_probs(entry, image_folder, *OWN[entry.name])
        np.testing.assert_array_equal(got["pred"], expected.argmax(1))
        np.testing.assert_allclose(got["p_max"], expected.max(1), atol=1e-5)
    models = query(tmp_path / "results", "SELECT model, img_size, crop_pct, interpolation "
                                         "FROM models ORDER BY model")
    assert [tuple(r) for r in models.itertuples(index=False)] == [
        ("small_r", 16, 0.95, "bilinear"), ("twin_r", 16, 0.95, "bilinear"),
        ("wide_e", 20, 0.875, "bicubic")]


def test_a_name_that_fixes_the_preprocessing_feeds_every_model_that_one_with_the_old_keys(
        entries, image_folder, tmp_path):
    from benchmark.units.predict import run_predict
    from benchmark.units.unit import PredictUnit
    from pairs.plan import make_plan
    shared = f"imagefolder:{image_folder}@size=16,crop_pct=1"
    zoo = zoo_on("shared_preprocessing", shared, entries)
    wide = entries[2]
    unit = PredictUnit.of(zoo, wide)
    # the keys of before models were fed their own decode: no preprocessing field
    assert unit.key == unit_key("predict", model=wide.fingerprint(), dataset=shared)
    own = PredictUnit.of(zoo_on("own_keys", f"imagefolder:{image_folder}", entries), wide)
    assert own.key != unit_key("predict", model=wide.fingerprint(),
                               dataset=f"imagefolder:{image_folder}")
    plan = make_plan(zoo, [("small_r", "wide_e")], {"kl": {"epochs": 1}}, [0])
    assert plan["key"][0] == unit_key("transfer", compat="", dataset=shared, method="kl",
                                      params=json.dumps({"epochs": 1}), seed=0,
                                      student=wide.fingerprint(),
                                      teacher=entries[0].fingerprint())
    run_predict(unit, tmp_path / "results", tmp_path)
    expected = timm_eval_probs(wide, image_folder, 16, 1.0, "bilinear")
    np.testing.assert_array_equal(predictions_of(tmp_path / "results", "wide_e")["pred"],
                                  expected.argmax(1))


def test_transfer_and_stats_across_models_of_different_sizes(entries, image_folder, tmp_path,
                                                             monkeypatch):
    """A 20-px teacher teaches 16-px students and back, on augmented batches (each student's
    decode, the teacher's inputs resized to its side) and on precomputed outputs: every model,
    teacher or student, sees inputs of its own side."""
    from benchmark.launch.launcher import LaunchOptions, launch
    from benchmark.methods import resolve_params
    from benchmark.models import loading
    from benchmark.units import transfer
    from pairs.plan import make_plan
    from results import read_table
    seen = {}                           # model -> the input sides its first convolution saw

    def recording(entry, cache, results=None):
        model = load_model(entry, cache, results)
        conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
        conv.register_forward_pre_hook(
            lambda _, args: seen.setdefault(entry.name, set()).add(args[0].shape[-1]))
        return model
    load_model = loading.load_model
    monkeypatch.setattr(loading, "load_model", recording)      # precomputed teacher outputs
    monkeypatch.setattr(transfer, "load_model", recording)     # students and per-batch models
    zoo = zoo_on("own_transfer", f"imagefolder:{image_folder}", entries)
    online = resolve_params("kl_dp", {"epochs": 1, "batch_size": 8, "lr": 0.01})
    cached = resolve_params("kl", {"epochs": 1, "batch_size": 8, "lr": 0.01, "augment": False})
    plan = make_plan(zoo, [("wide_e", "small_r"), ("wide_e", "twin_r"), ("small_r", "wide_e")],
                     {"kl_dp": online, "kl": cached}, [0])
    summary = launch(plan, tmp_path / "results", tmp_path,
                     LaunchOptions(executor="debug", progress=False))
    assert {stage: s["failed"] for stage, s in summary.items()} == {
        "predict": 0, "stats": 0, "transfer": 0}
    runs = read_table(tmp_path / "results", "transfer_runs")
    assert len(runs) == 6 and set(runs["status"]) <= {"ok", "diverged"}   # none failed
    assert seen == {"small_r": {16}, "twin_r": {16}, "wide_e": {20}}
    stats = read_table(tmp_path / "results", "pair_stats")
    assert len(stats) == 3 and stats["pos_flips"].between(0, 100).all()


def test_an_import_at_another_preprocessing_is_refused_with_the_models_own_flags(
        entries, image_folder):
    from benchmark.units.import_checks import GivenPreprocessing, check_preprocessing
    dataset = f"imagefolder:{image_folder}"
    wide = entries[2]
    with pytest.raises(InputError, match="run inference.py with --img-size 20 --crop-pct 0.875 "
                                         "--interpolation bicubic"):
        check_preprocessing(image_folder / "wide_e.csv", wide, dataset, None,
                            GivenPreprocessing(16, 0.95, "bilinear"))
    # inference.py's defaults (timm's config at the catalog's size) are small_r's own
    assert check_preprocessing(image_folder / "small_r.csv", entries[0], dataset, None,
                               GivenPreprocessing()).size == 16
    with pytest.raises(InputError, match="is built in"):
        check_preprocessing(image_folder / "x.csv", dataclasses.replace(wide), "digits16", None,
                            GivenPreprocessing())


@pytest.mark.parametrize("options, mode", [
    ("", "own"), ("@subset=0.5", "own"), ("@size=32", "shared"),
    ("@interpolation=bicubic", "shared"), ("@preprocessing=shared", "shared"),
    ("@size=16,preprocessing=own", "own")])
def test_a_name_feeds_each_model_its_own_unless_it_fixes_one(options, mode, image_folder):
    from benchmark.data.feeding import feeds_own
    from benchmark.data.splits import preprocessing_mode
    assert preprocessing_mode(f"imagefolder:{image_folder}{options}") == mode
    assert feeds_own(f"imagefolder:{image_folder}{options}") == (mode == "own")
    assert not feeds_own("digits16")           # built in: its arrays come decoded


def test_a_bad_preprocessing_option_is_refused_in_one_line(image_folder):
    from benchmark.data import definition_of
    with pytest.raises(InputError, match="preprocessing='mine' is not own or shared"):
        definition_of(f"imagefolder:{image_folder}@preprocessing=mine")
