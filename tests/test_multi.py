"""Multi-teacher transfer (docs/methods.md#multi-teacher) on the tiny zoo, end to end through the launcher; plans
with teacher lists (version 2, version 1 still read); the random-init flip baseline."""
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from safetensors.torch import load_file

from benchmark.units import multi, transfer
from benchmark.training.trainer import predict_eval
from benchmark.units.baselines import RANDOM_SUFFIX, random_init_baseline
from benchmark.cli.main import main
from benchmark.data.datasets import load_dataset
from benchmark.launch.launcher import LaunchOptions, launch
from benchmark.launch.pending import pending_units
from benchmark.models.loading import load_model
from benchmark.methods import resolve_params
from benchmark.units.multi import soup_state, teacher_order
from benchmark.units.unit import TransferUnit
from benchmark.methods import partition_methods
from pairs.multi import make_multi_plan, merge_plans
from pairs.plan import (PLAN_COLUMNS, Plan, PlanError, make_plan, read_plan,
                        write_plan)
from results import read_table

DEBUG = LaunchOptions(executor="debug", progress=False)
STUDENT, TEACHERS = "resnet_tiny", ["efficientnet_tiny", "resmlp_tiny"]
ALL_MODES = ("sequential", "sequential_desc", "parallel", "soup")


def multi_plan(zoo, student, teachers, modes, methods=None, **kwargs):
    """`make_multi_plan` with kl_dp at the zoo's transfer defaults unless `methods` are given,
    and the registered methods that partition the data."""
    methods = methods or {"kl_dp": resolve_params("kl_dp", zoo.transfer_defaults)}
    return make_multi_plan(zoo, student, teachers, modes, methods,
                           partition_methods=partition_methods(), **kwargs)


@pytest.fixture(scope="module")
def multi_results(tiny_zoo, cache, tmp_path_factory):
    folder = tmp_path_factory.mktemp("multi")
    plan = multi_plan(tiny_zoo, STUDENT, TEACHERS, ALL_MODES)
    summary = launch(plan, folder, cache, DEBUG)
    return plan, folder, summary


def test_multi_plan_rows(tiny_zoo):
    plan = multi_plan(tiny_zoo, STUDENT, TEACHERS, ALL_MODES)
    assert list(plan.columns) == PLAN_COLUMNS and plan["plan"].nunique() == 1
    singles, multis = plan[plan["mode"] == ""], plan[plan["mode"] != ""]
    assert sorted(singles["teacher"]) == sorted(TEACHERS)
    assert (singles["teachers"] == singles["teacher"]).all()
    assert sorted(multis["mode"]) == sorted(ALL_MODES)
    assert (multis["teachers"] == ",".join(TEACHERS)).all()
    assert (multis["teacher"] == TEACHERS[0]).all() and set(plan["method"]) == {"kl_dp"}
    # single-teacher rows are exactly make_plan's (same keys: soups and tables reuse them)
    single = make_plan(tiny_zoo, [(t, STUDENT) for t in TEACHERS],
                       {"kl_dp": json.loads(singles["params"].iloc[0])}, [0])
    assert sorted(single["key"]) == sorted(singles["key"])
    # the teacher order is part of a unit's identity
    swapped = multi_plan(tiny_zoo, STUDENT, TEACHERS[::-1], ["parallel"], singles=False)
    assert swapped["key"].iloc[0] not in set(plan["key"])


@pytest.mark.parametrize("kwargs,match", [
    (dict(teachers=["efficientnet_tiny"]), "two distinct"),
    (dict(teachers=["efficientnet_tiny", "efficientnet_tiny"]), "two distinct"),
    (dict(teachers=["efficientnet_tiny", STUDENT]), "also among"),
    (dict(modes=["bagging"]), "unknown multi-teacher mode"),
    (dict(modes=["soup"], methods={"kl": {}}), "kl_dp or kl_dp_unsup"),
    (dict(modes=["parallel"], methods={"xekl": {}}), "kl_dp or kl_dp_unsup"),
])
def test_bad_multi_plans_are_refused(tiny_zoo, kwargs, match):
    args = dict(teachers=TEACHERS, modes=ALL_MODES) | kwargs
    with pytest.raises(PlanError, match=match):
        multi_plan(tiny_zoo, STUDENT, **args)


