"""Every registered method through the trainer: one step changes the student; a run killed after
its first checkpoint resumes to exactly the numbers of an uninterrupted run (MCL's slow weights,
CRD's memory bank and both compat paths included); divergence stops a run early."""
import copy
import dataclasses
import json

import pandas as pd
import pytest
import torch

from benchmark.units import transfer
from benchmark.training.batches import CachedBatches
from benchmark.training.trainer import Trainer
from benchmark.cli.main import main
from benchmark.data.datasets import Dataset
from benchmark.methods import get_method, list_methods, reference_spec, resolve_params
from benchmark.models.build import create_model, features_and_logits
from benchmark.units.predict import run_predict
from benchmark.units.unit import PredictUnit, TransferUnit
from pairs import get_zoo
from pairs.plan import make_plan
from results import read_table

CONTROLS = {"random_teacher", "self_distill", "xe_finetune"}
PAPER_METHODS = {"kl", "xekl", "cd", "crd", "xekl_mcl", "kl_dp", "kl_dp_unsup"}


def test_every_method_and_control_is_registered_and_listed(capsys):
    assert PAPER_METHODS | CONTROLS <= set(list_methods())
    assert {m for m in list_methods() if get_method(m).control} == CONTROLS
    assert main(["methods"]) == 0
    out = capsys.readouterr().out
    for name in PAPER_METHODS | CONTROLS:
        assert f"\n{name} " in "\n" + out
    assert '"nce_k": 4096' in out and '"tau": 0.9999' in out


def _synthetic(n=32, classes=10, seed=0) -> Dataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, 1, 16, 16), generator=g, dtype=torch.uint8)
    y = torch.arange(n) % classes
    return Dataset("synthetic", classes, x, y, x, y, torch.arange(n), torch.arange(n))


@pytest.mark.parametrize("name", sorted(PAPER_METHODS | CONTROLS))
@pytest.mark.parametrize("compat", [None, "fantasticgains"])
def test_one_step_changes_the_student(name, compat):
    entry = get_zoo("tiny").get("resnet_tiny")
    torch.manual_seed(0)
    student = create_model(entry, pretrained=False)
    dataset = _synthetic()
    params = resolve_params(name, {"batch_size": 16, "lr": 0.05})
    method = get_method(name)(params, compat)
    g = torch.Generator().manual_seed(1)
    refs = {ref: torch.randn(len(dataset.train_y), 10 if reference_spec(ref)[1] == "logits" else 7,
                             generator=g) for ref in method.references}
    batches = CachedBatches(dataset, entry, refs, len(dataset.train_y), 16, seed=0)
    trainer = Trainer(method, student, entry, dataset, batches, params, seed=0)
    before = copy.deepcopy(student.state_dict())
    loss, _ = trainer.train_step(batches.batch(torch.arange(16)), 0)
    assert loss == loss and loss > 0
    changed = [k for k, v in student.state_dict().items() if not torch.equal(v, before[k])]
    assert any(k.endswith("weight") for k in changed)
    if name == "xekl_mcl" and compat is None:   # evaluated with the slow weights, ~ the start
        slow = trainer.eval_model().state_dict()
        assert not torch.equal(slow["fc.weight"], student.state_dict()["fc.weight"])


def test_features_and_logits_split_every_micro_architecture():
    zoo = get_zoo("micro")
    x = torch.randn(2, 1, 16, 16)
    for entry in zoo.models:
        model = create_model(entry, pretrained=False).eval()
        feats, logits = features_and_logits(model, x)
        assert feats.ndim == 2 and feats.shape[1] == model.get_classifier().in_features
        assert torch.allclose(logits, model(x), atol=1e-5), entry.name


# --- resume and divergence, on the tiny zoo ----------------------------------------------------

def _unit(zoo, cache, method, tmp_path, folders, compat=None, **override):
    """A resnet_tiny <- efficientnet_tiny unit, with both models predicted in each folder."""
    params = resolve_params(method, zoo.transfer_defaults,
                            {"epochs": 2, "train_samples": 256, "batch_size": 64, **override})
    teacher, student = "efficientnet_tiny", "resnet_tiny"
    plan = make_plan(zoo, [(teacher, student)], {method: params}, [0], compat)
    for folder in folders:
        for model in (teacher, student):
            run_predict(PredictUnit(f"predict-{model}", zoo.name, zoo.dataset, model),
                        tmp_path / folder, cache)
    return TransferUnit.from_row(plan.iloc[0])


def _epochs(folder):
    return (read_table(folder, "transfer_epochs").sort_values("epoch")
            .drop(columns=["images_per_s", "seconds"]).reset_index(drop=True))


@pytest.mark.parametrize("method,compat,override", [
    ("xekl_mcl", None, {"tau": 0.5}),
    ("xekl_mcl", "fantasticgains", {"tau": 0.5}),
    ("crd", None, {"nce_k": 64, "lr": 0.01}),
    ("kl_dp", None, {"augment": True}),        # augmented batches, per-batch teacher outputs
])
def test_resumed_run_matches_uninterrupted(tiny_zoo, cache, tmp_path, killed_after_checkpoint,
                                           method, compat, override):
    unit = _unit(tiny_zoo, cache, method, tmp_path, ("straight", "resumed"), compat, **override)
    transfer.run_transfer(unit, tmp_path / "straight", cache)
    killed_after_checkpoint(lambda: transfer.run_transfer(unit, tmp_path / "resumed",
                                                                    cache))
    state = torch.load(transfer.checkpoint_path(tmp_path / "resumed", unit.key),
                       weights_only=True)
    assert state["step"] == 4
    assert state["method"] or method == "kl_dp"        # method state saved (slow weights, bank)
    transfer.run_transfer(unit, tmp_path / "resumed", cache)
    straight, resumed = _epochs(tmp_path / "straight"), _epochs(tmp_path / "resumed")
    assert len(straight) == 2
    pd.testing.assert_frame_equal(straight, resumed)
    if method == "xekl_mcl":   # the slow weights are what is evaluated: they moved
        assert straight["dist_delta"].abs().max() > 0


