"""ImageFolder data: generated folders, the 10% subset rule, per-model preprocessing, predict."""
import dataclasses

import numpy as np
import pytest
import torch

from benchmark.data import imagefolder as imf
from benchmark.data import preprocess as pre
from benchmark.data import splits
from benchmark.data import subset as subsets
from benchmark.data.datasets import check_classes, load_dataset
from pairs.catalog import ModelEntry
from results.errors import InputError

CLASSES = ("n01", "n02", "n03")


@pytest.fixture
def folder(image_folder):
    return image_folder


def test_scan_follows_imagefolder(folder):
    from torchvision.datasets import ImageFolder
    train, val = imf.imagenet_splits(folder)
    ref = ImageFolder(str(folder / "val"))
    assert val.classes == tuple(ref.classes) == CLASSES
    assert list(zip(val.paths, val.labels.tolist())) == ref.samples
    assert len(train.paths) == 30 and train.num_classes == 3


def test_class_checks(folder, tmp_path, write_images):
    entries = [ModelEntry("a", "test_resnet", "cnn", 3), ModelEntry("b", "test_resnet", "cnn", 1000)]
    with pytest.raises(ValueError, match=r"3 classes.*b \(1000\)") as err:
        check_classes(CLASSES, entries)
    assert "\n" not in str(err.value) and "a (3)" not in str(err.value)
    check_classes(3, entries[:1])
    write_images(tmp_path / "train", 1)
    (tmp_path / "val" / "n01").mkdir(parents=True)
    with pytest.raises(InputError, match="no valid file"):
        imf.imagenet_splits(tmp_path)                                  # an empty class folder
    (tmp_path / "val" / "n01" / "a.png").write_bytes((tmp_path / "train" / "n01" / "img0.png").read_bytes())
    with pytest.raises(ValueError, match="differ"):
        imf.imagenet_splits(tmp_path)
    with pytest.raises(InputError, match="does not exist"):
        imf.scan_folder(tmp_path / "missing")


def test_subset_is_sklearn_stratified_deterministic_and_saved(tmp_path):
    from sklearn.model_selection import StratifiedShuffleSplit
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(50), rng.integers(20, 60, 50))       # unbalanced, 50 classes
    rng.shuffle(labels)
    idx = subsets.stratified_subset(labels)
    _, ref = next(StratifiedShuffleSplit(n_splits=1, test_size=0.1, random_state=1234)
                  .split(np.zeros(len(labels)), labels))
    assert np.array_equal(idx, ref)
    assert len(idx) == int(np.ceil(0.1 * len(labels))) and len(set(idx)) == len(idx)
    counts, sub = np.bincount(labels), np.bincount(labels[idx], minlength=50)
    assert np.all(np.abs(sub - 0.1 * counts) <= 1.0)                  # stratified per class
    path = subsets.subset_path(tmp_path, labels)
    assert np.array_equal(subsets.ensure_subset(labels, path), ref)
    assert np.array_equal(np.load(path), ref) and not list(tmp_path.glob(".*tmp"))
    assert np.array_equal(subsets.ensure_subset(labels, path), ref)       # read back, same subset
    assert subsets.subset_path(tmp_path, labels[::-1]) != path
    with pytest.raises(ValueError, match="other labels"):
        subsets.ensure_subset(labels[:100], path)


