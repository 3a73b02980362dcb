"""ImageFolder data: generated folders, the 10% subset rule, per-model preprocessing, predict."""
import dataclasses

import numpy as np
import pytest
import torch

from benchmark import imagefolder as imf
from benchmark.data import load_dataset
from pairs.catalog import ModelEntry

CLASSES = ("n01", "n02", "n03")


def _write_images(root, per_class, size=20, seed=0):
    from PIL import Image
    rng = np.random.default_rng(seed)
    for c, name in enumerate(CLASSES):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            img = rng.integers(0, 60, (size, size + 4, 3), dtype=np.uint8)
            img[..., c] += 150                        # each class has its own dominant colour
            Image.fromarray(img).save(root / name / f"img{i}.png")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("imagenet_like")
    _write_images(root / "train", 10, seed=0)
    _write_images(root / "val", 4, seed=1)
    (root / "val" / "n02" / "notes.txt").write_text("not an image")
    return root


def test_scan_follows_imagefolder(folder):
    from torchvision.datasets import ImageFolder
    train, val = imf.imagenet_splits(folder)
    ref = ImageFolder(str(folder / "val"))
    assert val.classes == tuple(ref.classes) == CLASSES
    assert list(zip(val.paths, val.labels.tolist())) == ref.samples
    assert len(train.paths) == 30 and train.num_classes == 3


def test_class_checks(folder, tmp_path):
    entries = [ModelEntry("a", "test_resnet", "cnn", 3), ModelEntry("b", "test_resnet", "cnn", 1000)]
    with pytest.raises(ValueError, match=r"3 classes.*b \(1000\)") as err:
        imf.check_classes(CLASSES, entries)
    assert "\n" not in str(err.value) and "a (3)" not in str(err.value)
    imf.check_classes(3, entries[:1])
    _write_images(tmp_path / "train", 1)
    (tmp_path / "val" / "n01").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="no valid file"):
        imf.imagenet_splits(tmp_path)                                  # an empty class folder
    (tmp_path / "val" / "n01" / "a.png").write_bytes((tmp_path / "train" / "n01" / "img0.png").read_bytes())
    with pytest.raises(ValueError, match="differ"):
        imf.imagenet_splits(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        imf.scan_folder(tmp_path / "missing")


def test_subset_is_sklearn_stratified_deterministic_and_saved(tmp_path):
    from sklearn.model_selection import StratifiedShuffleSplit
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(50), rng.integers(20, 60, 50))       # unbalanced, 50 classes
    rng.shuffle(labels)
    idx = imf.stratified_subset(labels)
    _, ref = next(StratifiedShuffleSplit(n_splits=1, test_size=0.1, random_state=1234)
                  .split(np.zeros(len(labels)), labels))
    assert np.array_equal(idx, ref)
    assert len(idx) == int(np.ceil(0.1 * len(labels))) and len(set(idx)) == len(idx)
    counts, sub = np.bincount(labels), np.bincount(labels[idx], minlength=50)
    assert np.all(np.abs(sub - 0.1 * counts) <= 1.0)                  # stratified per class
    path = imf.subset_path(tmp_path, labels)
    assert np.array_equal(imf.ensure_subset(labels, path), ref)
    assert np.array_equal(np.load(path), ref) and not list(tmp_path.glob(".*tmp"))
    assert np.array_equal(imf.ensure_subset(labels, path), ref)       # read back, same subset
    assert imf.subset_path(tmp_path, labels[::-1]) != path
    with pytest.raises(ValueError, match="other labels"):
        imf.ensure_subset(labels[:100], path)


def test_preprocessing_from_pretrained_cfg():
    entry = ModelEntry("r", "resnet18", "cnn", 1000)
    cfg = imf.data_config(entry)
    import timm
    pcfg = timm.models.get_pretrained_cfg("resnet18")                 # the default tag's config
    assert cfg["input_size"] == (3, 224, 224) and cfg["crop_pct"] == pcfg.crop_pct
    assert cfg["interpolation"] == pcfg.interpolation and cfg["mean"] == entry.mean
    from PIL import Image
    img = Image.fromarray(np.random.default_rng(0).integers(0, 255, (300, 400, 3), dtype=np.uint8))
    x8 = imf.decode_transform(cfg)(img)
    assert x8.dtype == torch.uint8 and x8.shape == (3, 224, 224)
    ref = imf.eval_transform(cfg)(img)                                 # timm's own transform
    ours = imf.normalize_for(x8.unsqueeze(0), cfg)[0]
    assert (ours - ref).abs().max() < 0.05                             # differs by uint8 rounding only
    aug = imf.train_transform(cfg)(img)
    assert aug.dtype == torch.uint8 and aug.shape == (3, 224, 224)
    # the same augmented batch, each model with its own mean/std
    batch = torch.stack([aug, x8])
    other = dict(cfg, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    assert torch.allclose(imf.normalize_for(batch, other), batch.float() / 127.5 - 1, atol=1e-6)
    torch.manual_seed(0)
    t = imf.augmentation()(x8)
    assert t.dtype == torch.uint8 and t.shape == x8.shape              # tensors work too


def test_loader_and_decoded_cache(folder, tmp_path):
    train, _ = imf.imagenet_splits(folder)
    cfg = dict(input_size=(3, 16, 16), crop_pct=1.0, interpolation="bilinear")
    idx = imf.stratified_subset(train.labels, 0.5)
    ds = imf.FolderDataset(train, imf.decode_transform(cfg), idx)
    x, y, j = next(iter(imf.make_loader(ds, 8, workers=0)))
    assert x.dtype == torch.uint8 and x.shape == (8, 3, 16, 16)
    assert torch.equal(y, torch.as_tensor(train.labels[j.numpy()]))
    cached = imf.decoded_cache(train, cfg, tmp_path, indices=idx, workers=0)
    assert cached.shape == (len(idx), 3, 16, 16) and isinstance(cached, np.memmap)
    assert np.array_equal(cached[0], ds[0][0].numpy())
    again = imf.decoded_cache(train, cfg, tmp_path, indices=idx, workers=0)
    assert again.filename == cached.filename and not list(tmp_path.glob("*.lock"))
    cds = imf.CachedDataset(cached, train.labels[idx], augment=imf.augmentation())
    xs, ys, _ = next(iter(imf.make_loader(cds, 4, shuffle=True, workers=0, seed=3)))
    assert xs.shape == (4, 3, 16, 16) and xs.dtype == torch.uint8


def test_imagefolder_dataset_name_and_predict_from_folder_of_files(folder, cache, tmp_path):
    from safetensors.torch import save_file
    from benchmark.loading import load_model, resolve_weights
    from benchmark.models import create_model, predict_logits
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
    imf.check_classes(imf.classes_of(name), [e])
    assert resolve_weights(e, cache) == tmp_path / "resnet_folder.safetensors"
    expected = predict_logits(model, data.eval_x, e.mean, e.std)
    got = predict_logits(load_model(e, cache), data.eval_x, e.mean, e.std)
    assert got.shape == (12, 3) and torch.allclose(got, expected, atol=1e-5)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_dataset(f"imagefolder:{tmp_path / 'missing'}", cache)
