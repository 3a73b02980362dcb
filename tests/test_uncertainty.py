"""Intervals, seeds and controls: the bootstrap against exact and independent computations, the
paired tests against hand-computed exact p-values, and the tables that use them on a small
results folder written here with pandas:

  dataset "g", students s1, s2, s3 and teachers t1, t2: six pairs, in the order
  (s1,t1) (s1,t2) (s2,t1) (s2,t2) (s3,t1) (s3,t2).
  xe_finetune (a control): +0.5 on every pair, seed 0.
  kl_dp: +1.5, +2.5, +3.5, +4.5, +5.5, +6.5 (seed 0), so kl_dp - xe_finetune = 1, 2, ..., 6.
  (s1,t1) also ran seed 1: kl_dp +1.2, xe_finetune +0.2 (a gain of 1.0 again).
"""
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis import run_tables
from analysis.uncertainty import bootstrap, paired_tests, smallest_p, verdict

PAIRS = [("s1", "t1"), ("s1", "t2"), ("s2", "t1"), ("s2", "t2"), ("s3", "t1"), ("s3", "t2")]
FAMILY = {"s1": "cnn", "s2": "transformer", "s3": "mlp", "t1": "cnn", "t2": "cnn"}


# --- the bootstrap ------------------------------------------------------------------------------

def test_bootstrap_of_two_units_spans_both():
    # resampled means of [0, 100]: 0 (1/4), 50 (1/2), 100 (1/4): the 2.5th and 97.5th percentiles
    assert bootstrap([0.0, 100.0]) == (0.0, 100.0)
    assert bootstrap([0.0, 100.0], "median") == (0.0, 100.0)


def test_bootstrap_of_a_ratio_resamples_whole_units():
    # per-unit means 2/1 and 6/3 are equal: every resample's ratio is 2, whatever its mix
    assert bootstrap([2.0, 6.0], "ratio", weights=[1.0, 3.0]) == (2.0, 2.0)
    # shares 1/1 and 0/1: resampled shares 1, 1/2, 0
    assert bootstrap([1.0, 0.0], "ratio", weights=[1.0, 1.0]) == (0.0, 1.0)


def test_bootstrap_needs_two_units_and_is_deterministic():
    assert all(np.isnan(bootstrap(v)).all() for v in ([], [3.0], None))
    values = np.random.default_rng(3).normal(size=25)
    assert bootstrap(values, name="a") == bootstrap(values.copy(), name="a")


def test_bootstrap_ignores_the_last_bits_of_its_values():
    # a mean summed by DuckDB's threads in another order differs in its last bits: the interval
    # must not (its seed comes from the values); a different value gives another stream
    values = np.random.default_rng(5).normal(size=1000)
    noisy = values * (1 + np.random.default_rng(6).choice([-1, 1], 1000) * 2.0**-50)
    assert (noisy != values).any()
    # the same resamples (a resampled mean moves by the last bits only; another stream would
    # move the interval by about a tenth of a standard error, 3e-3 here)
    assert bootstrap(noisy, name="a") == pytest.approx(bootstrap(values, name="a"), abs=1e-12)
    other = bootstrap(np.r_[values[:-1], values[-1] + 1e-3], name="a")
    assert abs(np.subtract(other, bootstrap(values, name="a"))).max() > 1e-4


def test_bootstrap_of_many_units_is_the_same_on_any_number_of_threads(monkeypatch):
    """50,000 units: resamples drawn in many blocks; one thread or eight give the same interval,
    and it is the normal one, mean ± 1.96 standard errors, to within 0.3 standard errors (the
    Monte Carlo error of a 2.5% percentile of 1,000 resamples is about 0.085 of one)."""
    from analysis import uncertainty
    values = np.random.default_rng(11).exponential(2.0, 50_000)
    monkeypatch.setattr(uncertainty.os, "cpu_count", lambda: 1)
    one = bootstrap(values, name="many")
    monkeypatch.setattr(uncertainty.os, "cpu_count", lambda: 8)
    assert bootstrap(values, name="many") == one
    se = values.std() / np.sqrt(len(values))
    assert np.allclose(one, (values.mean() - 1.96 * se, values.mean() + 1.96 * se), atol=0.3 * se)


