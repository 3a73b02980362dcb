"""The analysis: every table against numbers worked out by hand on a results folder that this test
writes with pandas alone (not with ktbench), the read-only query command, the figures, and the
report rendered in a real browser (headless Chromium).

The hand-made folder, dataset "d", 4 classes:
  teachers t1 (cnn, 10 M, 80%), t2 (transformer, 20 M, 70%), t3 (mlp, 40 M, 90%);
  students s1 (cnn, 5 M, 75%), s2 (transformer, 50 M, 72%), s3 (mlp, 100 M, 85%).
  ts_diff = acc_t - acc_s:     t1    t2    t3
                        s1     +5    -5   +15
                        s2     +8    -2   +18
                        s3     -5   -15    +5
  kl     dist_delta:    s1   +1.0  -0.5  +2.0
                        s2   -1.0  -2.0  diverged (-50)
                        s3   +0.5  failed +1.5
  kl_dp  dist_delta:    s1   +0.5  +0.25 +1.0
                        s2   +0.75 -0.25 +1.25
                        s3   +0.25  0.0  +0.5
  xe_finetune (a control arm): s1 with t1, +0.8.
  kl with compat "fantasticgains": s1 with t1, +0.9 (its own row: "kl (fantasticgains)").
  A multi-teacher kl_dp run (mode sequential, teachers t1+t2) on s1: +1.5.
  Ensemble oracle per pair: ensemble_acc = max(acc_t, acc_s) + 1, so its delta is max(ts_diff, 0) + 1.
"""
import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import TABLE_NAMES, format_table, run_query, run_tables, write_tables
from analysis.views import ANALYSIS_VIEWS_SQL
from benchmark.cli.main import main
from results import connect
from results.views import VIEWS_SQL, render_views_sql

REPO = Path(__file__).resolve().parents[1]
D = "d"
TEACHERS = {"t1": ("cnn", 10.0, 80.0), "t2": ("transformer", 20.0, 70.0), "t3": ("mlp", 40.0, 90.0)}
STUDENTS = {"s1": ("cnn", 5.0, 75.0), "s2": ("transformer", 50.0, 72.0), "s3": ("mlp", 100.0, 85.0)}
KL = {("s1", "t1"): 1.0, ("s1", "t2"): -0.5, ("s1", "t3"): 2.0,
      ("s2", "t1"): -1.0, ("s2", "t2"): -2.0, ("s2", "t3"): -50.0,
      ("s3", "t1"): 0.5, ("s3", "t2"): None, ("s3", "t3"): 1.5}
KL_STATUS = {("s2", "t3"): "diverged", ("s3", "t2"): "failed"}
KL_DP = {("s1", "t1"): 0.5, ("s1", "t2"): 0.25, ("s1", "t3"): 1.0,
         ("s2", "t1"): 0.75, ("s2", "t2"): -0.25, ("s2", "t3"): 1.25,
         ("s3", "t1"): 0.25, ("s3", "t2"): 0.0, ("s3", "t3"): 0.5}
RHO = {("s1", "t1"): (6, 1), ("s1", "t2"): (3, 8), ("s1", "t3"): (16, 1),
       ("s2", "t1"): (10, 2), ("s2", "t2"): (5, 7), ("s2", "t3"): (20, 2),
       ("s3", "t1"): (4, 9), ("s3", "t2"): (2, 17), ("s3", "t3"): (7, 2)}
# Final-epoch transfer_rate for kl_dp (nan: undefined, must be left out); kl: 50 everywhere.
KL_DP_RATE = {("s1", "t1"): 30.0, ("s1", "t2"): 40.0, ("s1", "t3"): 50.0,
              ("s2", "t1"): 20.0, ("s2", "t2"): 20.0, ("s2", "t3"): float("nan"),
              ("s3", "t1"): 60.0, ("s3", "t2"): 60.0, ("s3", "t3"): 60.0}
TOP2 = {"s1": 10.0, "s2": 20.0, "s3": 30.0}
# kl_dp's final transfer rates (transfer_rate_top{p}): 100 + TOP2 for p = 2, then 90, 80, 60 and
# twice KL_DP_RATE for p = 100; complementary_transferred per student. The kl parts predate
# these columns (the views read NULL there).
CK_TRANSFERRED = {"s1": 25.0, "s2": 50.0, "s3": 75.0}


def _rates(student, teacher):
    return dict(transfer_rate_top2=100 + TOP2[student], transfer_rate_top5=90.0,
                transfer_rate_top20=80.0, transfer_rate_top50=60.0,
                transfer_rate_top100=2 * KL_DP_RATE[(student, teacher)],
                complementary_transferred=CK_TRANSFERRED[student])
# reported top-1: t2 measures 6 points under it (flagged), s1 4 points (within 5), t1 exactly
REPORTED = {"t1": 80.0, "t2": 76.0, "s1": 79.0}


def _acc(model):
    return {**TEACHERS, **STUDENTS}.get(model, (None, None, 80.0))[2]


def _write(folder: Path, table: str, part: str, rows):
    (folder / table).mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_parquet(folder / table / f"{part}.parquet", index=False)


def _run(key, student, teacher, method, delta, status="ok", compat="", **extra):
    t0 = pd.Timestamp("2026-01-02 03:04:05", tz="UTC")
    return dict(key=key, plan="p1", teacher=teacher, student=student, method=method,
                params="{}", seed=0, dataset=D, compat=compat, status=status, epochs=2,
                acc_t=_acc(teacher), acc_s=_acc(student), ts_diff=_acc(teacher) - _acc(student),
                dist_delta=delta, error=("Traceback (most recent call last):\n  File x\n"
                                         "RuntimeError: boom\n" if status == "failed" else None),
                host="h1", job_id="j1", code_version="v1", started_at=t0,
                finished_at=t0 + pd.Timedelta(minutes=5), **extra)


