"""Lockstep groups (benchmark.units.group, benchmark.training.lockstep) on the tiny zoo with
augmentation on: every unit of a group ends exactly as it does alone (epoch rows, run rows, kept
students), with one frozen forward pass per distinct frozen model per batch; a group killed
between its members' checkpoints resumes to the uninterrupted numbers; a member that diverges or
fails stops alone; a group that does not fit a GPU is split; which units group at all."""
import dataclasses
import json

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from benchmark.launch.jobs import run_task
from benchmark.methods import resolve_params
from benchmark.methods.kl_dp import KLDataPartition
from benchmark.training import batches, lockstep
from benchmark.training.trainer import Trainer
from benchmark.units import group
from benchmark.units.checkpoint import checkpoint_path, student_path
from benchmark.units.predict import run_predict
from benchmark.units.unit import PredictUnit, RunOptions, TransferUnit, transfer_units
from pairs.plan import make_plan
from tests.test_multi import multi_plan
from results import read_table

TEACHER, STUDENTS = "efficientnet_tiny", ("resnet_tiny", "resmlp_tiny")
STUDENT_CLASS = "ResNet"                # STUDENTS[0]'s timm class
# 4 batches an epoch
SMALL = dict(epochs=2, train_samples=256, batch_size=64, augment=True)
BATCHES = 2 * 256 // 64
TIMING = ["images_per_s", "seconds"]
RUN_COLUMNS = ["key", "status", "epochs", "student_acc", "dist_delta", "knowledge_gain",
               "knowledge_loss", "transfer_rate", "batch_size", "oom_retries"]


def _units(zoo, pairs, methods, **override) -> list[dict]:
    plan = pd.concat([make_plan(zoo, pairs, {m: resolve_params(m, zoo.transfer_defaults,
                                                               {**SMALL, **override, **extra})},
                                [0]) for m, extra in methods.items()])
    return transfer_units(plan)


def _keeping(units) -> RunOptions:
    """The DP units keep their students, as a launch marks a soup's ingredients."""
    return RunOptions(keep_students=frozenset(
        u.key for u in units if u.method in ("kl_dp", "kl_dp_unsup")))


def _predicted(zoo, cache, folder):
    for model in (TEACHER, *STUDENTS):
        run_predict(PredictUnit(f"predict-{model}", zoo.name, zoo.dataset, model), folder, cache)
    return folder


def _results(folder):
    epochs = (read_table(folder, "transfer_epochs").drop(columns=TIMING)
              .sort_values(["key", "epoch"]).reset_index(drop=True))
    runs = read_table(folder, "transfer_runs")[RUN_COLUMNS].sort_values("key")
    return epochs, runs.reset_index(drop=True)


def _alone(zoo, cache, folder, units):
    """Each unit in a task of its own (one torch thread, as the groups' tasks)."""
    _predicted(zoo, cache, folder)
    for unit in units:
        run_task([unit], str(folder), str(cache), 1, _keeping([unit]))
    return _results(folder)


def _group_units(zoo):
    """Three methods of one pair, a second student of the teacher, a random-teacher control
    (a third kind of frozen model) and CRD, which draws from torch's random state every step."""
    return (_units(zoo, [(TEACHER, STUDENTS[0])],
                   {"kl": {}, "kl_dp": {}, "kl_dp_unsup": {}, "random_teacher": {},
                    "crd": {"nce_k": 16, "lr": 0.01}})
            + _units(zoo, [(TEACHER, STUDENTS[1])], {"kl_dp": {}}))


def test_a_group_ends_as_each_unit_alone_with_one_forward_per_frozen_model(tiny_zoo, cache,
                                                                           tmp_path):
    units = _group_units(tiny_zoo)
    assert len(group.lockstep_groups(units, tmp_path)) == 1
    alone = _alone(tiny_zoo, cache, tmp_path / "alone", units)
    folder = _predicted(tiny_zoo, cache, tmp_path / "group")
    batches.FORWARD_PASSES.clear()
    assert run_task(units, str(folder), str(cache), 1, _keeping(units)) == {
        "ok": 6, "diverged": 0, "skipped": 0, "failed": 0, "errors": []}
    # per batch: the teacher, each frozen student, the random teacher, once each
    assert dict(batches.FORWARD_PASSES) == {
        TEACHER: BATCHES, STUDENTS[0]: BATCHES, STUDENTS[1]: BATCHES,
        f"{TEACHER} (random init, seed 0)": BATCHES}
    together = _results(folder)
    pd.testing.assert_frame_equal(together[0], alone[0])
    pd.testing.assert_frame_equal(together[1], alone[1])
    assert len(together[0]) == 12 and (together[1]["status"] == "ok").all()
    kept = sorted(_keeping(units).keep_students)
    assert len(kept) == 3
    for key in kept:
        a = load_file(student_path(tmp_path / "alone", key))
        b = load_file(student_path(folder, key))
        assert all(torch.equal(a[k], b[k]) for k in a)
    # the group's epoch times add up: each member is charged an equal share
    seconds = read_table(folder, "transfer_epochs").groupby("epoch")["seconds"]
    assert (seconds.nunique() == 1).all()


