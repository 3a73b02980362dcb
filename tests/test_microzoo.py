"""The micro-zoo catalog, and training a tiny zoo through the same code path (in parallel, and
one model at a time)."""
import dataclasses
import json
import os
import signal
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import pytest
import timm
import torch
from safetensors.torch import load_file

from benchmark.models import microzoo

from benchmark import models
from benchmark.data.datasets import load_dataset
from pairs.catalog import ModelEntry, Zoo, get_zoo

DIGITS = dict(num_classes=10, in_chans=1, input_size=(1, 16, 16), mean=(0.26,), std=(0.28,))


def _tiny_recipe(**changes):
    return {**dict(epochs=0.1, lr=5e-3, batch_size=128, seed=0, weight_decay=0.05,
                   augmentation=dict(shift_px=0)), **changes}


# One CNN from timm proper and one MLP from our own registered entry points.
TINY_ZOO = Zoo(name="tiny", dataset="digits16", models=(
    ModelEntry(name="effnet", arch="test_efficientnet", family="cnn", recipe=_tiny_recipe(), **DIGITS),
    ModelEntry(name="resmlp", arch="micro_resmlp", family="mlp",
               recipe=_tiny_recipe(seed=3, augmentation=dict(shift_px=1)), **DIGITS),
))


def test_catalog_is_a_varied_zoo():
    zoo = get_zoo("micro")
    names = [m.name for m in zoo.models]
    families = {m.family for m in zoo.models}
    assert zoo.dataset == "digits16"
    assert len(names) >= 8 and len(set(names)) == len(names)
    assert {"cnn", "transformer", "mlp"} <= families
    assert all(m.recipe is not None and m.num_classes == 10 and m.in_chans == 1 for m in zoo.models)
    assert len({json.dumps(m.recipe, sort_keys=True) for m in zoo.models}) >= 5


def test_every_catalog_entry_builds_at_its_input_size():
    for entry in get_zoo("micro").models:
        model = models.create_model(entry, pretrained=False)
        with torch.no_grad():
            out = model(torch.zeros(2, *entry.input_size))
        assert out.shape == (2, 10), entry.name
        assert not model.training


def _build(cache: Path, cores: int) -> dict:
    """The tiny zoo built as on a machine of `cores` cores (2: in parallel, 1: one by one)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(microzoo, "usable_cores", lambda: cores)
        return microzoo.ensure_zoo_weights(TINY_ZOO, cache, progress=False)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    return cache, _build(cache, cores=2)


def _files(cache: Path) -> dict[str, bytes]:
    """The zoo folder's files (hidden temporaries left out), sidecars without their timing."""
    files = {}
    for path in sorted((cache / "zoo").glob("*")):
        if path.name.startswith("."):
            continue
        if path.suffix == ".json":
            info = json.loads(path.read_text())
            assert info.pop("train_seconds") > 0
            files[path.name] = info
        else:
            files[path.name] = path.read_bytes()
    return files


def test_training_writes_weights_and_sidecar(built):
    cache, paths = built
    assert set(paths) == {"effnet", "resmlp"}
    for entry in TINY_ZOO.models:
        path = paths[entry.name]
        assert path == cache / "zoo" / f"{entry.name}-{entry.fingerprint()}.safetensors"
        assert path.is_file()
        info = json.loads(path.with_suffix(".json").read_text())
        assert info == microzoo.zoo_info(entry, cache)
        assert info["train_seconds"] > 0
        n_params = sum(t.numel() for k, t in load_file(path).items()
                       if "running_" not in k and "num_batches" not in k)
        assert info["params_m"] == pytest.approx(n_params / 1e6)
        # the recorded accuracy is what the saved model scores on the eval split
        data = load_dataset("digits16", cache)
        logits = models.predict_logits(models.create_model(entry, path), data.eval_x,
                                       entry.mean, entry.std)
        assert info["top1"] == pytest.approx((logits.argmax(1) == data.eval_y).double().mean() * 100)
    assert not [p for p in (cache / "zoo").iterdir() if p.name.startswith(".")]


def test_timm_local_file_path_reproduces_saved_model_exactly(built):
    cache, paths = built
    data = load_dataset("digits16", cache)
    x = data.eval_x[:300]
    for entry in TINY_ZOO.models:
        # Independent of create_model: the same architecture with the state dict loaded strictly.
        reference = timm.create_model(entry.arch, num_classes=10, in_chans=1, **entry.kwargs)
        reference.load_state_dict(load_file(paths[entry.name]), strict=True)
        expected = models.predict_logits(reference.eval(), x, entry.mean, entry.std)
        got = models.predict_logits(models.create_model(entry, paths[entry.name]), x,
                                    entry.mean, entry.std)
        assert torch.equal(got, expected), entry.name


def test_overlay_without_num_classes_would_drop_the_head(built):
    # timm's trap, which create_model avoids: this is what the exactness test above guards.
    cache, paths = built
    entry = TINY_ZOO.get("effnet")
    trapped = timm.create_model(entry.arch, pretrained=True, num_classes=10, in_chans=1,
                                pretrained_cfg_overlay=dict(file=str(paths["effnet"]),
                                                            input_size=(1, 16, 16)))
    x = load_dataset("digits16", cache).eval_x[:100]
    good = models.predict_logits(models.create_model(entry, paths["effnet"]), x, entry.mean, entry.std)
    assert not torch.equal(models.predict_logits(trapped.eval(), x, entry.mean, entry.std), good)