def _epochs(key, top2, rate, **rates):
    """Epochs 0..2; only the last (epoch 2) holds the values the tables must use."""
    rows = []
    for epoch in range(3):
        last = epoch == 2
        rows.append(dict(key=key, epoch=epoch, dist_delta=0.0,
                         **{k: v if last else 999.0 for k, v in rates.items()},
                         top2_improve=top2 if last else 999.0,
                         top5_improve=20.0 if last else 999.0,
                         top20_improve=40.0 if last else 999.0,
                         top50_improve=70.0 if last else 999.0,
                         top100_improve=100.0 if last else 999.0,
                         transfer_rate=rate if last else 999.0))
    return rows


def make_results(folder: Path, multi=True) -> Path:
    """The hand-made results folder described in the module docstring."""
    models = [dict(key=f"m-{m}", model=m, zoo="hand", family=f, arch=m, params_m=p, source="x",
                   dataset=D, num_classes=4, top1=a, top1_reported=REPORTED.get(m), n_eval=100)
              for m, (f, p, a) in {**TEACHERS, **STUDENTS}.items()]
    _write(folder, "models", "all", models)
    stats, flips, runs, epochs, epochs_rates = [], [], [], [], []
    for (s, t), (pos, neg) in RHO.items():
        i = list(RHO).index((s, t))
        stats.append(dict(teacher=t, student=s, dataset=D, compat="", acc_t=_acc(t), acc_s=_acc(s),
                          ts_diff=_acc(t) - _acc(s), pos_flips=float(pos), neg_flips=float(neg),
                          pos_entropy=0.5 + 0.1 * i, neg_entropy=1.0, pos_classes_top2=1,
                          pos_classes_top5=1, pos_classes_top20=1 + i % 2, pos_classes_top50=2,
                          ensemble_acc=max(_acc(t), _acc(s)) + 1))
        flips += [dict(teacher=t, student=s, dataset=D, **{"class": c}, pos=pos * (c + 1), neg=1)
                  for c in range(4)]
    # The same pair under compat: must not count twice in the complementary-knowledge tables.
    stats.append({**stats[0], "compat": "fantasticgains", "pos_flips": 99.0, "pos_classes_top2": 2})
    _write(folder, "pair_stats", "all", stats)
    _write(folder, "class_flips", "all", flips)
    _write(folder, "predictions", "all", [dict(model=s, dataset=D, sample=i, label=i % 4,
                                               pred=i % 4, p_true=0.9, p_max=0.9)
                                          for s in STUDENTS for i in range(100)])
    for (s, t), delta in KL.items():
        key = f"kl-{s}-{t}"
        runs.append(_run(key, s, t, "kl", delta, KL_STATUS.get((s, t), "ok"), transfer_rate=50.0))
        if (s, t) not in KL_STATUS:
            epochs += _epochs(key, 5.0, 50.0)
    for (s, t), delta in KL_DP.items():
        key = f"kldp-{s}-{t}"
        rates = _rates(s, t)
        runs.append(_run(key, s, t, "kl_dp", delta, transfer_rate=KL_DP_RATE[(s, t)],
                         transfer_rate_top100=rates["transfer_rate_top100"],
                         complementary_transferred=rates["complementary_transferred"]))
        epochs_rates += _epochs(key, TOP2[s], KL_DP_RATE[(s, t)], **rates)
    runs.append(_run("xe-s1", "s1", "t1", "xe_finetune", 0.8))
    runs.append(_run("klc-s1-t1", "s1", "t1", "kl", 0.9, compat="fantasticgains"))
    _write(folder, "transfer_runs", "runs", runs)
    _write(folder, "transfer_epochs", "epochs", epochs)
    _write(folder, "transfer_epochs", "epochs_rates", epochs_rates)
    # A racing twin of one unit's parts: the views keep one row per key.
    _write(folder, "transfer_runs", "twin", [r for r in runs if r["key"] == "kldp-s1-t1"])
    _write(folder, "transfer_epochs", "twin",
           [e for e in epochs_rates if e["key"] == "kldp-s1-t1"])
    if multi:   # written later, with two columns the older parts do not have
        _write(folder, "transfer_runs", "multi", [_run(
            "multi-s1", "s1", "t1+t2", "kl_dp", 1.5, mode="sequential",
            teachers=json.dumps(["t1", "t2"]))])
    return folder


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return make_results(tmp_path_factory.mktemp("hand-results"))


@pytest.fixture(scope="module")
def tables(results):
    return run_tables(results)


def _rows(df, **where):
    for column, value in where.items():
        df = df[df[column] == value]
    return df


def _one(df, **where):
    rows = _rows(df, **where)
    assert len(rows) == 1, f"{where}: {len(rows)} rows\n{df}"
    return rows.iloc[0]


# --- views ---------------------------------------------------------------------------------

def test_views_sql_is_rendered_from_the_schema():
    assert VIEWS_SQL.read_text() == render_views_sql(), "run: python -m results.views"


def test_views_dedupe_and_add_missing_columns(results):
    con = connect(results)
    n, keys = con.execute("SELECT count(*), count(DISTINCT key) FROM transfer_runs").fetchone()
    assert n == keys == 9 + 9 + 1 + 1 + 1
    assert con.execute("SELECT count(*) FROM transfer_epochs").fetchone()[0] == (7 + 9) * 3
    # Parts without the new columns read as NULL there; schema columns absent from every part too.
    assert con.execute("SELECT count(*) FROM transfer_runs WHERE mode IS NULL").fetchone()[0] == 20
    assert con.execute("SELECT count(loss) FROM transfer_epochs").fetchone()[0] == 0


