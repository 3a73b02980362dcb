"""Pair strategies over catalog tables, plan keys at scale, and the dry-run cost model."""
import math

import numpy as np
import pandas as pd
import pytest

from benchmark.cli.main import main
from pairs import get_zoo
from pairs.catalog import ModelEntry, Zoo
from pairs.catalog_table import catalog_table
from pairs.cost import ROW_BYTES, estimate_disk_bytes, estimate_gpu_hours, transfer_seconds
from pairs.keys import unit_key
from pairs.plan import Plan, PlanError, make_plan
from pairs.strategies import PAPER_STUDENTS, PAPER_TEACHERS, PairRequest, plan_pairs


def synthetic_catalog(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "name": [f"m{i:04d}" for i in range(n)], "arch": [f"arch{i % 7}" for i in range(n)],
        "family": rng.choice(["cnn", "transformer", "mlp", "hybrid"], n),
        "params_m": rng.lognormal(3, 1, n), "top1": rng.uniform(60, 90, n)})


def synthetic_zoo(table: pd.DataFrame) -> Zoo:
    return Zoo("synthetic", "imagenet", tuple(
        ModelEntry(name, "resnet50", family, 1000)
        for name, family in zip(table["name"], table["family"])))


def _set(pairs) -> set:
    return set(map(tuple, pairs))


def test_all_random_and_cross():
    table = synthetic_catalog(6)
    assert len(_set(plan_pairs("all", table, PairRequest()))) == 30
    drawn = plan_pairs("random", table, PairRequest(n=10, seed=1))
    assert len(_set(drawn)) == 10 and _set(drawn) == _set(plan_pairs("random", table,
                                                                       PairRequest(n=10, seed=1)))
    cross = plan_pairs("cross", table, PairRequest(teachers=("m0000", "m0001"),
                                                   students=("m000*",)))
    assert len(cross) == 2 * 6 - 2 and all(t != s for t, s in cross)
    with pytest.raises(ValueError, match="needs --teachers and --students"):
        plan_pairs("cross", table, PairRequest(teachers=("m0000",)))
    with pytest.raises(PlanError, match="no model matches the student list"):
        plan_pairs("cross", table, PairRequest(teachers=("m0000",), students=("zzz",)))
    with pytest.raises(ValueError, match="needs --pairs N"):
        plan_pairs("random", table, PairRequest())
    with pytest.raises(ValueError, match="unknown strategy"):
        plan_pairs("magic", table, PairRequest())


def test_stratified_spreads_pairs_evenly_over_strata():
    table = synthetic_catalog(60)
    request = PairRequest(n=400, seed=3, strata=("gap", "family"), gap_bins=(-10, 0, 10))
    pairs = plan_pairs("stratified", table, request)
    assert len(_set(pairs)) == 400 and all(t != s for t, s in pairs)
    assert _set(pairs) == _set(plan_pairs("stratified", table, request))       # seeded
    top1 = table["top1"].to_numpy()
    family = table["family"].to_numpy()
    index = {name: i for i, name in enumerate(table["name"])}

    def stratum(t, s):
        return int(np.digitize(top1[t] - top1[s], (-10, 0, 10))), family[s]
    chosen = pd.Series([stratum(index[t], index[s]) for t, s in pairs]).value_counts()
    available = pd.Series([stratum(t, s) for t in range(60) for s in range(60)
                           if t != s]).value_counts()
    # every stratum gets the same share, or all it has when it has fewer pairs
    assert set(chosen.index) == set(available.index)
    partial = chosen < available.loc[chosen.index]
    assert chosen[partial].nunique() == 1
    assert (chosen[~partial] <= chosen[partial].iloc[0]).all()


def test_stratified_treats_unknown_values_as_a_bin():
    table = synthetic_catalog(10).assign(params_m=math.nan)
    pairs = plan_pairs("stratified", table, PairRequest(n=20, strata=("size",)))
    assert len(_set(pairs)) == 20
    with pytest.raises(ValueError, match="unknown strata"):
        plan_pairs("stratified", table, PairRequest(n=5, strata=("colour",)))


def test_paper_preset_on_the_timm_catalog():
    table = catalog_table(get_zoo("timm"))
    pairs = plan_pairs("paper", table, PairRequest(seed=0))
    students, teachers = set(pairs[:, 1]), set(pairs[:, 0])
    assert students == set(PAPER_STUDENTS) and len(students) == 20
    assert len(teachers) == 20 and set(PAPER_TEACHERS) <= teachers
    assert len(pairs) == 20 * 20 - len(teachers & students)
    chosen = plan_pairs("paper", table, PairRequest(teachers=("resnet50.a1_in1k",)))
    assert set(chosen[:, 0]) == {"resnet50.a1_in1k"} and len(chosen) == 20
    with pytest.raises(PlanError, match="needs the paper's students"):
        plan_pairs("paper", synthetic_catalog(5), PairRequest())


