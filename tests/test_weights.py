"""Weight resolution: local file, folder of files named by model, hub (offline), bad files."""
import dataclasses
import shutil

import pytest
import torch

from benchmark.models import weights
from benchmark.data.datasets import load_dataset
from benchmark.models.loading import load_model, resolve_weights
from benchmark.models.microzoo import weights_path, zoo_info
from benchmark.models.build import predict_logits
from results.errors import InputError


def _pretrained(entry, weights_value):
    """The micro-zoo entry as a pretrained-zoo entry (no recipe) with `weights`."""
    return dataclasses.replace(entry, recipe=None, weights=weights_value)


def test_local_file_and_folder_of_files_load_the_trained_model(tiny_zoo, cache, tmp_path):
    data = load_dataset(tiny_zoo.dataset, cache)
    folder = tmp_path / "weights"
    folder.mkdir()
    for entry in tiny_zoo.models:
        shutil.copy(weights_path(entry, cache), folder / f"{entry.name}.safetensors")
    for entry in tiny_zoo.models:
        expected = zoo_info(entry, cache)["top1"]
        for given in (folder / f"{entry.name}.safetensors", folder):   # file, then folder
            e = _pretrained(entry, str(given))
            assert resolve_weights(e, cache) == folder / f"{entry.name}.safetensors"
            logits = predict_logits(load_model(e, cache), data.eval_x, e.mean, e.std)
            top1 = 100.0 * float((logits.argmax(1) == data.eval_y).float().mean())
            assert top1 == pytest.approx(expected, abs=1e-6)        # the head was not re-initialised
            assert weights.check_reported_top1(e.name, top1, expected) is None


def test_weights_dir_env_and_pth_files(tiny_zoo, cache, tmp_path, monkeypatch):
    from safetensors.torch import load_file
    entry = tiny_zoo.models[0]
    state = load_file(weights_path(entry, cache))
    torch.save({"state_dict": state}, tmp_path / f"{entry.arch}.pth")   # named by arch, a checkpoint
    monkeypatch.setenv(weights.WEIGHTS_DIR_ENV, str(tmp_path))
    e = _pretrained(entry, None)
    src = weights.resolve(e)
    assert src.kind == "file" and src.path == tmp_path / f"{entry.arch}.pth"
    assert weights.check_weight_file(src.path) == len(state)
    model = load_model(e, cache)
    assert torch.equal(model.state_dict()[next(iter(state))], state[next(iter(state))])


def test_missing_weights_one_line_naming_model_and_places(tiny_zoo, tmp_path, monkeypatch):
    entry = _pretrained(tiny_zoo.models[0], str(tmp_path / "nope.safetensors"))
    with pytest.raises(InputError) as err:
        weights.resolve(entry)
    msg = str(err.value)
    assert "\n" not in msg and entry.name in msg and "nope.safetensors" in msg
    # folder without the file; the hub disallowed offline for a model timm has no weights for
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv(weights.WEIGHTS_DIR_ENV, str(tmp_path))
    for e in (_pretrained(tiny_zoo.models[0], str(tmp_path)), _pretrained(tiny_zoo.models[1], None)):
        with pytest.raises(InputError, match=e.name) as err:
            weights.resolve(e)
        assert str(tmp_path) in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(InputError, match="2 model"):
        weights.resolve_all([_pretrained(m, None) for m in tiny_zoo.models[:2]])


def test_hub_offline_needs_the_cache(monkeypatch, tmp_path):
    from pairs.catalog import ModelEntry
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    monkeypatch.setattr(weights, "hub_cached", lambda hub_id, files: False)
    entry = ModelEntry("r18", "resnet18", "cnn", 1000)
    with pytest.raises(InputError, match="HF_HUB_OFFLINE"):
        weights.resolve(entry)
    monkeypatch.setattr(weights, "hub_cached", lambda hub_id, files: True)
    src = weights.resolve(entry)
    assert src.kind == "hub" and src.hub
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(weights, "hub_cached", lambda hub_id, files: 1 / 0)  # not consulted online
    assert weights.resolve(entry).kind == "hub"
    with pytest.raises(InputError, match="not allowed"):
        weights.resolve(entry, allow_hub=False)


def test_files_that_are_not_state_dicts_are_refused(tmp_path):
    torch.save(torch.zeros(3), tmp_path / "tensor.pth")
    torch.save({"a": 1}, tmp_path / "dict.pth")
    torch.save(torch.nn.Linear(2, 2), tmp_path / "module.pth")          # pickled code
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    for name in ("tensor.pth", "dict.pth", "module.pth", "junk.safetensors"):
        with pytest.raises(ValueError, match="not a"):
            weights.check_weight_file(tmp_path / name)


def test_reported_top1_check():
    assert weights.check_reported_top1("m", 80.0, 84.9) is None
    assert weights.check_reported_top1("m", 80.0, None) is None
    line = weights.check_reported_top1("m", 70.0, 80.0)
    assert "m" in line and "-10.00" in line
    with pytest.raises(weights.AccuracyMismatch):
        weights.check_reported_top1("m", 70.0, 80.0, strict=True)