# --- success rate --------------------------------------------------------------------------

def test_success_rate_per_student(tables):
    df = tables["success_rate_per_student"]
    kl = _rows(df, method="kl").set_index("student")
    # s1: 2 of 3 teachers; s2: 0 of 3 (the diverged run counts, as unsuccessful);
    # s3: 2 of 2 (the failed run has no result).
    assert kl["runs"].tolist() == [3, 3, 2]
    assert kl["successes"].tolist() == [2, 0, 2]
    assert kl["success"].tolist() == [66.7, 0.0, 100.0]
    assert kl["diverged"].tolist() == [0, 1, 0] and kl["failed"].tolist() == [0, 0, 1]
    # kl_dp on s3: a delta of exactly 0 is not a success.
    assert _one(df, method="kl_dp", student="s3")["success"] == 66.7


def test_success_rate_median_mean_iqr(tables):
    df = tables["success_rate"]
    kl = _one(df, method="kl")
    # per student [66.67, 0, 100]: median 66.7, mean 55.6; numpy-style quartiles 33.3 and 83.3.
    assert (kl["students"], kl["runs"]) == (3, 8)
    assert (kl["median_success"], kl["mean_success"]) == (66.7, 55.6)
    assert (kl["q25_success"], kl["q75_success"], kl["iqr_success"]) == (33.3, 83.3, 50.0)
    assert (kl["diverged"], kl["failed"]) == (1, 1)
    kl_dp = _one(df, method="kl_dp")
    # per student [100, 66.67, 66.67]; the multi-teacher run is not a single-teacher run.
    assert (kl_dp["students"], kl_dp["runs"]) == (3, 9)
    assert (kl_dp["median_success"], kl_dp["mean_success"]) == (66.7, 77.8)
    assert (kl_dp["q25_success"], kl_dp["q75_success"], kl_dp["iqr_success"]) == (66.7, 83.3, 16.7)
    assert _one(df, method="xe_finetune")["median_success"] == 100.0
    assert _one(df, method="kl (fantasticgains)")["students"] == 1
    # sorted by median success, best first
    assert df["method"].tolist() == ["kl (fantasticgains)", "xe_finetune", "kl", "kl_dp"]
    ref = [np.median([200 / 3, 0, 100]), np.percentile([200 / 3, 0, 100], 25)]
    assert [round(v, 1) for v in ref] == [66.7, 33.3]


def test_success_rate_intervals_resample_students(tables):
    df = tables["success_rate"].set_index("method")
    # kl_dp per student [100, 66.7, 66.7]: a resample of 3 has median 66.7 (20/27) or 100 (7/27);
    # mean 66.7 (8/27), 77.8 (12/27), 88.9 (6/27) or 100 (1/27)
    assert df.loc["kl_dp", ["median_success_lo", "median_success_hi"]].tolist() == [66.7, 100.0]
    assert df.loc["kl_dp", "mean_success_lo"] == 66.7
    assert 88.9 <= df.loc["kl_dp", "mean_success_hi"] <= 100.0
    # kl per-student mean delta [0.83, -1.5, 1.0]: mean 0.11. Resampled means, lowest first:
    # -1.5 (all s2, 1/27), -0.72 (two s2 and s1, 3/27), ...; highest: 1.0 (1/27), 0.94 (3/27)
    kl = df.loc["kl"]
    assert kl["mean_delta"] == 0.11
    assert -1.5 <= kl["mean_delta_lo"] <= -0.72 and 0.94 <= kl["mean_delta_hi"] <= 1.0
    # one student: no interval
    assert df.loc["xe_finetune", ["median_success_lo", "mean_delta_hi"]].isna().all()
    assert set(df["ci95_over"]) == {"students"} and not any(c.startswith("boot_") for c in df)
    prov = dict(zip(tables["provenance"]["item"], tables["provenance"]["value"]))
    assert prov["training seeds per pair"].startswith("1 (one run per pair")


def test_paper_reference_beside_the_hand_made_run(tables):
    ref = tables["paper_reference"].set_index("check")
    row = ref.loc["KL+DP gains more than KL (mean per-student delta)"]
    assert (row["paper"], row["run"], row["agrees"]) == \
        ("kl_dp 0.32 > kl -0.3", "kl_dp 0.47 > kl 0.11", "yes")
    assert ref.loc["KL+DP succeeds more often than KL (median success)", "agrees"] == "tie"
    # transformer student s2: 66.7; cnn student s1: 100 -- the other way round from the paper
    assert ref.loc["KL+DP: transformer students succeed more often than CNN students",
                   "agrees"] == "no"
    # the paper's 92.5 lies inside kl_dp's [66.7, 100]; rho_pos per ts_diff bin: teachers 3 to 15
    # points weaker hold 3, 4 and 2 (s1<-t2, s3<-t1, s3<-t2): at least about 2%
    assert ref.loc["median success % of kl_dp", "agrees"] == "inside the interval"
    assert ref.loc["smallest rho_pos at least about 2%, teacher - student accuracy [-15, -3]",
                   ["paper", "run", "agrees"]].tolist() == [">= 2", "smallest rho_pos 2", "yes"]
    # facts about methods the run lacks are left out
    assert "median success % of cd" not in ref.index and "not in this run" not in set(ref["agrees"])


def test_success_rate_by_family(tables):
    df = _rows(tables["success_rate_by_family"], method="kl").set_index("family")
    assert df.loc["cnn", "median_success"] == 66.7
    assert df.loc["transformer", "median_success"] == 0.0
    assert df.loc["mlp", "median_success"] == 100.0
    assert df.loc["transformer", "diverged"] == 1 and df.loc["mlp", "failed"] == 1


