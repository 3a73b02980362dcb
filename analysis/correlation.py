"""Spearman's and Pearson's correlation of two columns with 95% intervals over the pairs.

Both intervals treat the pairs (rows) as independent draws from one population, as a pair
bootstrap does (docs/analysis.md#predictor-intervals says what that leaves out):
- up to `BOOTSTRAP_MAX_PAIRS` pairs, the percentile bootstrap: `boot` resamples of the pairs with
  replacement, each correlation recomputed (ranks included), and the 2.5th and 97.5th
  percentiles;
- above, the normal interval in Fisher's z = atanh(r) with the nonparametric delta-method
  (infinitesimal jackknife) standard error: se(r)^2 = sum_i IF_i^2 / (n (n - 3)), IF_i the
  empirical influence of pair i on the correlation (centred), and se(z) = se(r) / (1 - r^2).
  sum_i IF_i^2 / n^2 is the first-order variance that the bootstrap estimates by resampling,
  here from the data in O(n log n) instead of boot x n log n (at 10^5 pairs 0.2 s where
  1,000 resamples took about a minute); n - 3 for n makes it Fisher's 1 / (n - 3) for normal
  data, where the influence of z has variance 1. Unlike the Fisher or Bonett-Wright
  ((1 + r^2 / 2) / (n - 3)) variances it does not assume normal data: where the spread of y
  grows with |x| those cover 75-89% at 30-300 pairs, this one about what the bootstrap covers.
  tests/test_correlation.py checks its coverage beside the bootstrap's at small n.
"""
import numpy as np
from scipy.special import ndtri
from scipy.stats import rankdata

from analysis.uncertainty import RESAMPLED_CELLS

BOOT, CONFIDENCE = 2000, 0.95
# above this many pairs the interval is the delta-method one. The two cover alike from 100 pairs
# (docs/analysis.md#predictor-intervals) and agree to about 0.003 at 1,000, where 2,000
# resamples took 1.4-2 s per predictor on the shared 2 cores; a sweep of the paper's size
# (20 students x 20 teachers: 400 pairs per method) keeps the bootstrap
BOOTSTRAP_MAX_PAIRS = 500
STATISTICS = ("spearman", "pearson")