def test_compat_reaches_the_method_through_the_unit(tiny_zoo, cache, tmp_path):
    """The same xekl unit with and without compat: XE on probabilities changes the training."""
    deltas = []
    for compat in (None, "fantasticgains"):
        unit = _unit(tiny_zoo, cache, "xekl", tmp_path, [compat or "default"], compat, epochs=1,
                     batch_size=128)
        assert transfer.run_transfer(unit, tmp_path / (compat or "default"), cache) == "ok"
        run = read_table(tmp_path / (compat or "default"), "transfer_runs").iloc[0]
        assert run["compat"] == (compat or "") and run["mode"] == ""
        assert run["teachers"] == run["teacher"]
        deltas.append(_epochs(tmp_path / (compat or "default"))["loss"].iloc[0])
    assert deltas[0] != pytest.approx(deltas[1])


def test_a_huge_learning_rate_diverges_and_stops_early(tiny_zoo, cache, tmp_path):
    unit = _unit(tiny_zoo, cache, "kl", tmp_path, ["."], epochs=3, lr=1e4)
    assert transfer.run_transfer(unit, tmp_path, cache) == "diverged"
    run = read_table(tmp_path, "transfer_runs").iloc[0]
    assert run["status"] == "diverged" and run["epochs"] < 3
    assert json.loads(run["params"])["diverge_margin"] == 20.0
    assert not transfer.checkpoint_path(tmp_path, unit.key).exists()


def test_a_unit_planned_before_augment_and_precision_runs_as_it_was_planned(tiny_zoo, cache,
                                                                            tmp_path):
    """Plans written before `augment` and `precision` existed ran without augmentation."""
    unit = _unit(tiny_zoo, cache, "kl", tmp_path, ["."], epochs=1)
    params = json.loads(unit.params)
    del params["augment"], params["precision"]
    unit = dataclasses.replace(unit, params=json.dumps(params))
    ctx = transfer.load_context(unit, tmp_path, cache)
    assert ctx.params["augment"] is False and ctx.params["precision"] == "32"
    assert transfer.run_transfer(unit, tmp_path, cache) == "ok"
    assert read_table(tmp_path, "transfer_runs")["params"].tolist() == [unit.params]


def _small_gpu(monkeypatch, fits: int) -> list:
    """A GPU on which the batch-size probe runs out of memory above `fits` samples; returns the
    list of the sizes probed."""
    monkeypatch.setattr("benchmark.training.trainer.may_run_out_of_memory", lambda runtime: True)
    probe, sizes = Trainer._probe, []

    def probe_on_a_small_gpu(self, model, size):
        sizes.append(size)
        if size > fits:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")
        probe(self, model, size)

    monkeypatch.setattr(Trainer, "_probe", probe_on_a_small_gpu)
    return sizes


def test_out_of_memory_halves_the_batch_before_training_and_is_recorded(tiny_zoo, cache,
                                                                       tmp_path, monkeypatch):
    """A GPU that fits 32 samples: 128 -> 64 -> 32, recorded; the run is then exactly a run
    planned at 32 (the probe leaves the student and the random state alone)."""
    planned_32 = _unit(tiny_zoo, cache, "kl", tmp_path, ["at32"], epochs=1, batch_size=32)
    assert transfer.run_transfer(planned_32, tmp_path / "at32", cache) == "ok"
    sizes = _small_gpu(monkeypatch, fits=32)
    unit = _unit(tiny_zoo, cache, "kl", tmp_path, ["fitted"], epochs=1, batch_size=128)
    assert transfer.run_transfer(unit, tmp_path / "fitted", cache) == "ok"
    assert sizes == [128, 64, 32]
    fitted = read_table(tmp_path / "fitted", "transfer_runs").iloc[0]
    assert (fitted["batch_size"], fitted["oom_retries"]) == (32, 2)
    assert json.loads(fitted["params"])["batch_size"] == 128          # the plan's, as planned
    at32 = read_table(tmp_path / "at32", "transfer_runs").iloc[0]
    assert (at32["batch_size"], at32["oom_retries"]) == (32, 0)
    assert fitted["student_acc"] == at32["student_acc"]
    pd.testing.assert_frame_equal(_epochs(tmp_path / "fitted").drop(columns="key"),
                                  _epochs(tmp_path / "at32").drop(columns="key"))


def test_a_resumed_run_keeps_its_fitted_batch_size(tiny_zoo, cache, tmp_path, monkeypatch,
                                                   killed_after_checkpoint):
    sizes = _small_gpu(monkeypatch, fits=32)
    unit = _unit(tiny_zoo, cache, "kl", tmp_path, ["."], epochs=2, batch_size=128)
    killed_after_checkpoint(lambda: transfer.run_transfer(unit, tmp_path, cache))
    assert sizes == [128, 64, 32]
    assert transfer.run_transfer(unit, tmp_path, cache) == "ok"
    assert sizes == [128, 64, 32]                     # the resumed run did not probe again
    run = read_table(tmp_path, "transfer_runs").iloc[0]
    assert (run["batch_size"], run["oom_retries"], run["epochs"]) == (32, 2, 2)