def test_preprocessing_from_pretrained_cfg():
    entry = ModelEntry("r", "resnet18", "cnn", 1000)
    cfg = pre.data_config(entry)
    import timm
    pcfg = timm.models.get_pretrained_cfg("resnet18")                 # the default tag's config
    assert cfg["input_size"] == (3, 224, 224) and cfg["crop_pct"] == pcfg.crop_pct
    assert cfg["interpolation"] == pcfg.interpolation and cfg["mean"] == entry.mean
    from PIL import Image
    img = Image.fromarray(np.random.default_rng(0).integers(0, 255, (300, 400, 3), dtype=np.uint8))
    x8 = pre.decode_transform(cfg)(img)
    assert x8.dtype == torch.uint8 and x8.shape == (3, 224, 224)
    ref = pre.eval_transform(cfg)(img)                                 # timm's own transform
    ours = pre.normalize_for(x8.unsqueeze(0), cfg)[0]
    assert (ours - ref).abs().max() < 0.05                             # differs by uint8 rounding only
    # the same batch, each model with its own mean/std
    batch = torch.stack([x8.flip(-1), x8])
    other = dict(cfg, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    assert torch.allclose(pre.normalize_for(batch, other), batch.float() / 127.5 - 1, atol=1e-6)


def test_loader_and_decoded_cache(folder, tmp_path):
    train, _ = imf.imagenet_splits(folder)
    cfg = dict(input_size=(3, 16, 16), crop_pct=1.0, interpolation="bilinear")
    idx = subsets.stratified_subset(train.labels, 0.5)
    ds = splits.SplitImages(train, pre.decode_transform(cfg), idx)
    x, y, j = next(iter(splits.make_loader(ds, 8, workers=0)))
    assert x.dtype == torch.uint8 and x.shape == (8, 3, 16, 16)
    assert torch.equal(y, torch.as_tensor(train.labels[j.numpy()]))
    cached = splits.decoded_cache(train, cfg, tmp_path, indices=idx, workers=0)
    assert cached.shape == (len(idx), 3, 16, 16) and isinstance(cached, np.memmap)
    assert np.array_equal(cached[0], ds[0][0].numpy())
    again = splits.decoded_cache(train, cfg, tmp_path, indices=idx, workers=0)
    assert again.filename == cached.filename and not list(tmp_path.glob("*.lock"))
    cds = splits.CachedDataset(cached, train.labels[idx])
    xs, ys, _ = next(iter(splits.make_loader(cds, 4, shuffle=True, workers=0, seed=3)))
    assert xs.shape == (4, 3, 16, 16) and xs.dtype == torch.uint8


def test_imagefolder_dataset_name_and_predict_from_folder_of_files(folder, cache, tmp_path):
    from safetensors.torch import save_file
    from benchmark.models.loading import load_model, resolve_weights
    from benchmark.models.build import create_model, predict_logits
    name = f"imagefolder:{folder}@size=16,crop_pct=1"
    data = load_dataset(name, cache)
    assert data.num_classes == 3 and data.train_x.shape == (30, 3, 16, 16)
    assert data.eval_x.dtype == torch.uint8 and len(data.eval_y) == 12
    assert torch.equal(data.eval_y, torch.tensor([0] * 4 + [1] * 4 + [2] * 4))
    sub = load_dataset(f"imagefolder:{folder}@size=16,crop_pct=1,subset=0.5", cache)
    assert len(sub.train_y) == 15 and torch.equal(sub.eval_x, data.eval_x)
    # a timm model saved with a 3-class head, loaded by the folder-of-files route
    entry = ModelEntry("resnet_folder", "test_resnet", "cnn", 3, input_size=(3, 16, 16),
                       mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    torch.manual_seed(0)
    model = create_model(entry, pretrained=False)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()},
              str(tmp_path / "resnet_folder.safetensors"))
    e = dataclasses.replace(entry, weights=str(tmp_path))
    check_classes(imf.classes_of(name), [e])
    assert resolve_weights(e, cache) == tmp_path / "resnet_folder.safetensors"
    expected = predict_logits(model, data.eval_x, e.mean, e.std)
    got = predict_logits(load_model(e, cache), data.eval_x, e.mean, e.std)
    assert got.shape == (12, 3) and torch.allclose(got, expected, atol=1e-5)
    with pytest.raises(InputError, match="does not exist"):
        load_dataset(f"imagefolder:{tmp_path / 'missing'}", cache)


