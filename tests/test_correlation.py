"""analysis.correlation: the delta-method interval against the jackknife and, by coverage of
known population values, beside the pair bootstrap it stands in for at many pairs."""
import math

import numpy as np
import pytest
from scipy.stats import pearsonr, spearmanr

from analysis import correlation
from analysis.correlation import (bootstrap_intervals, correlations, delta_method_intervals,
                                  pearson_influence, spearman_influence)


def _jackknife_se(x, y, statistic):
    n = len(x)
    keep = ~np.eye(n, dtype=bool)
    values = np.array([statistic(x[k], y[k]).statistic for k in keep])
    return math.sqrt((n - 1) / n * ((values - values.mean()) ** 2).sum())


@pytest.mark.parametrize("ties", [False, True])
def test_influence_values_give_the_jackknife_standard_error(ties):
    # sqrt(sum IF_i^2) / n is the infinitesimal jackknife; the leave-one-out jackknife
    # (recomputed with scipy, ranks and all) estimates the same standard error
    rng = np.random.default_rng(5)
    x = rng.standard_normal(150)
    y = 0.5 * x + rng.standard_normal(150) * (1 + np.abs(x))
    if ties:                    # a few distinct values, as counts of classes or flips have
        x, y = np.round(2 * x), np.round(y)
    for influence, statistic in ((spearman_influence, spearmanr), (pearson_influence, pearsonr)):
        r, values = influence(x, y)
        assert r == pytest.approx(statistic(x, y).statistic)
        se = math.sqrt(((values - values.mean()) ** 2).sum()) / len(x)
        assert se == pytest.approx(_jackknife_se(x, y, statistic), rel=0.05)


def _coverage(draw, truth, pairs=50, samples=200, boot=300):
    """Share of `samples` data sets of `pairs` pairs whose interval holds the population value,
    for the delta-method and the bootstrap intervals, per statistic."""
    rng = np.random.default_rng(pairs)
    hits = {(how, s): 0 for how in ("delta", "boot") for s in truth}
    for _ in range(samples):
        x, y = draw(rng, pairs)
        for how, out in (("delta", delta_method_intervals(x, y)),
                         ("boot", bootstrap_intervals(x, y, boot, rng=rng))):
            for s, value in truth.items():
                hits[how, s] += out[f"{s}_lo"] <= value <= out[f"{s}_hi"]
    return {k: v / samples for k, v in hits.items()}


def test_delta_method_covers_like_the_bootstrap_for_normal_data():
    # correlation 0.5: Spearman's population value is 6 / pi asin(0.5 / 2)
    def draw(rng, n):
        x = rng.standard_normal(n)
        return x, 0.5 * x + math.sqrt(0.75) * rng.standard_normal(n)
    cover = _coverage(draw, {"spearman": 6 / math.pi * math.asin(0.25), "pearson": 0.5})
    for s in ("spearman", "pearson"):
        assert 0.9 <= cover["delta", s] <= 0.99, cover
        assert abs(cover["delta", s] - cover["boot", s]) <= 0.04, cover


def test_delta_method_covers_like_the_bootstrap_where_normal_theory_does_not():
    # y = x / 2 + |x| e: the spread grows with |x|; Pearson's population value is
    # cov / sd = 0.5 / sqrt(0.25 + E x^2 e^2) = 1 / sqrt(5). Fisher's normal-theory interval,
    # se(z) = 1 / sqrt(n - 3), covers far less there: the case tells the two kinds apart
    def draw(rng, n):
        x = rng.standard_normal(n)
        return x, 0.5 * x + np.abs(x) * rng.standard_normal(n)
    truth = 1 / math.sqrt(5)
    cover = _coverage(draw, {"pearson": truth}, pairs=100)
    assert 0.88 <= cover["delta", "pearson"] and abs(
        cover["delta", "pearson"] - cover["boot", "pearson"]) <= 0.04, cover
    rng = np.random.default_rng(100)
    fisher = 0
    for _ in range(200):
        r = pearsonr(*draw(rng, 100)).statistic
        half = 1.96 / math.sqrt(97)
        fisher += math.tanh(math.atanh(r) - half) <= truth <= math.tanh(math.atanh(r) + half)
    assert fisher / 200 < cover["delta", "pearson"] - 0.05


def test_many_pairs_take_the_delta_method_and_agree_with_the_bootstrap(monkeypatch):
    rng = np.random.default_rng(2)
    x = rng.standard_normal(2000)
    y = 0.3 * x + rng.standard_normal(2000)
    out = correlations(x, y)
    assert out == {"pairs": 2000} | delta_method_intervals(x, y)
    resampled = bootstrap_intervals(x, y, boot=500)
    for key in ("spearman_lo", "spearman_hi", "pearson_lo", "pearson_hi"):
        assert out[key] == pytest.approx(resampled[key], abs=0.01)
    monkeypatch.setattr(correlation, "BOOTSTRAP_MAX_PAIRS", 2000)
    assert correlations(x, y, boot=50) == {"pairs": 2000} | bootstrap_intervals(x, y, 50)


def test_degenerate_columns():
    x = np.arange(2000.0)
    out = delta_method_intervals(x, 2 * x + 1)           # a perfect correlation: a point
    assert out["spearman_lo"] == out["spearman_hi"] == pytest.approx(1.0)
    with np.errstate(all="raise"):                        # a constant column: nan, quietly
        out = correlations(x, np.ones(2000))
    assert np.isnan([out["spearman"], out["spearman_lo"], out["pearson_hi"]]).all()