# --- per-student ("full ImageNet") table ---------------------------------------------------

def test_full_imagenet_table(tables):
    df = tables["full_imagenet"].set_index("student")
    assert df.loc["s1", "family"] == "cnn" and df.loc["s1", "acc"] == 75.0
    assert df.loc["s3", "params_m"] == 100.0
    # kl on s1: mean of [1, -0.5, 2] = 0.83, population std 1.03
    assert df.loc["s1", "kl"] == "+0.83 ± 1.03 (3)"
    assert df.loc["s2", "kl"] == "-1.50 ± 0.50 (2) [1 diverged]"
    assert df.loc["s3", "kl"] == "+1.00 ± 0.50 (2) [1 failed]"
    assert df.loc["s1", "kl_dp"] == "+0.58 ± 0.31 (3)"
    assert df.loc["s2", "kl_dp"] == "+0.58 ± 0.62 (3)"
    assert df.loc["s3", "kl_dp"] == "+0.25 ± 0.20 (3)"
    assert df.loc["s1", "xe_finetune"] == "+0.80 ± 0.00 (1)"
    assert pd.isna(df.loc["s2", "xe_finetune"])
    assert round(np.std([1.0, -0.5, 2.0]), 2) == 1.03


# --- transfer delta by ts_diff ------------------------------------------------------------

def test_delta_by_fixed_ts_diff_bins(tables):
    df = tables["delta_by_ts_diff"]
    kl = _rows(df, method="kl").set_index("ts_diff_bin")
    assert kl.index.tolist() == ["[-15, -3]", "(-3, -1]", "(3, 15]", "> 15"]
    # [-15, -3]: ok [-0.5, 0.5] and the failed run at exactly -15
    assert kl.loc["[-15, -3]", ["runs", "mean_delta", "std_delta", "failed"]].tolist() == \
        [2, 0.0, 0.5, 1]
    assert kl.loc["(-3, -1]", ["runs", "mean_delta", "std_delta"]].tolist() == [1, -2.0, 0.0]
    # (3, 15]: [1.0, 2.0, -1.0, 1.5] -> 0.875 +- 1.139 (ts_diff 15 is in, 18 is out)
    assert kl.loc["(3, 15]", ["runs", "mean_delta", "std_delta"]].tolist() == [4, 0.88, 1.14]
    # > 15: only the diverged run, counted and not averaged
    assert kl.loc["> 15", "runs"] == 0 and pd.isna(kl.loc["> 15", "mean_delta"])
    assert kl.loc["> 15", "diverged"] == 1
    kl_dp = _rows(df, method="kl_dp").set_index("ts_diff_bin")
    # [-15, -3] includes -15: [0.25, 0.25, 0.0]
    assert kl_dp.loc["[-15, -3]", ["runs", "mean_delta", "std_delta"]].tolist() == [3, 0.17, 0.12]
    assert kl_dp.loc["(3, 15]", ["runs", "mean_delta", "std_delta"]].tolist() == [4, 0.69, 0.21]


def _curve_reference(ok: pd.DataFrame, method: str) -> pd.Series:
    """The official recipe (rebuttal.py::dist_delta_line_plot_v3) with pandas and numpy."""
    bins = pd.cut(ok["ts_diff"], bins=8)
    rows = ok[ok["method"] == method].assign(bin=bins.cat.codes + 1)
    out = {}
    for b, group in rows.groupby("bin"):
        q = np.quantile(group["dist_delta"], 0.75)
        out[b] = group.loc[group["dist_delta"] >= q, "dist_delta"].mean()
    return pd.Series(out)


def test_delta_curve_eight_bins_upper_quartile(results, tables):
    df = tables["delta_by_ts_diff_curve"]
    kl_dp = _rows(df, method="kl_dp").set_index("bin")
    # ts_diff of the ok runs spans [-15, 18]: width 33/8 = 4.125
    assert kl_dp.loc[1, ["ts_diff_lo", "ts_diff_hi"]].tolist() == [-15.0, -10.875]
    assert kl_dp.index.tolist() == [1, 3, 4, 5, 6, 8]
    # bin 8 holds ts_diff 15 and 18: [1.0, 1.25]; 75th percentile 1.1875; upper mean 1.25
    assert kl_dp.loc[8, ["runs", "mean_delta", "q75_delta", "upper_quartile_mean"]].tolist() == \
        [2, 1.125, 1.188, 1.25]
    kl = _rows(df, method="kl").set_index("bin")
    # bin 3 (ts_diff -5): [-0.5, 0.5] -> q75 0.25 -> mean of [0.5]; bin 5 (ts_diff 5): [1.0, 1.5]
    assert kl.loc[3, "upper_quartile_mean"] == 0.5 and kl.loc[5, "upper_quartile_mean"] == 1.5
    oracle = _rows(df, method="(ensemble oracle)").set_index("bin")
    assert oracle.loc[8, "upper_quartile_mean"] == 19.0   # pairs at +15 and +18: 16 and 19
    # and the same numbers from the official recipe
    ok = run_query(results, "SELECT CASE compat WHEN '' THEN method ELSE method || ' (' || compat "
                            "|| ')' END AS method, ts_diff, dist_delta FROM transfer_runs "
                            "WHERE status = 'ok' AND mode IS NULL")
    for method in ("kl", "kl_dp"):
        ref = _curve_reference(ok, method)
        got = _rows(df, method=method).set_index("bin")["upper_quartile_mean"]
        assert got.index.tolist() == ref.index.tolist()
        assert np.allclose(got.to_numpy(), ref.round(3).to_numpy())


# --- complementary knowledge ------------------------------------------------------------------