def test_multi_teacher_modes_end_to_end(multi_results, tiny_zoo, cache):
    plan, folder, summary = multi_results
    assert summary["transfer"] == {"submitted": 6, "failed": 0, "held": 0,
                                   "held_by": [], "errors": []}
    assert summary["predict"]["submitted"] == 3           # every teacher of the list
    stats = read_table(folder, "pair_stats")
    assert {(t, STUDENT) for t in TEACHERS} <= set(zip(stats["teacher"], stats["student"]))
    runs = read_table(folder, "transfer_runs").set_index("key")
    assert set(runs["status"]) == {"ok"}
    assert sorted(runs["mode"]) == sorted(("",) * 2 + ALL_MODES)
    epochs = read_table(folder, "transfer_epochs")
    acc = read_table(folder, "models").set_index("model")["top1"]
    weakest_first = teacher_order(TEACHERS, acc.to_dict(), descending=False)
    assert weakest_first == ["resmlp_tiny", "efficientnet_tiny"]
    single = {runs.loc[k, "teacher"]: k for k in runs.index if runs.loc[k, "mode"] == ""}

    for mode, order in (("sequential", weakest_first), ("sequential_desc", weakest_first[::-1])):
        key = runs.index[runs["mode"] == mode][0]
        assert runs.loc[key, "teachers"] == ",".join(TEACHERS)    # as planned
        assert runs.loc[key, "epochs"] == 2                        # 1 epoch x 2 teachers
        rows = epochs[epochs["key"] == key].sort_values("epoch")
        assert rows["step"].tolist() == [0, 1] and rows["step_teacher"].tolist() == order
        # step 0 is exactly the single-teacher run with that teacher
        first = epochs[epochs["key"] == single[order[0]]].iloc[0]
        assert rows["student_acc"].iloc[0] == first["student_acc"]
        # step metrics count from the start of the step, overall ones from the initial student
        assert rows["dist_delta_step"].iloc[1] == pytest.approx(
            rows["student_acc"].iloc[1] - rows["student_acc"].iloc[0])
        assert rows["dist_delta"].iloc[1] == pytest.approx(runs.loc[key, "dist_delta"])

    key = runs.index[runs["mode"] == "parallel"][0]
    share = epochs.loc[epochs["key"] == key, "teacher_input"].iloc[0]
    assert 0 < share < 100

    # soup: the uniform average of the kept single-teacher students, evaluated
    key = runs.index[runs["mode"] == "soup"][0]
    states = [load_file(transfer.student_path(folder, single[t])) for t in TEACHERS]
    entry = tiny_zoo.get(STUDENT)
    model = load_model(entry, cache)
    model.load_state_dict(soup_state(states))
    dataset = load_dataset(tiny_zoo.dataset, cache)
    preds = predict_eval(model, entry, dataset)
    expected = 100.0 * float(np.mean(preds == dataset.eval_y.numpy()))
    assert runs.loc[key, "student_acc"] == pytest.approx(expected)
    assert runs.loc[key, "epochs"] == 1
    # only the soup's ingredients kept their students (--keep-students soup, the default), and
    # each run row says what its unit left on disk
    kept = sorted(p.name.split(".")[0] for p in (folder / "students").iterdir())
    assert kept == sorted(single.values())
    for key in runs.index:
        path = transfer.student_path(folder, key)
        assert runs.loc[key, "disk_bytes"] == (path.stat().st_size if key in kept else 0)
    assert not list((folder / "checkpoints").glob("*.pt"))       # all removed once written

    again = launch(plan, folder, cache, DEBUG)
    assert all(stage["submitted"] == 0 for stage in again.values())


def test_soup_runs_its_missing_single_teacher_units(multi_results, tiny_zoo, cache, tmp_path):
    plan, folder, _ = multi_results
    soup = multi_plan(tiny_zoo, STUDENT, TEACHERS, ["soup"], singles=False)
    assert len(soup) == 1
    launch(soup, tmp_path, cache, DEBUG)
    runs = read_table(tmp_path, "transfer_runs")
    singles = runs[runs["mode"] == ""]
    assert sorted(singles["teacher"]) == sorted(TEACHERS)
    assert (singles["plan"] == soup["plan"].iloc[0]).all()
    # the same numbers as the full plan's runs of the same units
    full = read_table(folder, "transfer_runs").set_index("key")
    for row in runs.itertuples():
        assert row.student_acc == full.loc[row.key, "student_acc"]


def test_soup_state_averages_uniformly():
    a = {"w": torch.tensor([1.0, 3.0]), "n": torch.tensor(4)}
    b = {"w": torch.tensor([3.0, 5.0]), "n": torch.tensor(4)}
    soup = soup_state([a, b])
    assert soup["w"].tolist() == [2.0, 4.0] and soup["n"].dtype == torch.int64
    assert soup["n"].item() == 4


