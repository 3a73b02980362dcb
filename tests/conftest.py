"""Shared fixtures: one cache for the whole session, so the tiny zoo trains once; a small
ImageNet-like image folder."""
import numpy as np
import pytest

IMAGE_CLASSES = ("n01", "n02", "n03")


def _write_images(root, per_class, size=20, seed=0):
    """`per_class` PNG images in each class folder of `root`, each class its own dominant colour."""
    from PIL import Image
    rng = np.random.default_rng(seed)
    for c, name in enumerate(IMAGE_CLASSES):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            img = rng.integers(0, 60, (size, size + 4, 3), dtype=np.uint8)
            img[..., c] += 150
            Image.fromarray(img).save(root / name / f"img{i}.png")


@pytest.fixture(scope="session")
def write_images():
    return _write_images


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory):
    """`train/` (10 images per class) and `val/` (4 per class, and a file that is no image) of
    three classes."""
    root = tmp_path_factory.mktemp("imagenet_like")
    _write_images(root / "train", 10, seed=0)
    _write_images(root / "val", 4, seed=1)
    (root / "val" / "n02" / "notes.txt").write_text("not an image")
    return root


@pytest.fixture(scope="session")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="session")
def tiny_zoo(cache):
    """The built-in `tiny` zoo (three fast models), trained into the session cache."""
    from benchmark.models.microzoo import ensure_zoo_weights
    from pairs import get_zoo
    zoo = get_zoo("tiny")
    ensure_zoo_weights(zoo, cache, progress=False)
    return zoo


class _Killed(BaseException):
    """The process 'dies' right after a checkpoint was saved (not an Exception: nothing that
    isolates one unit's failure from another's catches it, as nothing catches a kill)."""


@pytest.fixture
def killed_after_checkpoint(monkeypatch):
    """`killed_after_checkpoint(run, saves=1)`: calls `run()` with the transfer units' checkpoint
    writer stopping the process right after its `saves`-th save, as a kill would, and checks
    that it stopped."""
    from benchmark.units import checkpoint as module

    def run_until_killed(run, saves: int = 1):
        save, done = module.save_checkpoint, []

        def save_then_die(path, state):
            save(path, state)
            done.append(path)
            if len(done) == saves:
                raise _Killed

        monkeypatch.setattr(module, "save_checkpoint", save_then_die)
        try:
            with pytest.raises(_Killed):
                run()
        finally:
            monkeypatch.setattr(module, "save_checkpoint", save)
    return run_until_killed


def _two_model_zoo(name, dataset, weights):
    """Zoo `name` on `dataset`: two small timm models with 3-class heads (`teacher_e`,
    `student_r`), their weights saved once into the folder `weights`."""
    import torch
    from safetensors.torch import save_file
    from benchmark.models.build import create_model
    from pairs.catalog import ModelEntry, Zoo, register_zoo
    entries = []
    for seed, (model, arch) in enumerate((("teacher_e", "test_efficientnet"),
                                          ("student_r", "test_resnet"))):
        entry = ModelEntry(model, arch, "cnn", 3, input_size=(3, 16, 16), weights=str(weights),
                           mean=(0.2, 0.8, 0.5) if seed else (0.5, 0.5, 0.5),
                           std=(0.3, 0.2, 0.25) if seed else (0.25, 0.25, 0.25))
        if not (weights / f"{model}.safetensors").exists():
            weights.mkdir(exist_ok=True)
            torch.manual_seed(seed)
            save_file({k: v.contiguous() for k, v in
                       create_model(entry, pretrained=False).state_dict().items()},
                      str(weights / f"{model}.safetensors"))
        entries.append(entry)
    return register_zoo(name)(lambda: Zoo(name, dataset, tuple(entries)))()


@pytest.fixture(scope="session")
def two_model_zoo():
    return _two_model_zoo