def test_complementary_knowledge(tables):
    row = _one(tables["complementary_knowledge"], dataset=D)
    # 9 pairs; the compat duplicate (rho_pos 99) does not count
    assert row["pairs"] == 9
    assert (row["min_rho_pos"], row["median_rho_pos"], row["max_rho_pos"]) == (2, 6, 20)
    assert (row["min_rho_neg"], row["median_rho_neg"], row["max_rho_neg"]) == (1, 2, 17)
    by = tables["complementary_knowledge_by_ts_diff"].set_index("ts_diff_bin")
    assert by.index.tolist() == ["[-15, -3]", "(-3, -1]", "(3, 15]", "> 15"]
    assert by.loc["[-15, -3]", ["pairs", "min_rho_pos", "mean_rho_pos", "max_rho_pos"]].tolist() \
        == [3, 2, 3, 4]
    assert by.loc["(3, 15]", ["pairs", "mean_rho_pos", "max_rho_neg"]].tolist() == [4, 9.75, 2]


def test_class_concentration(tables):
    df = tables["class_concentration"].set_index("compat")
    row = df.loc[""]
    assert (row["pairs"], row["classes"], row["uniform_entropy"]) == (9, 4, round(math.log(4), 3))
    assert (row["mean_pos_entropy"], row["median_pos_entropy"]) == (0.9, 0.9)
    # top-20% counts alternate 1, 2, 1, ...: five 1s and four 2s
    assert row["mean_top20_classes"] == round(13 / 9, 2)
    assert (row["mean_top50_classes"], row["top50_classes_pct"]) == (2, 50.0)
    assert df.loc["fantasticgains", "pairs"] == 1
    assert df.loc["fantasticgains", "mean_top2_classes"] == 2


# --- where transfer lands ---------------------------------------------------------------------

def test_transfer_rate_by_top_classes(tables):
    df = _rows(tables["transfer_rate_by_top_classes"], method="kl_dp").set_index("family")
    assert df.index.tolist() == ["all", "cnn", "mlp", "transformer"]
    # final epoch only (earlier epochs hold 999); top2 per student family 10 / 20 / 30
    assert df.loc["all", "runs"] == 9 and df.loc["all", "top2_improve"] == 20.0
    assert df.loc["cnn", "top2_improve"] == 10.0 and df.loc["mlp", "top2_improve"] == 30.0
    assert df.loc["all", ["top5_improve", "top50_improve", "top100_improve"]].tolist() == \
        [20.0, 70.0, 100.0]
    # transfer rate: [30, 40, 50, 20, 20, 60, 60, 60] (the nan left out) -> 42.5
    assert df.loc["all", "transfer_rate"] == 42.5 and df.loc["transformer", "transfer_rate"] == 20
    # the authors' plotted rate TR_p: 110 / 120 / 130 per family at p = 2; at p = 100 twice the
    # logged rates above, the nan left out -> 85
    assert df.loc["all", [f"transfer_rate_top{p}" for p in (2, 5, 20, 50, 100)]].tolist() == \
        [120.0, 90.0, 80.0, 60.0, 85.0]
    assert df.loc["cnn", "transfer_rate_top2"] == 110.0
    assert df.loc["transformer", "transfer_rate_top100"] == 40.0
    assert df.loc["all", "complementary_transferred"] == 50.0
    assert df.loc["mlp", "complementary_transferred"] == 75.0
    kl = _one(tables["transfer_rate_by_top_classes"], method="kl", family="all")
    assert (kl["runs"], kl["transfer_rate"]) == (7, 50.0)     # diverged and failed runs left out
    # parts written before the transfer-rate columns existed: no value, the rest still there
    assert kl[["transfer_rate_top2", "transfer_rate_top100",
               "complementary_transferred"]].isna().all()


def test_transfer_rate_by_student_params(tables):
    df = _rows(tables["transfer_rate_by_student_params"], method="kl_dp").set_index("student")
    assert df["params_m"].tolist() == [5.0, 50.0, 100.0]
    # the plotted rate: twice the logged one, s1 [60, 80, 100]; its quartiles by interpolation
    assert df.loc["s1", ["transfer_rate_top100", "q25_transfer_rate_top100",
                         "q75_transfer_rate_top100"]].tolist() == [80.0, 70.0, 90.0]
    assert df.loc["s1", "transfer_rate"] == 40.0                  # the logged rate, beside it
    assert df.loc["s2", ["runs", "transfer_rate_top100", "transfer_rate"]].tolist() == \
        [3, 40.0, 20.0]
    assert df.loc["s3", ["transfer_rate_top100", "complementary_transferred"]].tolist() == \
        [120.0, 75.0]
    kl = _rows(tables["transfer_rate_by_student_params"], method="kl")
    assert kl["transfer_rate_top100"].isna().all() and (kl["transfer_rate"] == 50.0).all()


# --- correlations -----------------------------------------------------------------------------

def test_correlations_match_numpy(tables):
    df = tables["correlations"].set_index("method")
    family = {"transformer": 0, "cnn": 1, "mlp": 2}
    pairs = [(s, t) for (s, t) in KL_DP]
    delta = np.array([KL_DP[p] for p in pairs])
    expected = {
        "teacher_params": [TEACHERS[t][1] for s, t in pairs],
        "teacher_acc": [TEACHERS[t][2] for s, t in pairs],
        "teacher_family": [family[TEACHERS[t][0]] for s, t in pairs],
        "student_params": [STUDENTS[s][1] for s, t in pairs],
        "student_acc": [STUDENTS[s][2] for s, t in pairs],
        "student_family": [family[STUDENTS[s][0]] for s, t in pairs],
    }
    assert df.loc["kl_dp", "runs"] == 9
    for column, values in expected.items():
        r = np.corrcoef(delta, values)[0, 1]
        assert df.loc["kl_dp", column] == round(r, 3), column
    # one run: every correlation undefined, shown empty (not nan, not an error)
    assert df.loc["kl (fantasticgains)", ["teacher_params", "student_acc"]].isna().all()