def test_top_pairs_by_pair_stats():
    table = synthetic_catalog(4)
    stats = pd.DataFrame({"teacher": ["m0000", "m0001", "m0002", "m0000", "zzz"],
                          "student": ["m0001", "m0000", "m0003", "m0001", "m0000"],
                          "pos_flips": [5.0, 9.0, 1.0, 7.0, 50.0]})
    pairs = plan_pairs("top-stats", table, PairRequest(n=2, pair_measures=stats))
    assert pairs.tolist() == [["m0001", "m0000"], ["m0000", "m0001"]]
    with pytest.raises(PlanError, match="needs pair_stats"):
        plan_pairs("top-stats", table, PairRequest(n=2))


def test_vectorised_keys_equal_unit_key():
    table = synthetic_catalog(5)
    zoo = synthetic_zoo(table)
    methods = {"kl": {"lr": 0.1, "T": 1.0}, "kl_dp": {"lr": 0.01, "note": 'a "quoted" value'}}
    plan = make_plan(zoo, plan_pairs("all", table, PairRequest()), methods, seeds=[0, 3, 3],
                     compat="fantasticgains")
    assert len(plan) == 20 * 2 * 2 and plan["key"].is_unique
    fp = {m.name: m.fingerprint() for m in zoo.models}
    for row in plan.sample(8, random_state=0).itertuples():
        assert row.key == unit_key("transfer", teacher=fp[row.teacher], student=fp[row.student],
                                   dataset="imagenet", method=row.method, params=row.params,
                                   seed=row.seed, compat="fantasticgains")


def test_gpu_hours_grow_with_size_and_epochs():
    table = synthetic_catalog(3).assign(params_m=[10.0, 20.0, math.nan])
    zoo = synthetic_zoo(table)
    plan = make_plan(zoo, [("m0000", "m0001")], {"kl": {"epochs": 1}}, [0])
    longer = make_plan(zoo, [("m0000", "m0001")], {"kl": {"epochs": 2}}, [0])
    hours, more = estimate_gpu_hours(plan, table), estimate_gpu_hours(longer, table)
    assert 0 < hours["transfer"] < more["transfer"] and hours["predict"] == more["predict"]
    assert hours["total"] == pytest.approx(hours["predict"] + hours["transfer"])
    unknown = estimate_gpu_hours(plan.assign(dataset="elsewhere"), table)
    assert math.isnan(unknown["total"])


def _one_teacher_kl_and_kl_dp():
    """Three models of 10, 20 and 30 M parameters; m0000 teaches m0001 and m0002 with kl and
    kl_dp (2 augmented epochs); each unit's frozen models: its teacher, and with kl_dp its
    student."""
    table = synthetic_catalog(3).assign(params_m=[10.0, 20.0, 30.0])
    zoo = synthetic_zoo(table)
    methods = {m: {"epochs": 2, "augment": True} for m in ("kl", "kl_dp")}
    plan = make_plan(zoo, [("m0000", "m0001"), ("m0000", "m0002")], methods, [0])
    frozen = pd.Series([[u.teacher] + ([u.student] if u.method == "kl_dp" else [])
                        for u in plan.itertuples()], index=plan.index)
    return table, plan, frozen


def test_gpu_hours_price_frozen_passes_once_per_lockstep_group():
    """kl forwards its teacher, kl_dp its teacher and frozen student, per image and epoch with
    augmentation: in one group the teacher and each student are paid for once."""
    table, plan, frozen = _one_teacher_kl_and_kl_dp()
    alone = estimate_gpu_hours(plan, table, frozen)["transfer"]
    grouped = estimate_gpu_hours(plan, table, frozen, pd.Series(0, index=plan.index))
    # frozen parameters forwarded per image and epoch: alone 10 + 10 + (10 + 20) + (10 + 30),
    # grouped 10 + 20 + 30
    saved_s = 2 * 128_116 * (90 - 60) / (25.6 * 3000.0)
    assert alone - grouped["transfer"] == pytest.approx(saved_s / 3600)
    unaugmented = plan.assign(params=plan["params"].str.replace('"augment": true',
                                                                '"augment": false'))
    once = estimate_gpu_hours(unaugmented, table, frozen, pd.Series(0, index=plan.index))
    assert grouped["transfer"] - once["transfer"] == pytest.approx(
        128_116 * 60 / (25.6 * 3000.0) / 3600)