def test_a_group_killed_between_checkpoints_resumes_to_the_same_numbers(
        tiny_zoo, cache, tmp_path, killed_after_checkpoint):
    units = _units(tiny_zoo, [(TEACHER, STUDENTS[0])], {"kl": {}, "kl_dp": {},
                                                        "kl_dp_unsup": {}})
    alone = _alone(tiny_zoo, cache, tmp_path / "alone", units)
    folder = _predicted(tiny_zoo, cache, tmp_path / "group")
    # killed after the second member's first checkpoint: members stand at epochs 1, 1 and 0
    killed_after_checkpoint(lambda: run_task(units, str(folder), str(cache), 1,
                                             _keeping(units)), saves=2)
    saved = [torch.load(checkpoint_path(folder, u.key), weights_only=True)["rows"]
             for u in units if checkpoint_path(folder, u.key).is_file()]
    assert sorted(len(rows) for rows in saved) == [1, 1]
    batches.FORWARD_PASSES.clear()
    assert run_task(units, str(folder), str(cache), 1, _keeping(units))["ok"] == 3
    # the lagging member ran epoch 0 alone, then all three epoch 1 together
    assert batches.FORWARD_PASSES[TEACHER] == BATCHES
    together = _results(folder)
    pd.testing.assert_frame_equal(together[0], alone[0])
    pd.testing.assert_frame_equal(together[1], alone[1])


def test_a_member_that_diverges_or_fails_stops_alone(tiny_zoo, cache, tmp_path, monkeypatch):
    steady = _units(tiny_zoo, [(TEACHER, STUDENTS[0])], {"kl_dp": {}, "kl": {}})
    diverging = _units(tiny_zoo, [(TEACHER, STUDENTS[1])], {"kl": {"lr": 1e4, "epochs": 2}})
    failing = _units(tiny_zoo, [(TEACHER, STUDENTS[1])], {"kl_dp": {}})
    units = steady + diverging + failing
    assert len(group.lockstep_groups(units, tmp_path)) == 1
    alone = _alone(tiny_zoo, cache, tmp_path / "alone", steady)
    folder = _predicted(tiny_zoo, cache, tmp_path / "group")
    forward, calls = KLDataPartition.forward_train, []

    def fails_on_its_third_step(self, student, x, y, refs, idx=None):
        if type(student).__name__ != STUDENT_CLASS:     # the failing unit's student only
            calls.append(1)
            if len(calls) == 3:
                raise RuntimeError("a step that fails")
        return forward(self, student, x, y, refs, idx)

    monkeypatch.setattr(KLDataPartition, "forward_train", fails_on_its_third_step)
    counts = run_task(units, str(folder), str(cache), 1, _keeping(units))
    assert counts == {"ok": 2, "diverged": 1, "skipped": 0, "failed": 1,
                      "errors": ["RuntimeError: a step that fails"]}
    runs = read_table(folder, "transfer_runs").set_index("key")
    assert runs.loc[diverging[0].key, "status"] == "diverged"
    assert runs.loc[diverging[0].key, "epochs"] < 2
    assert "a step that fails" in runs.loc[failing[0].key, "error"]
    epochs, ok_runs = _results(folder)
    steady_keys = {u.key for u in steady}
    pd.testing.assert_frame_equal(
        epochs[epochs["key"].isin(steady_keys)].reset_index(drop=True), alone[0])
    pd.testing.assert_frame_equal(       # (the failed row makes batch_size nullable)
        ok_runs[ok_runs["key"].isin(steady_keys)].reset_index(drop=True), alone[1],
        check_dtype=False)


def test_a_group_that_does_not_fit_the_gpu_is_split(tiny_zoo, cache, tmp_path, monkeypatch):
    """A 'GPU' that fits two members of the group at the planned batch size: three units run as
    one alone (its own probe) and two in lockstep, each as it would alone."""
    units = _units(tiny_zoo, [(TEACHER, STUDENTS[0])], {"kl": {}, "kl_dp": {},
                                                        "kl_dp_unsup": {}})
    alone = _alone(tiny_zoo, cache, tmp_path / "alone", units)
    folder = _predicted(tiny_zoo, cache, tmp_path / "group")
    monkeypatch.setattr("benchmark.training.trainer.may_run_out_of_memory", lambda runtime: True)
    probed = []

    def probe_on_a_small_gpu(trainers, size):
        probed.append((len(trainers), size))
        if len(trainers) > 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")

    monkeypatch.setattr(lockstep, "probe_group", probe_on_a_small_gpu)
    singles = []
    monkeypatch.setattr(Trainer, "_probe", lambda self, model, size: singles.append(size))
    batches.FORWARD_PASSES.clear()
    assert run_task(units, str(folder), str(cache), 1, _keeping(units))["ok"] == 3
    assert probed == [(3, 64), (2, 64)] and singles == [64]
    # the pair's teacher: once per batch for the unit alone, once for the two in lockstep
    assert batches.FORWARD_PASSES[TEACHER] == 2 * BATCHES
    together = _results(folder)
    pd.testing.assert_frame_equal(together[0], alone[0])
    pd.testing.assert_frame_equal(together[1], alone[1])