# --- controls, oracle, multi-teacher, bookkeeping -----------------------------------------------

def test_methods_beside_controls_and_oracle(tables):
    df = tables["methods_vs_controls"]
    # methods by mean delta, then the control, then the oracle
    assert df["method"].tolist() == ["kl (fantasticgains)", "kl_dp", "kl", "xe_finetune",
                                     "(ensemble oracle)"]
    kinds = dict(zip(df["method"], df["kind"]))
    assert kinds == {"kl_dp": "method", "kl": "method", "kl (fantasticgains)": "method",
                     "xe_finetune": "control", "(ensemble oracle)": "oracle"}
    kl = _one(df, method="kl")
    # ok deltas [1, -0.5, 2, -1, -2, 0.5, 1.5]: mean 0.21, median 0.5; success 4 of 8 (ok+diverged)
    assert kl[["runs", "students", "mean_delta", "median_delta", "success"]].tolist() == \
        [7, 3, 0.21, 0.5, 50.0]
    assert (kl["diverged"], kl["failed"]) == (1, 1)
    kl_dp = _one(df, method="kl_dp")
    assert kl_dp[["runs", "mean_delta", "median_delta", "success"]].tolist() == [9, 0.47, 0.5, 77.8]
    oracle = _one(df, method="(ensemble oracle)")
    # one row per pair (the compat duplicate of s1-t1 once): [6,1,16,9,1,19,1,1,6]
    assert oracle[["runs", "students", "mean_delta", "median_delta", "success"]].tolist() == \
        [9, 3, 6.67, 6.0, 100.0]
    assert df["kind"].tolist() == ["method"] * 3 + ["control", "oracle"]


def test_pair_deltas_pivot(tables):
    df = tables["pair_deltas"].set_index(["student", "teacher"])
    assert len(df) == 9
    assert df.loc[("s2", "t3"), "kl"] == "-50.00!"
    assert df.loc[("s3", "t2"), "kl"] == "failed"
    assert df.loc[("s1", "t1"), "kl_dp"] == "+0.50"
    assert df.loc[("s1", "t1"), "(ensemble oracle)"] == "+6.00"
    assert df.loc[("s1", "t1"), "rho_pos"] == 6      # the default row, not the compat one
    assert df.loc[("s1", "t1"), "kl (fantasticgains)"] == "+0.90"


def test_multi_teacher(tables, tmp_path):
    row = _one(tables["multi_teacher"], student="s1")
    assert row["mode"] == "sequential" and json.loads(row["teachers"]) == ["t1", "t2"]
    assert (row["method"], row["dist_delta"]) == ("kl_dp", 1.5)
    # beside the best and the mean single-teacher kl_dp delta of s1: 1.0 and 0.58
    assert (row["best_single_teacher_delta"], row["mean_single_teacher_delta"]) == (1.0, 0.58)
    # before any run has the `mode` and `teachers` columns: empty, not an error
    plain = run_tables(make_results(tmp_path, multi=False), ["multi_teacher", "success_rate"])
    assert plain["multi_teacher"].empty and len(plain["success_rate"]) == 4


def test_run_status_and_not_ok_runs(tables):
    status = tables["run_status"].set_index("method")
    assert status.loc["kl", ["runs", "ok", "diverged", "failed"]].tolist() == [9, 7, 1, 1]
    assert status.loc["kl_dp", ["runs", "ok"]].tolist() == [10, 10]    # 9 + the multi-teacher run
    bad = tables["runs_not_ok"]
    assert bad["status"].tolist() == ["diverged", "failed"]
    assert bad["student"].tolist() == ["s2", "s3"]
    assert bad["error"].tolist()[1] == "RuntimeError: boom"


def test_model_accuracy_flags_models_over_five_points_off(tables):
    acc = tables["model_accuracy"].set_index("model")
    assert acc.index[0] == "t2" and acc.loc["t2", "gap"] == -6.0 and acc.loc["t2", "flagged"]
    assert acc.loc["s1", "gap"] == -4.0 and not acc.loc["s1", "flagged"]
    assert acc.loc["t1", "gap"] == 0.0 and not acc["flagged"].drop("t2").any()
    assert acc.loc["s3", "gap"] != acc.loc["s3", "gap"]          # nothing reported: no gap


def test_provenance(tables):
    prov = dict(zip(tables["provenance"]["item"], tables["provenance"]["value"]))
    assert prov["zoos"] == "hand" and prov["datasets"] == D and prov["plans"] == "p1"
    assert prov["code versions"] == "v1" and prov["transfer runs"] == "21"
    assert prov["first run started (UTC)"] == "2026-01-02 03:04:05"
    assert prov["last run finished (UTC)"] == "2026-01-02 03:09:05"


def test_every_table_runs_on_an_empty_folder(tmp_path):
    tables = run_tables(tmp_path / "nothing-here")
    assert set(tables) == set(TABLE_NAMES)
    assert all(df.empty for name, df in tables.items()
               if name not in ("provenance", "paper_reference"))
    # the paper's facts are listed all the same, with nothing of the run beside them
    assert set(tables["paper_reference"]["agrees"]) == {"not in this run"}


# --- the SQL needs nothing but DuckDB and the folder ------------------------------------------