def test_unit_costs_share_each_frozen_pass_among_the_group_units_that_forward_it():
    """In one group the teacher m0 (10 M parameters) is forwarded for all four units, a quarter
    each; a kl_dp unit alone forwards its frozen student (m1: 20 M, m2: 30 M)."""
    table, plan, frozen = _one_teacher_kl_and_kl_dp()
    seconds = transfer_seconds(plan, table, frozen, pd.Series(0, index=plan.index))
    student_m = {"m0001": 20.0, "m0002": 30.0}
    for u in plan.itertuples():
        s = student_m[u.student]
        shared = 10.0 / 4 + (s if u.method == "kl_dp" else 0.0)
        expected = 2 * (128_116 * 3 * s + 50_000 * s + 128_116 * shared) / (25.6 * 3000.0)
        assert seconds[u.Index] == pytest.approx(expected), (u.method, u.student)
    assert seconds.sum() / 3600 == pytest.approx(
        estimate_gpu_hours(plan, table, frozen, pd.Series(0, index=plan.index))["transfer"])


def test_plan_dry_run_counts_stages_and_writes_nothing(capsys, tmp_path):
    code = main(["plan", "--zoo", "micro", "--strategy", "stratified", "--pairs", "20",
                 "--strata", "family", "--methods", "kl,kl_dp", "--dry-run",
                 "--results", str(tmp_path / "r")])
    out = capsys.readouterr().out
    assert code == 0 and "40 transfer units (20 pairs x 2 methods x 1 seeds)" in out
    assert "| transfer | 40" in out and "estimated GPU-hours" in out
    assert not list(tmp_path.iterdir())


def test_disk_estimate_counts_rows_and_kept_students():
    table = synthetic_catalog(3).assign(params_m=[10.0, 20.0, math.nan], num_classes=1000)
    zoo = synthetic_zoo(table)
    plan = make_plan(zoo, [("m0000", "m0001"), ("m0001", "m0002")], {"kl": {"epochs": 3}}, [0])
    none = estimate_disk_bytes(plan, table, pd.Series([], dtype=object))
    two = estimate_disk_bytes(plan, table, pd.Series(["m0001", "m0002"]))
    # a kept student is 4 bytes a parameter; an unknown size is priced as 25 M parameters
    assert none["students"] == 0 and two["students"] == (20 + 25) * 1e6 * 4
    rows = ROW_BYTES
    assert none["predict"] == 3 * (50_000 * rows["predictions"] + rows["models"])
    assert none["transfer"] == 2 * (rows["transfer_runs"] + 3 * rows["transfer_epochs"])
    assert none["stats"] == 2 * (rows["pair_stats"] + 1000 * rows["class_flips"])
    assert two["total"] == pytest.approx(sum(two[k] for k in ("predict", "stats", "transfer",
                                                               "students")))


def test_students_kept_by_policy(tiny_zoo):
    from tests.test_multi import multi_plan
    plan = multi_plan(tiny_zoo, "resnet_tiny", ["efficientnet_tiny", "resmlp_tiny"],
                           ["sequential", "soup"])
    singles = set(plan.loc[plan["mode"] == "", "key"])
    assert len(singles) == 2
    assert Plan(plan).kept_students("soup") == singles        # the soup's two ingredients
    assert Plan(plan).kept_students("all") == singles
    assert Plan(plan).kept_students("none") == set()
    no_soup = plan[plan["mode"] != "soup"]
    assert Plan(no_soup).kept_students("soup") == set()
    # a soup whose ingredients the plan lacks keeps them itself: still in the estimate
    soup_only = plan[plan["mode"] == "soup"]
    assert set(Plan(soup_only).soup_ingredients["key"]) == singles
    with pytest.raises(ValueError, match="none, soup, all"):
        Plan(plan).kept_students("some")


def test_plan_dry_run_prints_the_disk_estimate(capsys, tmp_path):
    spec = "resnet_tiny:efficientnet_tiny,resmlp_tiny"
    assert main(["plan", "--zoo", "tiny", "--multi", spec, "--modes", "soup", "--dry-run",
                 "--results", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    assert "| (kept)   | 2     | students |" in out and "(--keep-students soup)" in out
    assert main(["plan", "--zoo", "tiny", "--multi", spec, "--modes", "soup", "--dry-run",
                 "--keep-students", "none", "--results", str(tmp_path / "r")]) == 0
    assert "| (kept)   | 2     | students |" in capsys.readouterr().out   # the soup keeps them
    assert not list(tmp_path.iterdir())