def test_folder_zoo_predict_stats_transfer_with_augmentation(folder, cache, tmp_path,
                                                             two_model_zoo):
    """Two timm models from a folder of weight files on an ImageFolder dataset: the whole
    pipeline, transfer on augmented batches with per-batch teacher outputs."""
    from benchmark.launch.launcher import LaunchOptions, launch
    from benchmark.methods import resolve_params
    from benchmark.models.build import create_model
    from pairs.plan import make_plan
    from results import read_table
    zoo = two_model_zoo("folder_test", f"imagefolder:{folder}@size=16,crop_pct=1",
                        tmp_path / "weights")
    params = resolve_params("kl_dp", {"epochs": 1, "batch_size": 8, "lr": 0.01})
    assert params["augment"] is True                     # the paper's protocol by default
    plan = make_plan(zoo, [("teacher_e", "student_r")], {"kl_dp": params}, [0])
    summary = launch(plan, tmp_path / "results", cache,
                     LaunchOptions(executor="debug", progress=False))
    assert {stage: s["failed"] for stage, s in summary.items()} == {
        "predict": 0, "stats": 0, "transfer": 0}
    runs = read_table(tmp_path / "results", "transfer_runs")
    assert runs["status"].tolist() == ["ok"] and runs["dataset"][0] == zoo.dataset
    epochs = read_table(tmp_path / "results", "transfer_epochs")
    assert len(epochs) == 1 and epochs["images_per_s"][0] > 0
    assert 0 <= epochs["teacher_input"][0] <= 100
    assert len(read_table(tmp_path / "results", "pair_stats")) == 1
    # compat: the teacher is evaluated on inputs normalised with the student's mean/std
    from benchmark.data.datasets import load_dataset
    from benchmark.units.transfer import load_context
    from benchmark.units.unit import TransferUnit
    data = load_dataset(zoo.dataset, cache)
    x = data.eval_x.float() / 255.0
    own = torch.tensor([0.5, 0.5, 0.5]).view(1, 3, 1, 1)
    students = torch.tensor([0.2, 0.8, 0.5]).view(1, 3, 1, 1)
    students_std = torch.tensor([0.3, 0.2, 0.25]).view(1, 3, 1, 1)
    torch.manual_seed(0)
    teacher = create_model(zoo.models[0], pretrained=False).eval()   # its weights: seed 0
    with torch.no_grad():
        expected = {None: teacher((x - own) / 0.25).argmax(1).numpy(),
                    "fantasticgains": teacher((x - students) / students_std).argmax(1).numpy()}
    assert (expected[None] != expected["fantasticgains"]).any()     # the test can tell them apart
    for compat, preds in expected.items():
        unit = dataclasses.replace(TransferUnit.from_row(plan.iloc[0]), compat=compat or "")
        got = load_context(unit, tmp_path / "results", cache).preds["teacher_e"]
        np.testing.assert_array_equal(got, preds)


def test_reported_top1_flagged_or_strict_and_missing_weights_before_any_job(folder, cache,
                                                                            tmp_path, capsys):
    from safetensors.torch import save_file
    from benchmark.launch.launcher import LaunchOptions, launch
    from benchmark.methods import resolve_params
    from benchmark.models.build import create_model
    from benchmark.units.predict import run_predict
    from benchmark.units.unit import PredictUnit
    from benchmark.models.weights import AccuracyMismatch
    from pairs.catalog import Zoo, get_zoo, register_zoo
    from pairs.plan import make_plan
    from results import read_table
    entry = ModelEntry("far_off", "test_resnet", "cnn", 3, input_size=(3, 16, 16),
                       weights=str(tmp_path), top1_reported=99.0)
    torch.manual_seed(0)
    save_file({k: v.contiguous() for k, v in create_model(entry, pretrained=False)
               .state_dict().items()}, str(tmp_path / "far_off.safetensors"))
    zoo = register_zoo("folder_top1")(lambda: Zoo(
        "folder_top1", f"imagefolder:{folder}@size=16,crop_pct=1",
        (entry, dataclasses.replace(entry, name="no_weights"))))()
    unit = PredictUnit("predict-far_off", zoo.name, zoo.dataset, "far_off")
    with pytest.raises(AccuracyMismatch, match="'far_off'.*off the reported 99.00%"):
        run_predict(unit, tmp_path / "strict", cache, strict_top1=True)
    assert not (tmp_path / "strict").exists()                # stopped before writing anything
    assert run_predict(unit, tmp_path / "flagged", cache) == "ok"
    assert "warning: model 'far_off': measured top-1" in capsys.readouterr().err
    assert read_table(tmp_path / "flagged", "models")["top1_reported"].tolist() == [99.0]
    # a model without its weight file stops the launch before any job, naming it
    plan = make_plan(zoo, [("far_off", "no_weights")],
                     {"kl": resolve_params("kl", {"epochs": 1})}, [0])
    with pytest.raises(InputError, match="'no_weights' not found; looked at"):
        launch(plan, tmp_path / "launch", cache, LaunchOptions(executor="debug", progress=False))
    assert not (tmp_path / "launch").exists()
    # a head with 5 outputs on a 3-class folder: stopped before any job, naming the model
    register_zoo("folder_heads")(lambda: Zoo(
        "folder_heads", zoo.dataset, (entry, dataclasses.replace(entry, name="five", num_classes=5))))
    plan = make_plan(get_zoo("folder_heads"), [("far_off", "five")],
                     {"kl": resolve_params("kl", {"epochs": 1})}, [0])
    with pytest.raises(ValueError, match=r"has 3 classes but .*: five \(5\)"):
        launch(plan, tmp_path / "launch", cache, LaunchOptions(executor="debug", progress=False))
    assert not (tmp_path / "launch").exists()