def test_sql_files_run_with_duckdb_alone(results, tables):
    """views.sql (results', then the analysis's) + a table's SQL, in a Python that imports only
    duckdb, give the same table."""
    script = (
        "import sys, duckdb\n"
        "con = duckdb.connect()\n"
        "con.execute('SET VARIABLE results = ?', [sys.argv[1]])\n"
        "con.execute(open(sys.argv[2]).read())\n"
        "con.execute(open(sys.argv[3]).read())\n"
        "con.execute(open(sys.argv[4]).read()).df().to_json(sys.stdout, orient='split')\n")
    for name in ("success_rate", "full_imagenet", "delta_by_ts_diff_curve"):
        out = subprocess.run(
            [sys.executable, "-I", "-c", script, str(results), str(VIEWS_SQL),
             str(ANALYSIS_VIEWS_SQL), str(REPO / "analysis" / "sql" / f"{name}.sql")],
            capture_output=True, text=True, check=True, cwd=results)
        got = pd.read_json(__import__("io").StringIO(out.stdout), orient="split")
        # DuckDB gives every estimate and the units behind it (boot_*); ktbench adds the intervals
        kept = [c for c in got if not c.startswith("boot_")]
        added = [c for c in tables[name] if c not in kept]
        assert len(got) == len(tables[name]) and kept == [c for c in tables[name] if c in kept]
        assert set(added) <= {f"{c}_{side}" for c in kept for side in ("lo", "hi")} | {"ci95_over"}
        assert bool(added) == any(c.startswith("boot_") for c in got) == (name == "success_rate")


@pytest.mark.skipif(shutil.which("duckdb") is None, reason="the duckdb CLI is not installed")
def test_sql_files_run_in_the_duckdb_cli(results):
    out = subprocess.run(
        ["duckdb", "-csv", "-c", f"SET VARIABLE results = '{results}'",
         "-c", f".read {VIEWS_SQL}", "-c", f".read {ANALYSIS_VIEWS_SQL}",
         "-c", f".read {REPO / 'analysis/sql/success_rate.sql'}"],
        capture_output=True, text=True, check=True)
    assert "kl_dp,3,9,66.7,77.8,66.7,83.3,16.7,0,0" in out.stdout


def test_every_table_reads_runs_through_the_one_definition():
    """A transfer run, and how a compat mode labels its method, are defined once
    (analysis/views.sql): no table reads transfer_runs itself, and nothing else in analysis/
    spells the label."""
    label = re.compile(r"'\s*\(\s*'\s*\|\|\s*compat")
    files = [p for p in (REPO / "analysis").rglob("*") if p.suffix in (".sql", ".py")]
    spelled = [p.name for p in files if label.search(p.read_text()) and p != ANALYSIS_VIEWS_SQL]
    assert not spelled and label.search(ANALYSIS_VIEWS_SQL.read_text())
    code = {p.name: re.sub(r"--[^\n]*", "", p.read_text())
            for p in (REPO / "analysis" / "sql").glob("*.sql")}
    assert not [name for name, sql in code.items() if re.search(r"\btransfer_runs\b", sql)]


def test_query_reads_the_analysis_views(results):
    got = run_query(results, "SELECT method, base_method, count(*) AS n FROM single_runs "
                             "WHERE student = 's1' AND teacher = 't1' GROUP BY ALL ORDER BY method")
    assert got.values.tolist() == [["kl", "kl", 1], ["kl (fantasticgains)", "kl", 1],
                                   ["kl_dp", "kl_dp", 1], ["xe_finetune", "xe_finetune", 1]]
    assert run_query(results, "SELECT count(*) AS n FROM runs WHERE NOT single_teacher")["n"][0] == 1


# --- formats and commands ---------------------------------------------------------------------

def test_formats():
    df = pd.DataFrame({"method": ["kl_dp", "a|b"], "cell": ["+0.5 ± 0.1", "x%"],
                       "n": [1, 2], "v": [0.5, float("nan")]})
    md = format_table(df, "markdown").splitlines()
    assert md[0].startswith("| method") and "a\\|b" in md[3] and md[3].rstrip().endswith("|")
    tex = format_table(df, "latex")
    assert r"\begin{tabular}{llrr}" in tex and r"kl\_dp" in tex and r"$\pm$" in tex
    assert r"x\%" in tex and tex.endswith(r"\end{tabular}")
    assert format_table(df, "csv").splitlines()[0] == "method,cell,n,v"
    with pytest.raises(ValueError):
        format_table(df, "html")


def test_formats_of_an_arrow_table():
    """The Arrow way in (`ktbench query`): None and NaN empty, CSV quoted where needed, numbers
    right-aligned in LaTeX; the same table through pandas reads the same."""
    import pyarrow as pa
    table = pa.table({"n": [1, 22, 3], "v": [0.5, None, float("nan")],
                      "s": ["a,b", 'say "hi"', "x_y"]})
    expected = {
        "markdown": "\n".join(["| n  | v   | s        |",
                               "|----|-----|----------|",
                               "| 1  | 0.5 | a,b      |",
                               '| 22 |     | say "hi" |',
                               "| 3  |     | x_y      |"]),
        "csv": "\n".join(["n,v,s", '1,0.5,"a,b"', '22,,"say ""hi"""', "3,,x_y"]),
        "latex": "\n".join([r"\begin{tabular}{rrl}", r"\toprule", r"n & v & s \\", r"\midrule",
                            r"1 & 0.5 & a,b \\", r'22 &  & say "hi" \\', r"3 &  & x\_y \\",
                            r"\bottomrule", r"\end{tabular}"]),
    }
    for fmt, text in expected.items():
        assert format_table(table, fmt) == text, fmt
        assert format_table(table.to_pandas(), fmt) == text, fmt