def correlations(x, y, boot: int = BOOT, confidence: float = CONFIDENCE, rng=None) -> dict:
    """{pairs, spearman, spearman_lo, spearman_hi, pearson, pearson_lo, pearson_hi} of x, y
    (1-D, no nan); nan correlations below 3 pairs or for a constant column."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    n = len(x)
    if n < 3:
        return {"pairs": n} | dict.fromkeys(
            (f"{s}{end}" for s in STATISTICS for end in ("", "_lo", "_hi")), np.nan)
    if n > BOOTSTRAP_MAX_PAIRS:
        return {"pairs": n} | delta_method_intervals(x, y, confidence)
    return {"pairs": n} | bootstrap_intervals(x, y, boot, confidence, rng)


def bootstrap_intervals(x, y, boot: int = BOOT, confidence: float = CONFIDENCE,
                        rng=None) -> dict:
    """Both correlations with percentile-bootstrap intervals from `boot` resamples of the pairs
    (`rng`: a numpy Generator, default seeded 0)."""
    n = len(x)
    rng = np.random.default_rng(0) if rng is None else rng

    def rows(idx):
        xs, ys = x[idx], y[idx]
        return np.stack([_pearson_rows(rankdata(xs, axis=1), rankdata(ys, axis=1)),
                         _pearson_rows(xs, ys)])
    # the sample itself, then the resamples in blocks of about RESAMPLED_CELLS values: memory
    # stays bounded, and successive draws continue one stream (the same numbers)
    block = max(1, RESAMPLED_CELLS // n)
    values = np.concatenate(
        [rows(np.arange(n)[None, :])]
        + [rows(rng.integers(0, n, (min(block, boot - s), n))) for s in range(0, boot, block)],
        axis=1)
    tail = 100 * (1 - confidence) / 2
    out = {}
    for name, v in zip(STATISTICS, values):
        resampled = v[1:][np.isfinite(v[1:])]
        lo, hi = (np.percentile(resampled, [tail, 100 - tail]) if len(resampled)
                  else (np.nan, np.nan))
        out |= {name: v[0], f"{name}_lo": lo, f"{name}_hi": hi}
    return out


def delta_method_intervals(x, y, confidence: float = CONFIDENCE) -> dict:
    """Both correlations with normal intervals in Fisher's z from their delta-method standard
    errors (`spearman_influence`, `pearson_influence`)."""
    out = {}
    for name, (r, influence) in zip(STATISTICS, (spearman_influence(x, y),
                                                  pearson_influence(x, y))):
        n = len(x)
        se = np.sqrt(np.sum((influence - influence.mean()) ** 2) / (n * (n - 3)))
        lo, hi = fisher_interval(r, se, confidence)
        out |= {name: r, f"{name}_lo": lo, f"{name}_hi": hi}
    return out


def fisher_interval(r: float, se: float, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """tanh(atanh(r) -/+ q se / (1 - r^2)), q the normal quantile: (r, r) at |r| = 1."""
    if not np.isfinite(r):
        return np.nan, np.nan
    if abs(r) >= 1.0:
        return r, r
    half = ndtri(0.5 + confidence / 2) * se / (1.0 - r * r)
    z = np.arctanh(r)
    return float(np.tanh(z - half)), float(np.tanh(z + half))


def pearson_influence(x, y) -> tuple[float, np.ndarray]:
    """(r, IF): Pearson's r and each pair's empirical influence on it,
    IF_i = a_i b_i - r (a_i^2 + b_i^2) / 2 with a, b the standardised columns (nan if one is
    constant)."""
    a, b = _standardised(x), _standardised(y)
    r = float(np.mean(a * b))
    return r, a * b - r / 2 * (a * a + b * b)


def spearman_influence(x, y) -> tuple[float, np.ndarray]:
    """(rho, IF): Spearman's rho (Pearson's r of the average ranks) and each pair's empirical
    influence on it. A pair moves rho twice: as a point in rank space (Pearson's influence at
    its ranks) and by shifting every other pair's rank; with a, b the standardised ranks and
    s_x the ranks' standard deviation (ranks scaled to (0, 1]), the second part is
        (1 / n) sum_j (1[x_j > x_i] + 1[x_j = x_i] / 2) (b_j - rho a_j) / s_x
    plus the same with x and y swapped. Without ties this is the classical influence function
    of Spearman's rho, 12 [F(x) G(y) + E G(Y) 1[X >= x] + E F(X) 1[Y >= y]] up to a constant."""
    n = len(x)
    u, v = rankdata(x) / n, rankdata(y) / n
    a, b = _standardised(u), _standardised(v)
    rho = float(np.mean(a * b))
    with np.errstate(invalid="ignore", divide="ignore"):
        shift = (_above_or_tied_sums(x, b - rho * a) / u.std()
                 + _above_or_tied_sums(y, a - rho * b) / v.std()) / n
    return rho, a * b - rho / 2 * (a * a + b * b) + shift


def _above_or_tied_sums(x, w) -> np.ndarray:
    """sum_j w_j (1[x_j > x_i] + 1[x_j = x_i] / 2) for every i, by one sort (dense ranks)."""
    groups = rankdata(x, method="dense").astype(np.int64) - 1
    sums = np.bincount(groups, weights=w)
    above = sums.sum() - np.cumsum(sums)
    return (above + sums / 2)[groups]


def _standardised(x) -> np.ndarray:
    """(x - mean) / sd; nan for a constant x (its mean may differ from it in the last bit)."""
    if x.min() == x.max():
        return np.full(len(x), np.nan)
    return (x - x.mean()) / x.std()


def _pearson_rows(x, y):
    """Pearson's r of each row of x [B, n] with the same row of y (nan where constant)."""
    x = x - x.mean(axis=1, keepdims=True)
    y = y - y.mean(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (x * y).sum(1) / np.sqrt((x * x).sum(1) * (y * y).sum(1))