def test_bootstrap_agrees_with_scipy():
    values = np.random.default_rng(7).normal(1.0, 2.0, 60)
    ours = bootstrap(values, boot=100000)
    ref = stats.bootstrap((values,), np.mean, n_resamples=100000, method="percentile",
                          rng=np.random.default_rng(0)).confidence_interval
    scale = values.std() / np.sqrt(len(values))
    assert abs(ours[0] - ref.low) < 0.05 * scale and abs(ours[1] - ref.high) < 0.05 * scale
    median = bootstrap(values, "median", boot=100000)
    ref = stats.bootstrap((values,), np.median, n_resamples=100000, method="percentile",
                          rng=np.random.default_rng(0)).confidence_interval
    assert abs(median[0] - ref.low) < 0.15 * scale and abs(median[1] - ref.high) < 0.15 * scale


# --- paired tests --------------------------------------------------------------------------------

def test_paired_tests_exact_p_values():
    # six gains, all positive: both tests' two-sided p is 2 / 2^6
    assert paired_tests([1, 2, 3, 4, 5, 6]) == dict(wins=6, losses=0, ties=0, sign_p=0.03125,
                                                    wilcoxon_p=0.03125)
    # one loss, of rank 2: P(W- <= 2) = 3 / 64 (subsets {}, {1}, {2}); sign test 2 (1 + 6) / 64
    out = paired_tests([1, -2, 3, 4, 5, 6])
    assert out["wilcoxon_p"] == pytest.approx(6 / 64) and out["sign_p"] == pytest.approx(14 / 64)
    # zeros are ties, left out of both tests
    out = paired_tests([0.0, 1.0, 2.0])
    assert (out["wins"], out["ties"], out["sign_p"]) == (2, 1, 0.5)
    assert np.isnan(paired_tests([0.0, 0.0])["wilcoxon_p"])


def test_verdicts():
    assert smallest_p(5) == 0.0625 and smallest_p(6) == 0.03125
    assert verdict(0.3, 0.0625, 5) == "too few pairs (5) for p < 0.05"
    assert verdict(0.3, 0.03125, 6) == "beats" and verdict(-0.3, 0.03125, 6) == "loses to"
    assert verdict(0.3, 0.2, 6) == "no difference shown" and verdict(0, np.nan, 0) == \
        "no matched pairs"


# --- the tables ------------------------------------------------------------------------------------

def _run(method, student, teacher, seed, delta):
    acc_s = 70.0
    return dict(key=f"{method}-{student}-{teacher}-{seed}", plan="p", teacher=teacher,
                student=student, method=method, params="{}", seed=seed, dataset="g", compat="",
                status="ok", epochs=1, acc_t=75.0, acc_s=acc_s, ts_diff=5.0, dist_delta=delta,
                code_version="v")


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    folder = tmp_path_factory.mktemp("controls")
    runs = []
    for i, (s, t) in enumerate(PAIRS):
        runs += [_run("xe_finetune", s, t, 0, 0.5), _run("kl_dp", s, t, 0, 1.5 + i)]
    runs += [_run("xe_finetune", "s1", "t1", 1, 0.2), _run("kl_dp", "s1", "t1", 1, 1.2)]
    models = [dict(key=m, model=m, zoo="z", family=f, dataset="g", num_classes=10, top1=70.0)
              for m, f in FAMILY.items()]
    for table, rows in (("transfer_runs", runs), ("models", models)):
        (folder / table).mkdir()
        pd.DataFrame(rows).to_parquet(folder / table / "all.parquet", index=False)
    return run_tables(folder)