def test_tables_command_writes_every_format(results, tmp_path, capsys):
    assert main(["tables", "--results", str(results), "--format", "latex",
                 "--out", str(tmp_path / "tex")]) == 0
    assert sorted(p.stem for p in (tmp_path / "tex").glob("*.tex")) == sorted(TABLE_NAMES)
    written = write_tables(results, tmp_path / "csv", "csv", ["success_rate"])
    assert pd.read_csv(written[0])["method"].tolist()[-1] == "kl_dp"
    capsys.readouterr()
    assert main(["tables", "--results", str(results), "--table", "run_status"]) == 0
    out = capsys.readouterr().out
    assert "## run_status" in out and "success_rate" not in out


def test_query_prints_and_writes(results, tmp_path, capsys):
    sql = "SELECT method, count(*) AS n FROM transfer_runs GROUP BY method ORDER BY method"
    assert main(["query", "--results", str(results), sql]) == 0
    assert "| kl_dp" in capsys.readouterr().out
    for ext in ("csv", "parquet"):
        out = tmp_path / f"q.{ext}"
        assert main(["query", "--results", str(results), sql, "--out", str(out)]) == 0
        df = pd.read_csv(out) if ext == "csv" else pd.read_parquet(out)
        assert df.set_index("method")["n"].to_dict() == {
            "kl": 10, "kl_dp": 10, "xe_finetune": 1}
    pivot = "PIVOT transfer_runs ON status USING count(*) GROUP BY method ORDER BY method"
    assert main(["query", "--results", str(results), pivot]) == 0
    assert "diverged" in capsys.readouterr().out


@pytest.mark.parametrize("sql", [
    "COPY (SELECT * FROM transfer_runs) TO '{dir}/stolen.csv'",
    "ATTACH '{dir}/other.duckdb' AS other",
    "CREATE TABLE t AS SELECT 1",
    "INSTALL httpfs",
    "LOAD httpfs",
    "SET enable_external_access = true",
    "PRAGMA version",
    "EXPORT DATABASE '{dir}/dump'",
    "SELECT 1; COPY (SELECT 1) TO '{dir}/x.csv'",
    "SELECT * FROM read_csv('/etc/hostname')",
])
def test_query_refuses_writes_and_outside_files(results, tmp_path, capsys, sql):
    code = main(["query", "--results", str(results), sql.format(dir=results)])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and err.startswith("ktbench: error: ")
    assert not any(p.name in ("stolen.csv", "other.duckdb", "dump", "x.csv")
                   for p in Path(results).iterdir())


# --- figures and report -----------------------------------------------------------------------

def test_figures_are_written_as_png_and_pdf(results, tmp_path, capsys):
    from analysis.figures import FIGURES
    assert main(["figures", "--results", str(results), "--out", str(tmp_path / "fig")]) == 0
    for name in FIGURES:
        png, pdf = tmp_path / "fig" / f"{name}.png", tmp_path / "fig" / f"{name}.pdf"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000, name
        assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 1000, name


def test_figures_without_data_say_so(tmp_path):
    from analysis.figures import make_figures
    written = make_figures(tmp_path / "empty", tmp_path / "fig", formats=("png",),
                           names=["complementary_knowledge", "success_rate"])
    assert [p.stat().st_size > 1000 for p in written] == [True, True]


def test_figures_bind_only_the_tables_they_read(results, tmp_path):
    from analysis.figures import FigureData
    folder = tmp_path / "results"
    shutil.copytree(results, folder)
    # an unreadable file in a table no figure reads: binding every table would fail on it
    (folder / "class_embeddings").mkdir(exist_ok=True)
    (folder / "class_embeddings" / "junk.parquet").write_bytes(b"not parquet")
    data = FigureData(folder)
    assert data.dataset is not None and not data.pairs.empty
    assert data.tables["success_rate"].equals(FigureData(results).tables["success_rate"])


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


@pytest.fixture(scope="module")
def report(results, tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "report.html"
    assert main(["report", "--results", str(results), "--out", str(out)]) == 0
    return out


def test_report_is_self_contained(report):
    from analysis.figures import FIGURES
    text = report.read_text()
    assert text.count('src="data:image/png;base64,') == len(FIGURES)
    assert "http://" not in text and "https://" not in text
    for name in TABLE_NAMES:
        assert f'id="table-{name}"' in text or name == "provenance", name
    assert "plans</dt><dd>p1" in text and "code versions</dt><dd>v1" in text


@pytest.mark.skipif(_chromium() is None,
                    reason="Chromium is not installed (Debian: apt-get install chromium)")
def test_report_renders_in_headless_chromium(report, tmp_path):
    from PIL import Image, ImageStat
    from analysis.figures import FIGURES
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-dev-shm-usage"]
    url = report.as_uri()
    shot = tmp_path / "report.png"
    env = {**os.environ, "HOME": str(tmp_path)}
    subprocess.run([_chromium(), *flags, f"--user-data-dir={tmp_path / 'a'}",
                    f"--screenshot={shot}", "--window-size=1200,3000", url],
                   capture_output=True, timeout=120, check=True, env=env)
    dom = subprocess.run([_chromium(), *flags, f"--user-data-dir={tmp_path / 'b'}",
                          "--dump-dom", url],
                         capture_output=True, text=True, timeout=120, check=True, env=env).stdout
    n = len(FIGURES)
    assert f'data-images-loaded="{n}/{n}"' in dom and 'data-images-ok="true"' in dom
    image = Image.open(shot).convert("L")
    assert image.size == (1200, 3000)
    stat = ImageStat.Stat(image)
    assert stat.stddev[0] > 20, f"screenshot looks blank (pixel std {stat.stddev[0]:.1f})"
    keep = os.environ.get("KTBENCH_REPORT_SCREENSHOT")
    if keep:
        shutil.copy(shot, keep)