def test_second_ensure_does_not_retrain(built, monkeypatch):
    cache, paths = built
    mtimes = {p: (p.stat().st_mtime_ns, p.with_suffix(".json").stat().st_mtime_ns)
              for p in paths.values()}

    def must_not_train(*args):
        raise AssertionError("retrained although cached")

    monkeypatch.setattr(microzoo, "_train", must_not_train)
    assert microzoo.ensure_zoo_weights(TINY_ZOO, cache, progress=False) == paths
    assert {p: (p.stat().st_mtime_ns, p.with_suffix(".json").stat().st_mtime_ns)
            for p in paths.values()} == mtimes


def test_parallel_build_writes_what_one_by_one_writes(built, tmp_path):
    # one process per model, one thread each, as one by one in this process: the same files,
    # bit for bit, the same recorded accuracies
    cache, paths = built
    one_by_one = _build(tmp_path, cores=1)
    assert {name: p.name for name, p in one_by_one.items()} == {n: p.name for n, p in paths.items()}
    assert _files(tmp_path) == _files(cache)
    assert len(_files(cache)) == 4


def test_a_build_killed_mid_way_leaves_whole_files_and_a_rerun_completes_it(built, tmp_path,
                                                                            monkeypatch):
    cache, _ = built
    train_and_save = microzoo._train_and_save

    def killed_on_resmlp(entry, data, cache):
        if entry.name == "resmlp":
            os.kill(os.getpid(), signal.SIGKILL)      # the worker dies as a kill -9 would
        train_and_save(entry, data, cache)

    monkeypatch.setattr(microzoo, "_train_and_save", killed_on_resmlp)
    with pytest.raises(BrokenProcessPool):
        _build(tmp_path, cores=2)
    left = _files(tmp_path)
    whole = _files(cache)
    assert not [name for name in left if name.startswith("resmlp")]
    assert all(left[name] == whole[name] for name in left)      # whatever is there is whole
    monkeypatch.setattr(microzoo, "_train_and_save", train_and_save)
    _build(tmp_path, cores=2)
    assert _files(tmp_path) == whole


def test_changed_definition_changes_weights_path(tmp_path):
    entry = TINY_ZOO.get("effnet")
    path = microzoo.weights_path(entry, tmp_path)
    assert microzoo.weights_path(dataclasses.replace(entry), tmp_path) == path
    assert microzoo.weights_path(
        dataclasses.replace(entry, recipe=_tiny_recipe(lr=1e-3)), tmp_path) != path
    assert microzoo.weights_path(
        dataclasses.replace(entry, recipe=_tiny_recipe(augmentation=dict(shift_px=2))), tmp_path) != path
    assert microzoo.weights_path(dataclasses.replace(entry, kwargs=dict(drop_rate=0.1)), tmp_path) != path


def test_entries_with_weights_are_returned_as_is(tmp_path, monkeypatch):
    monkeypatch.setattr(microzoo, "_train", lambda *a: pytest.fail("trained a model with weights"))
    given = ModelEntry(name="given", arch="test_resnet", family="cnn", weights="/somewhere/w.safetensors",
                       recipe=_tiny_recipe(), **DIGITS)
    hub = ModelEntry(name="hub", arch="resnet18", family="cnn", num_classes=1000)
    zoo = Zoo(name="given", dataset="digits16", models=(given, hub))
    assert microzoo.ensure_zoo_weights(zoo, tmp_path, progress=False) == {
        "given": Path("/somewhere/w.safetensors")}


def test_a_head_lost_on_reload_is_refused(tmp_path, monkeypatch):
    entry = TINY_ZOO.get("effnet")
    # Stand in for a broken loader: the reloaded model is a fresh random one.
    monkeypatch.setattr(microzoo, "create_model",
                        lambda e, weights=None, pretrained=True: models.create_model(e, pretrained=False))
    zoo = Zoo(name="one", dataset="digits16", models=(entry,))
    with pytest.raises(RuntimeError, match="effnet.*did not load"):
        microzoo.ensure_zoo_weights(zoo, tmp_path, progress=False)
    assert not microzoo.weights_path(entry, tmp_path).exists()
    assert not [p for p in (tmp_path / "zoo").iterdir()]


def test_random_shift_moves_pixels_with_zero_fill():
    x = torch.zeros(64, 1, 5, 5, dtype=torch.uint8)
    x[:, :, 2, 2] = 200
    out = microzoo.random_shift(x, 1, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.dtype == torch.uint8
    assert (out.sum(dim=(1, 2, 3)) == 200).all()                  # the one bright pixel survives
    where = out[:, 0].flatten(1).argmax(1)
    rows, cols = where // 5, where % 5
    assert ((rows - 2).abs() <= 1).all() and ((cols - 2).abs() <= 1).all()
    assert len(set(where.tolist())) > 4                           # and it moves, per image