def test_sequential_resume_matches_uninterrupted(multi_results, tiny_zoo, cache, tmp_path,
                                                 killed_after_checkpoint):
    """Killed after its first checkpoint (mid-step), resumed and killed again after the next (the
    step boundary), resumed to the end: the same epochs as one uninterrupted run."""
    plan, folder, _ = multi_results
    params = resolve_params("kl_dp", tiny_zoo.transfer_defaults,
                            {"epochs": 2, "train_samples": 256, "batch_size": 64})
    unit_plan = multi_plan(tiny_zoo, STUDENT, TEACHERS, ["sequential"], {"kl_dp": params},
                                singles=False)
    unit = TransferUnit.from_row(unit_plan.iloc[0])
    for sub in ("straight", "resumed"):
        for table in ("models", "predictions"):
            (tmp_path / sub / table).mkdir(parents=True)
            for part in (folder / table).glob("*.parquet"):
                (tmp_path / sub / table / part.name).write_bytes(part.read_bytes())
    multi.run_multi(unit, tmp_path / "straight", cache)
    for saved_epochs in (1, 2):
        killed_after_checkpoint(lambda: multi.run_multi(unit, tmp_path / "resumed", cache))
        state = torch.load(transfer.checkpoint_path(tmp_path / "resumed", unit.key),
                           weights_only=True)
        assert len(state["rows"]) == saved_epochs and "frozen" in state
    multi.run_multi(unit, tmp_path / "resumed", cache)
    straight, resumed = (read_table(tmp_path / f, "transfer_epochs").sort_values("epoch")
                         .drop(columns=["images_per_s", "seconds"]).reset_index(drop=True)
                         for f in ("straight", "resumed"))
    assert straight["step"].tolist() == [0, 0, 1, 1]
    pd.testing.assert_frame_equal(straight, resumed)


# --- plans ------------------------------------------------------------------------------------

def test_version_1_plans_are_read_as_single_teacher(tiny_zoo, tmp_path):
    plan = make_plan(tiny_zoo, [tuple(TEACHERS)], {"kl": {"lr": 1.0}}, [0])
    old = pa.Table.from_pandas(plan.drop(columns=["teachers", "mode"]), preserve_index=False)
    pq.write_table(old.replace_schema_metadata({b"ktbench_plan_version": b"1"}),
                   tmp_path / "v1.parquet")
    read = read_plan(tmp_path / "v1.parquet")
    assert read["teachers"].tolist() == read["teacher"].tolist() and read["mode"].tolist() == [""]
    pq.write_table(old.replace_schema_metadata({b"ktbench_plan_version": b"9"}),
                   tmp_path / "v9.parquet")
    with pytest.raises(PlanError, match="schema version 9"):
        read_plan(tmp_path / "v9.parquet")


def test_teacher_student_pairs_expand_teacher_lists(tiny_zoo, tmp_path):
    plan = multi_plan(tiny_zoo, STUDENT, TEACHERS, ["parallel"], singles=False)
    pairs = Plan(plan).pairs
    assert sorted(pairs["teacher"]) == sorted(TEACHERS) and set(pairs["student"]) == {STUDENT}
    assert len(pending_units(plan, tmp_path)["predict"]) == 3
    written = read_plan(write_plan(plan, tmp_path / "p.parquet"))
    assert written["teachers"].tolist() == [",".join(TEACHERS)]


def test_cli_plan_multi(tiny_zoo, tmp_path, capsys):
    out = tmp_path / "p.parquet"
    spec = f"{STUDENT}:{','.join(TEACHERS)}"
    assert main(["plan", "--zoo", "tiny", "--multi", spec, "--modes", "sequential,soup",
                 "--pairs", "1", "--out", str(out), "--results", str(tmp_path)]) == 0
    plan = read_plan(out)
    assert sorted(plan.loc[plan["mode"] != "", "mode"]) == ["sequential", "soup"]
    assert set(plan.loc[plan["mode"] != "", "method"]) == {"kl_dp"}      # the multi default
    assert set(plan.loc[plan["mode"] == "", "method"]) == {"kl", "kl_dp", "xe_finetune"}  # default
    assert "2 multi-teacher" in capsys.readouterr().out
    assert main(["plan", "--zoo", "tiny", "--multi", STUDENT, "--out", str(out)]) == 2
    assert main(["plan", "--zoo", "tiny", "--multi", spec, "--modes", "parallel",
                 "--methods", "kl", "--out", str(out)]) == 2
    merged = merge_plans([plan, plan])
    assert len(merged) == len(plan) and merged["plan"].iloc[0] == plan["plan"].iloc[0]


# --- the random-init flip baseline ------------------------------------------------------------

def test_random_init_baseline(tiny_zoo, cache, tmp_path):
    stats = random_init_baseline("tiny", tmp_path, cache, names=["resnet_tiny"], seed=3)
    random = "resnet_tiny" + RANDOM_SUFFIX
    assert sorted(zip(stats["teacher"], stats["student"])) == [("resnet_tiny", random),
                                                             (random, "resnet_tiny")]
    models = read_table(tmp_path, "models").set_index("model")
    assert models.loc[random, "source"] == "random-init:seed=3"
    assert models.loc[random, "top1"] < 25             # about chance on 10 classes
    row = stats.set_index("teacher").loc[random]
    # rho(t -> s) - rho(s -> t) = acc_t - acc_s exactly
    back = stats.set_index("teacher").loc["resnet_tiny"]
    assert row["pos_flips"] - back["pos_flips"] == pytest.approx(row["acc_t"] - row["acc_s"])