def test_parallel_multi_teacher_units_join_the_group(tiny_zoo, cache, tmp_path):
    params = resolve_params("kl_dp", tiny_zoo.transfer_defaults, SMALL)
    plan = multi_plan(tiny_zoo, STUDENTS[0], [TEACHER, STUDENTS[1]], ["parallel"],
                           {"kl_dp": params})
    units = transfer_units(plan)
    assert sorted(u.mode for u in units) == ["", "", "parallel"]
    assert len(group.lockstep_groups(units, tmp_path)) == 1
    alone = _alone(tiny_zoo, cache, tmp_path / "alone", units)
    folder = _predicted(tiny_zoo, cache, tmp_path / "group")
    assert run_task(units, str(folder), str(cache), 1, _keeping(units))["ok"] == 3
    for a, b in zip(alone, _results(folder)):
        pd.testing.assert_frame_equal(a, b)


def test_only_units_with_the_same_batches_group(tiny_zoo, tmp_path):
    base = _units(tiny_zoo, [(TEACHER, STUDENTS[0]), (STUDENTS[1], STUDENTS[0])],
                  {"kl": {}, "kl_dp": {"lr": 0.5, "T": 2.0}})
    compat = [dataclasses.replace(u, compat="fantasticgains") for u in base[:1]]
    assert [len(g) for g in group.lockstep_groups(base + compat, tmp_path)] == [5]
    for change in (dict(seed=1), dict(batch_size=32), dict(augment=False),
                   dict(precision="32"), dict(train_samples=128), dict(epochs=3)):
        if "seed" in change:
            other = [dataclasses.replace(base[0], seed=change["seed"])]
        else:
            other = [dataclasses.replace(base[0], params=json.dumps(
                {**json.loads(base[0].params), **change}))]
        assert [len(g) for g in group.lockstep_groups(base + other, tmp_path)] == [4, 1], change
    # a unit resumed from a checkpoint fitted to another batch size keeps it: not with the rest
    path = checkpoint_path(tmp_path, base[0].key)
    path.parent.mkdir(parents=True)
    torch.save({"batch": {"batch_size": 32, "oom_retries": 2}}, path)
    assert [len(g) for g in group.lockstep_groups(base, tmp_path)] == [1, 3]
    path.unlink()
    # sequential and soup units run alone; groups hold at most MAX_GROUP units, in task order
    multi = multi_plan(tiny_zoo, STUDENTS[0], [TEACHER, STUDENTS[1]],
                            ["sequential", "soup", "parallel"])
    units = transfer_units(multi)
    sizes = [len(g) for g in group.lockstep_groups(units, tmp_path)]
    assert sorted(sizes) == [1, 1, 3]
    many = [dataclasses.replace(base[0], key=f"k{i}") for i in range(group.MAX_GROUP + 2)]
    chunks = group.lockstep_groups(many, tmp_path)
    assert [len(g) for g in chunks] == [group.MAX_GROUP, 2]
    assert [u.key for g in chunks for u in g] == [u.key for u in many]


def test_frozen_models_and_plan_groups_for_the_cost_estimate(tiny_zoo, tmp_path):
    units = _units(tiny_zoo, [(TEACHER, STUDENTS[0])],
                   {"kl": {}, "kl_dp": {}, "random_teacher": {"dp": True}})
    assert [group.frozen_models(u) for u in units] == [
        [TEACHER], [TEACHER, STUDENTS[0]], [f"{TEACHER}@random", STUDENTS[0]]]
    multi = multi_plan(tiny_zoo, STUDENTS[0], [TEACHER, STUDENTS[1]], ["parallel"],
                            singles=False).iloc[0]
    assert group.frozen_models(TransferUnit.from_row(multi)) == [TEACHER, STUDENTS[1],
                                                                 STUDENTS[0]]
    plan = pd.DataFrame([dataclasses.asdict(u) for u in
                         units + _units(tiny_zoo, [(TEACHER, STUDENTS[1])], {"kl": {}})])
    plan.loc[3, "params"] = json.dumps({**json.loads(plan.loc[3, "params"]), "batch_size": 32})
    groups = group.plan_groups(plan, tmp_path)
    assert groups.tolist()[:3] == [groups[0]] * 3 and groups[3] != groups[0]