def test_gain_over_controls(tables):
    row = tables["gain_over_controls"].iloc[0]
    assert (row["method"], row["control"], row["pairs"], row["matched_runs"]) == \
        ("kl_dp", "xe_finetune", 6, 7)
    # per pair gains 1 (both seeds), 2, ..., 6
    assert (row["mean_gain"], row["median_gain"]) == (3.5, 3.5)
    assert (row["wins"], row["losses"], row["ties"]) == (6, 0, 0)
    assert row["sign_p"] == row["wilcoxon_p"] == 0.0312 and row["verdict"] == "beats"
    assert 1.0 <= row["mean_gain_lo"] < 3.5 < row["mean_gain_hi"] <= 6.0
    assert row["ci95_over"] == "pairs" and "boot_gain" not in row.index
    arms = tables["methods_vs_controls"].set_index("method")
    assert arms.loc["kl_dp", "beyond_controls"].startswith("xe_finetune +3.50 [")
    assert arms.loc["kl_dp", "beyond_controls"].endswith("p 0.0312 (6 pairs): beats")
    assert pd.isna(arms.loc["xe_finetune", "beyond_controls"])
    # mean over the 7 runs, resampling the 6 pairs; seeds: the most any pair ran
    assert (arms.loc["kl_dp", "mean_delta"], arms.loc["kl_dp", "pairs"]) == (3.6, 6)
    assert arms.loc["kl_dp", "seeds"] == 2
    assert arms.loc["kl_dp", "ci95_over"] == "mean_delta: pairs; success: students"
    # every run succeeded: success 100, and so is every resample
    assert arms.loc["kl_dp", ["success", "success_lo", "success_hi"]].tolist() == [100.0] * 3


def test_seed_spread_and_pair_cells(tables):
    spread = tables["seed_spread"].set_index("method")
    # (s1,t1): kl_dp +1.5 and +1.2, sample std 0.3 / sqrt(2)
    assert spread.loc["kl_dp", ["pairs", "min_seeds", "max_seeds", "pairs_with_spread"]].tolist() \
        == [6, 1, 2, 1]
    assert spread.loc["kl_dp", "mean_seed_std"] == round(0.3 / np.sqrt(2), 2)
    assert spread.loc["kl_dp", "mean_seed_range"] == 0.3
    assert spread.loc["kl_dp", "note"].startswith("some pairs have one ok seed")
    cells = tables["pair_deltas"].set_index(["student", "teacher"])
    assert cells.loc[("s1", "t1"), "kl_dp"] == "+1.35 ± 0.21" and cells.loc[("s1", "t1"), "seeds"] == 2
    assert cells.loc[("s1", "t2"), "kl_dp"] == "+2.50" and cells.loc[("s1", "t2"), "seeds"] == 1
    prov = dict(zip(tables["provenance"]["item"], tables["provenance"]["value"]))
    assert prov["training seeds per pair"] == "1-2"


def test_paper_reference_beside_the_run(tables):
    ref = tables["paper_reference"].set_index("check")
    # mean per-student delta of kl_dp: s1 (1.5 + 1.2 + 2.5) / 3, s2 4.0, s3 6.0 -> 3.91
    row = ref.loc["mean per-student delta of kl_dp (collapsed runs out)"]
    assert (row["paper"], row["run"], row["agrees"]) == ("0.32", "3.91", "run above")
    assert 1.73 <= row["run_lo"] <= row["run_hi"] <= 6.0
    row = ref.loc["KL+DP gains on average (mean per-student delta above 0)"]
    assert (row["kind"], row["paper"], row["run"], row["agrees"]) == \
        ("direction", "kl_dp 0.32 > 0", "kl_dp 3.91 > 0", "yes")
    assert "KL+DP succeeds more often than KL (median success)" not in ref.index   # no kl runs
    assert ref.loc["median success % of kl_dp", "agrees"] == "run above"     # 100 vs 92.5
