"""benchmark.predictors: each score against a hand computation or an independent one, the
vectorised tables against per-pair loops, teacher sets, the planner strategies and the analysis.
"""
import math

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize
from scipy.spatial import cKDTree
from scipy.special import digamma
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import cohen_kappa_score

from benchmark.predictors import (PredictorOptions, compute_predictors, greedy_teachers,
                                  set_scores, teacher_set_table)
from benchmark.predictors import scores
from results import TABLES, read_table, write_part

# ---------------------------------------------------------------- TMI


def test_tmi_closed_form_1d():
    # class 0 at 0, 1, 3, 7: nearest-neighbour distances 1, 1, 2, 4; class 1 at 0, 2, 6: 2, 2, 4.
    # k = 1, max norm (c_d = 1), d = 1, no flooring:
    #   h_0 = -psi(1) + psi(4) + 1/4 (log 2 + log 2 + log 4 + log 8) = 11/6 + 7/4 log 2
    #   h_1 = -psi(1) + psi(3) + 1/3 (log 4 + log 4 + log 8)         = 3/2 + 7/3 log 2
    #   TMI = mean(4/7 h_0, 3/7 h_1) = 71/84 + log 2
    x = np.array([[0.0], [1], [3], [7], [0], [2], [6]])
    y = np.array([0, 0, 0, 0, 1, 1, 1])
    assert scores.tmi(x, y, k=1, min_dist=0.1) == pytest.approx(71 / 84 + math.log(2), rel=1e-7)
    # min_dist floors every distance: with 3, class 0 has 2 eps = 6, 6, 6, 8
    h0 = 11 / 6 + (3 * math.log(6) + math.log(8)) / 4
    h1 = 3 / 2 + (2 * math.log(6) + math.log(8)) / 3
    assert scores.tmi(x, y, k=1, min_dist=3.0) == pytest.approx((4 * h0 + 3 * h1) / 14)


def test_tmi_euclidean_closed_form_2d():
    # a unit square: every point's nearest neighbour at 1 (Euclidean), c_2 = pi
    x = np.array([[0.0, 0], [1, 0], [0, 1], [1, 1]])
    h = -digamma(1) + digamma(4) + math.log(math.pi) + 2 / 4 * 4 * math.log(2)
    got = scores.tmi(x, np.zeros(4, int), k=1, norm="euclidean", min_dist=0.1)
    assert got == pytest.approx(h)      # one class: mean of 4/4 h


def _official_tmi(x, y, k=3, min_dist=1.0):
    """The official snudatalab/TMI `TMI` (cKDTree, max norm), as published."""
    x = x - x.mean(0, keepdims=True)
    hs, ps = [], []
    for c in range(int(y.max()) + 1):
        xc = x[y == c]
        if len(xc) in (0, 1):
            h = 0.0
        else:
            dist = cKDTree(xc).query(xc, k + 1, p=np.inf)[0][:, -1]
            dist[dist < min_dist] = min_dist
            h = -digamma(k) + digamma(len(xc)) + len(xc[0]) / len(xc) * np.log(2 * dist).sum()
        hs.append(h)
        ps.append((y == c).mean())
    hs, ps = np.array(hs), np.array(ps)
    finite = np.isfinite(hs)
    return (hs[finite] * ps[finite]).mean()


@pytest.mark.parametrize("n,d,c", [(200, 8, 5), (57, 3, 7)])
def test_tmi_matches_the_official_code(n, d, c):
    rng = np.random.default_rng(n)
    x = (3 * rng.standard_normal((n, d))).astype(np.float32)
    y = rng.integers(0, c, n)
    y[:3] = c + 2          # a class of 3 samples (no 3rd neighbour: left out), c and c+1 empty
    assert scores.tmi(x, y) == pytest.approx(_official_tmi(x.astype(np.float64), y), rel=1e-6)


# ---------------------------------------------------------------- LogME


def _evidence(f, y, log_alpha, log_beta):
    """log p(y | F, alpha, beta) / N, straight from the definition (matrices, no eigenbasis)."""
    alpha, beta = np.exp(log_alpha), np.exp(log_beta)
    n, d = f.shape
    a = alpha * np.eye(d) + beta * f.T @ f
    m = beta * np.linalg.solve(a, f.T @ y)
    return (d / 2 * np.log(alpha) + n / 2 * np.log(beta) - np.linalg.slogdet(a)[1] / 2
            - beta / 2 * np.sum((y - f @ m) ** 2) - alpha / 2 * m @ m
            - n / 2 * np.log(2 * np.pi)) / n


def _brute_force_logme(f, labels):
    """Mean over classes of the evidence maximised over a log grid of (alpha, beta), refined
    from the best grid point by Nelder-Mead."""
    values = []
    grid = np.linspace(-8, 8, 33)
    for c in range(labels.max() + 1):
        y = (labels == c).astype(float)
        table = np.array([[_evidence(f, y, a, b) for b in grid] for a in grid])
        i, j = np.unravel_index(table.argmax(), table.shape)
        best = minimize(lambda p: -_evidence(f, y, *p), [grid[i], grid[j]], method="Nelder-Mead",
                        options=dict(xatol=1e-10, fatol=1e-14, maxiter=4000))
        values.append(max(-best.fun, table.max()))
    return float(np.mean(values))


def test_logme_is_the_maximum_evidence_n_above_d():
    rng = np.random.default_rng(1)
    f = rng.standard_normal((120, 6)) + rng.standard_normal(6)
    y = rng.integers(0, 3, 120)
    assert scores.logme(f, y) == pytest.approx(_brute_force_logme(f, y), rel=1e-7)


def test_logme_is_the_maximum_evidence_n_below_d():
    # N < D: the official code's number is not the evidence here (log det without the null
    # directions); ours is, and one class's maximum lies at alpha -> inf
    rng = np.random.default_rng(1)
    rng.standard_normal((120, 6)), rng.integers(0, 3, 120)      # same stream as before
    f = rng.standard_normal((30, 50))
    y = rng.integers(0, 3, 30)
    assert scores.logme(f, y) == pytest.approx(_brute_force_logme(f, y), abs=1e-5)


def test_logme_matches_the_official_iteration_when_n_above_d():
    """thuml/LogME `_fit_fixed_point` (11 steps, 1e-3, 1e-5 guards) on full-rank features."""
    rng = np.random.default_rng(4)
    f = rng.standard_normal((300, 10)) * rng.uniform(0.5, 2, 10) + 1.0
    labels = rng.integers(0, 4, 300)
    n, d = f.shape
    u, s, _ = np.linalg.svd(f, full_matrices=False)
    sigma = (s**2)[:, None]
    evidences = []
    for c in range(4):
        y = (labels == c).astype(float)[:, None]
        x2 = (u.T @ y) ** 2
        res_x2 = (y**2).sum() - x2.sum()
        alpha = beta = 1.0
        for _ in range(11):
            t = alpha / beta
            gamma = (sigma / (sigma + t)).sum()
            m2 = (sigma * x2 / (t + sigma) ** 2).sum()
            res2 = (x2 / (1 + sigma / t) ** 2).sum() + res_x2
            alpha, beta = gamma / (m2 + 1e-5), (n - gamma) / (res2 + 1e-5)
            if abs(alpha / beta - t) / t <= 1e-3:
                break
        evidences.append((d / 2 * np.log(alpha) + n / 2 * np.log(beta)
                          - np.log(alpha + beta * sigma).sum() / 2 - beta / 2 * res2
                          - alpha / 2 * m2 - n / 2 * np.log(2 * np.pi)) / n)
    assert scores.logme(f, labels) == pytest.approx(np.mean(evidences), rel=1e-6)


# ---------------------------------------------------------------- H-score


def test_hscore_closed_form_1d():
    # 1-D: H = between-class scatter / total scatter. f = 0 2 | 4 6: mu = 3, mu_0 = 1, mu_1 = 5;
    # between = 2*4 + 2*4 = 16, total = 9 + 1 + 1 + 9 = 20: H = 0.8
    assert scores.hscore(np.array([[0.0], [2], [4], [6]]), np.array([0, 0, 1, 1])) == \
        pytest.approx(0.8)


def _official_hscore(f, z):
    """The H-score authors' getHscore (pinv with rcond 1e-15)."""
    def cov(x):
        xm = x - x.mean(0, keepdims=True)
        return xm.T @ xm / (len(x) - 1)
    g = np.zeros_like(f)
    for c in set(z):
        g[z == c] = f[z == c].mean(0)
    return np.trace(np.linalg.pinv(cov(f), rcond=1e-15) @ cov(g))


def test_hscore_matches_the_official_code_and_the_shared_eigenbasis():
    rng = np.random.default_rng(5)
    for shift, singular in ((0.0, False), (40.0, False), (0.0, True)):
        f = rng.standard_normal((300, 12)) * rng.uniform(0.2, 3, 12) + shift
        if singular:
            f = np.concatenate([f, f[:, :2] - f[:, 2:4]], 1)   # rank-deficient
        y = rng.integers(0, 5, 300)
        official = _official_hscore(f, y)
        assert scores.hscore(f, y) == pytest.approx(official, rel=1e-6)
        mean = f.mean(0)
        onehot = np.eye(5)[y]
        logme, hscore = scores.logme_hscore_from_moments(
            (f - mean).T @ (f - mean), mean, f.T @ onehot, onehot.sum(0), len(f))
        assert hscore == pytest.approx(official, rel=1e-6)
        assert logme == pytest.approx(scores.logme(f, y), rel=1e-9)


# ---------------------------------------------------------------- LEEP and NCE


def test_leep_and_nce_by_hand_2x2():
    # theta = [[3/4, 1/4], [1/4, 3/4]], labels 0, 1: P(y, z) = [[3/8, 1/8], [1/8, 3/8]],
    # P(z) = 1/2 1/2, P(y | z) = [[3/4, 1/4], [1/4, 3/4]]; EEP = 3/4 3/4 + 1/4 1/4 = 5/8 for both.
    # Hard predictions equal the labels: H(Y | Z) = 0.
    logits = np.log([[0.75, 0.25], [0.25, 0.75]])
    leep_i, nce_i, correct = scores.leep_nce_terms(logits, np.array([0, 1]))
    np.testing.assert_allclose(leep_i, np.log(5 / 8), rtol=1e-6)
    np.testing.assert_allclose(nce_i, 0.0, atol=1e-12)
    assert correct.all()
    # predictions 0 0 1 1 for labels 0 1 1 1: P(y | z=0) = 1/2 1/2, P(y | z=1) = 0 1;
    # NCE = 1/4 (log 1/2 + log 1/2 + 0 + 0) = -1/2 log 2
    logits = np.array([[1.0, 0], [1, 0], [0, 1], [0, 1]])
    assert scores.nce(logits, np.array([0, 1, 1, 1])) == pytest.approx(-math.log(2) / 2)


def test_leep_and_nce_against_loops_with_other_label_spaces():
    rng = np.random.default_rng(2)
    n, z, num_y = 200, 7, 5
    logits = 2 * rng.standard_normal((n, z))
    y = rng.integers(0, num_y, n)
    y[y == 3] = 4                                   # an empty class in the middle
    theta = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    joint = np.zeros((num_y, z))
    for i in range(n):
        joint[y[i]] += theta[i] / n
    leep = np.mean([np.log(sum(theta[i, k] * joint[y[i], k] / joint[:, k].sum()
                               for k in range(z))) for i in range(n)])
    pred = logits.argmax(1)
    counts = np.zeros((num_y, z))
    for i in range(n):
        counts[y[i], pred[i]] += 1
    p = counts / n
    nce = sum(p[a, b] * math.log(p[a, b] / p[:, b].sum())
              for a in range(num_y) for b in range(z) if p[a, b] > 0)
    assert scores.leep(logits, y) == pytest.approx(leep, rel=1e-6)
    assert scores.nce(logits, y) == pytest.approx(nce, rel=1e-9)


# ---------------------------------------------------------------- CKA and kappa


def test_linear_cka_closed_form():
    # 1-D: CKA = cos^2 of the centred vectors: x = -1.5 -.5 .5 1.5, y = -1.5 .5 -.5 1.5:
    # x.y = 4, |x|^2 = |y|^2 = 5, CKA = 16/25
    x, y = np.array([[1.0], [2], [3], [4]]), np.array([[1.0], [3], [2], [4]])
    assert scores.linear_cka(x, y) == pytest.approx(16 / 25)
    assert float(scores.packed_gram(x) @ scores.packed_gram(y)) == pytest.approx(16 / 25)
    rng = np.random.default_rng(0)
    a = rng.standard_normal((50, 4))
    rotation = np.linalg.qr(rng.standard_normal((4, 4)))[0]
    assert scores.linear_cka(a, 3 * a @ rotation + 7) == pytest.approx(1.0)   # invariances
    # orthogonal centred column spaces: 0
    b = np.array([[1.0, 0], [-1, 0], [0, 1], [0, -1]])
    assert scores.linear_cka(b[:, :1], b[:, 1:]) == pytest.approx(0.0, abs=1e-12)


def test_kappa_by_hand():
    # t = 1 1 1 0, s = 1 1 0 0: p_o = 3/4, p_e = 3/4 1/2 + 1/4 1/2 = 1/2, kappa = 1/2
    assert scores.kappa_from_flips(1, 0, 0.75, 0.5, 4) == pytest.approx(0.5)
    # t = 1 1 0 0, s = 1 0 1 0: p_o = 1/2 = p_e: kappa 0; both always right: undefined
    assert scores.kappa_from_flips(1, 1, 0.5, 0.5, 4) == pytest.approx(0.0)
    assert np.isnan(scores.kappa_from_flips(0, 0, 1.0, 1.0, 4))


# ---------------------------------------------------------------- the tables


def _toy(m=5, n=240, c=4, seed=0):
    """Features [m] of different widths and logits of 4 classes, accuracies spread."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, c, n)
    feats, logits = [], []
    for i in range(m):
        d = 3 + 2 * i
        centres = rng.standard_normal((c, d)) * (0.5 + i / 2)
        f = centres[labels] + rng.standard_normal((n, d))
        feats.append(f.astype(np.float16))
        logits.append((f @ rng.standard_normal((d, c)) + 2 * np.eye(c)[labels] * i)
                      .astype(np.float16))
    return feats, logits, labels, [f"m{i}" for i in range(m)]


@pytest.mark.parametrize("route", ["gram", "features"])
def test_compute_predictors_matches_per_model_and_per_pair_loops(route, tmp_path):
    feats, logits, labels, names = _toy()
    opts = PredictorOptions(cka_samples=100, cka_route=route, threads=2)
    result = compute_predictors(feats, logits, labels, names, "toy", "eval", options=opts)
    mp, pp = result.model_predictors, result.pair_predictors
    assert list(mp.columns) == TABLES["model_predictors"].names
    assert list(pp.columns) == TABLES["pair_predictors"].names
    assert len(pp) == 5 * 4 and set(pp["split"]) == {"eval"} and set(pp["cka_samples"]) == {100}
    for i, row in mp.iterrows():
        f = feats[i].astype(np.float64)
        assert row["dim"] == f.shape[1]
        assert row["tmi"] == pytest.approx(_official_tmi(f, labels), rel=1e-5)
        assert row["logme"] == pytest.approx(scores.logme(f, labels), rel=1e-5)   # float32 sums
        assert row["hscore"] == pytest.approx(_official_hscore(f, labels), rel=1e-5)
        assert row["leep"] == pytest.approx(scores.leep(logits[i], labels), rel=1e-6)
        assert row["nce"] == pytest.approx(scores.nce(logits[i], labels), rel=1e-9)
        assert row["top1"] == pytest.approx(100 * (logits[i].argmax(1) == labels).mean())
    index = {n: i for i, n in enumerate(names)}
    for row in pp.itertuples():
        t, s = index[row.teacher], index[row.student]
        cka = scores.linear_cka(feats[t][:100], feats[s][:100])
        assert row.cka == pytest.approx(cka, rel=1e-4)
        right_t, right_s = logits[t].argmax(1) == labels, logits[s].argmax(1) == labels
        assert row.kappa == pytest.approx(cohen_kappa_score(right_t, right_s))
        leep_t, nce_t, _ = scores.leep_nce_terms(logits[t], labels)
        assert row.leep_err == pytest.approx(leep_t[~right_s].mean(), rel=1e-5)
        assert row.nce_err == pytest.approx(nce_t[~right_s].mean(), rel=1e-5)
    assert result.correct.shape == (5, len(labels))
    write_part(tmp_path, "model_predictors", mp, "p")       # the schema's types
    write_part(tmp_path, "pair_predictors", pp, "p")
    assert len(read_table(tmp_path, "pair_predictors")) == 20


def test_compute_predictors_given_pairs_and_one_thread_agree():
    feats, logits, labels, names = _toy(m=4)
    full = compute_predictors(feats, logits, labels, names, "toy").pair_predictors
    some = compute_predictors(feats, logits, labels, names, "toy", teachers=[2, 0],
                              students=[1, 3],
                              options=PredictorOptions(threads=1)).pair_predictors
    expected = full.set_index(["teacher", "student"]).loc[[("m2", "m1"), ("m0", "m3")]]
    np.testing.assert_allclose(some[["cka", "kappa", "leep_err", "nce_err"]].to_numpy(),
                               expected[["cka", "kappa", "leep_err", "nce_err"]].to_numpy())


# ---------------------------------------------------------------- teacher sets

# student S wrong on samples 0-5 (right on 6, 7); A and B right on 0-3 (the same knowledge),
# C right on 4 and 5 only, D right on 0 only
CORRECT = np.array([
    [0, 0, 0, 0, 0, 0, 1, 1],     # S
    [1, 1, 1, 1, 0, 0, 1, 1],     # A
    [1, 1, 1, 1, 0, 0, 1, 1],     # B
    [0, 0, 0, 0, 1, 1, 0, 0],     # C
    [1, 0, 0, 0, 0, 0, 1, 1],     # D
], bool)


def test_set_scores_by_hand():
    coverage, redundancy, score = set_scores(CORRECT, 0, [[1, 2], [1, 3]], lam=0.5)
    # {A, B}: covers 0-3 of 6 (66.7%); 4 errors covered twice -> redundancy 4/6
    # {A, C}: covers all 6, no overlap
    np.testing.assert_allclose(coverage, [400 / 6, 100])
    np.testing.assert_allclose(redundancy, [400 / 6, 0])
    np.testing.assert_allclose(score, coverage - 0.5 * redundancy)
    # {A, B, D}: covers 4, extra coverage 4 (B) + 1 (D) = 5 of 6
    coverage, redundancy, score = set_scores(CORRECT, 0, [1, 2, 4], lam=1.0)
    np.testing.assert_allclose([coverage[0], redundancy[0], score[0]],
                               [400 / 6, 500 / 6, -100 / 6])


def test_greedy_picks_complementary_teachers_where_accuracy_does_not():
    assert list(greedy_teachers(CORRECT, 0, 2, lam=0.0)) == [1, 3]     # A, then C
    assert list(greedy_teachers(CORRECT, 0, 2, lam=0.5)) == [1, 3]
    table = teacher_set_table(CORRECT, list("SABCD"), "toy", "eval", ks=(2,), students=[0],
                              draws=50)
    rows = table.set_index("strategy")
    assert rows.loc["greedy", "teachers"] == "A,C" and rows.loc["greedy", "coverage"] == 100
    assert rows.loc["accuracy", "teachers"] == "A,B"                   # the two most accurate
    assert rows.loc["accuracy", "coverage"] == pytest.approx(400 / 6)
    assert rows.loc["random", "draws"] == 50
    assert rows.loc["greedy", "oracle_acc"] == 100.0
    assert list(table.columns) == TABLES["teacher_sets"].names


def test_greedy_coverage_is_within_the_submodular_bound_of_the_best_set():
    import itertools
    rng = np.random.default_rng(0)
    for trial in range(20):
        correct = rng.random((9, 60)) < rng.uniform(0.3, 0.8, (9, 1))
        k = 3
        best = max(set_scores(correct, 0, [list(c)], 0.0)[0][0]
                   for c in itertools.combinations(range(1, 9), k))
        greedy = set_scores(correct, 0, [greedy_teachers(correct, 0, k, 0.0)], 0.0)[0][0]
        assert greedy >= (1 - 1 / math.e) * best - 1e-9
        # one teacher: greedy is exact
        one = set_scores(correct, 0, [greedy_teachers(correct, 0, 1, 0.5)], 0.5)[2][0]
        assert one == pytest.approx(max(set_scores(correct, 0, [[t]], 0.5)[2][0]
                                        for t in range(1, 9)))


# ---------------------------------------------------------------- planner


def _candidates():
    return pd.DataFrame({
        "dataset": "d", "teacher": ["a", "a", "b", "b", "c", "c"],
        "student": ["b", "c", "a", "c", "a", "b"],
        "leep_err": [0.1, 0.5, 0.3, np.nan, 0.2, 0.9], "cka": [0.9, 0.1, 0.5, 0.4, 0.3, 0.2]})


def test_top_predictor_and_top_teachers_strategies():
    from pairs.strategies.predictor import parse_metric
    from pairs.strategies import PairRequest, plan_pairs
    models = pd.DataFrame({"name": ["a", "b", "c"], "arch": ["x", "x", "y"]})
    request = PairRequest(n=2, pair_measures=_candidates(), metric="leep_err")
    assert plan_pairs("top-predictor", models, request).tolist() == [["c", "b"], ["a", "c"]]
    request = PairRequest(n=2, pair_measures=_candidates(), metric="-cka")
    assert plan_pairs("top-predictor", models, request).tolist() == [["a", "c"], ["c", "b"]]
    assert parse_metric("cka:asc") == ("cka", True) and parse_metric("cka") == ("cka", False)
    request = PairRequest(n=1, pair_measures=_candidates(), metric="leep_err")
    assert plan_pairs("top-teachers", models, request).tolist() == [
        ["b", "a"], ["c", "b"], ["a", "c"]]
    request = PairRequest(n=1, pair_measures=_candidates(), metric="leep_err", students=("c",))
    assert plan_pairs("top-teachers", models, request).tolist() == [["a", "c"]]
    # unknown predictor values rank last; catalog filters apply
    few = models[models["name"] != "a"]
    request = PairRequest(n=5, pair_measures=_candidates(), metric="leep_err")
    assert plan_pairs("top-predictor", few, request).tolist() == [["c", "b"], ["b", "c"]]


def test_predictor_strategies_explain_missing_inputs():
    from pairs.plan import PlanError
    from pairs.strategies import PairRequest, plan_pairs
    models = pd.DataFrame({"name": ["a", "b", "c"], "arch": ["x", "x", "y"]})
    with pytest.raises(PlanError, match="ktbench predictors"):
        plan_pairs("top-predictor", models, PairRequest(n=2, metric="cka"))
    with pytest.raises(ValueError, match="no predictor 'nope'"):
        plan_pairs("top-predictor", models, PairRequest(n=2, pair_measures=_candidates(),
                                                        metric="nope"))
    with pytest.raises(ValueError, match="--pairs"):
        plan_pairs("top-teachers", models, PairRequest(pair_measures=_candidates(), metric="cka"))


# ---------------------------------------------------------------- analysis


def test_correlations_and_their_intervals():
    from analysis.correlation import correlations
    rng = np.random.default_rng(0)
    x = rng.standard_normal(40)
    y = x + rng.standard_normal(40)
    out = correlations(x, y, boot=500)
    assert out["pairs"] == 40
    assert out["spearman"] == pytest.approx(spearmanr(x, y).statistic)
    assert out["pearson"] == pytest.approx(pearsonr(x, y).statistic)
    for name in ("spearman", "pearson"):
        assert out[f"{name}_lo"] < out[name] < out[f"{name}_hi"]
    assert np.isnan(correlations([1, 2], [1, 2])["spearman"])     # too few pairs


def test_correlation_resamples_in_blocks_are_one_stream(monkeypatch):
    # blocks of 7 resamples (memory bounded at 10^5 pairs) draw what one block of 500 draws
    from analysis import correlation
    rng = np.random.default_rng(1)
    x = rng.standard_normal(300)
    y = x + rng.standard_normal(300)
    whole = correlation.correlations(x, y, boot=500)
    monkeypatch.setattr(correlation, "RESAMPLED_CELLS", 300 * 7)
    assert correlation.correlations(x, y, boot=500) == whole


def test_predictor_analysis_over_a_results_folder(tmp_path):
    from analysis.predictors import best_predictors, correlation_table, predictor_runs
    from analysis.tables import run_tables
    feats, logits, labels, names = _toy(m=4)
    result = compute_predictors(feats, logits, labels, names, "toy")
    write_part(tmp_path, "model_predictors", result.model_predictors, "p")
    write_part(tmp_path, "pair_predictors", result.pair_predictors, "p")
    write_part(tmp_path, "teacher_sets", teacher_set_table(result.correct, names, "toy", "eval"),
               "p")
    pairs = result.pair_predictors
    runs = []
    for method, noise in (("kl_dp", 0.0), ("kl", 1.0)):
        for i, r in enumerate(pairs.itertuples()):
            row = dict.fromkeys(TABLES["transfer_runs"].names)
            row.update(key=f"{method}-{i}", teacher=r.teacher, student=r.student, method=method,
                       dataset="toy", status="ok", compat="", seed=0, mode="",
                       dist_delta=10 * r.leep_err + noise * np.sin(i))
            runs.append(row)
    write_part(tmp_path, "transfer_runs", pd.DataFrame(runs), "runs")
    data = predictor_runs(tmp_path)
    assert len(data) == 2 * len(pairs)
    table = correlation_table(data, boot=200)
    kl_dp = table[table["method"] == "kl_dp"].set_index("predictor")
    assert kl_dp.loc["leep_err", "spearman"] == pytest.approx(1.0)
    assert kl_dp.loc["leep_err", "pairs"] == len(pairs)
    assert "ts_diff" not in kl_dp.index          # no pair_stats in this folder
    best = best_predictors(table, data, "kl_dp")
    assert best.iloc[0]["predictor"] == "leep_err" and best.iloc[0]["direction"] == "higher"
    sets = run_tables(tmp_path, ["predictors_teacher_sets"])["predictors_teacher_sets"]
    assert set(sets["strategy"]) == {"greedy", "greedy_cover", "accuracy", "random"}
    assert (sets.loc[sets["strategy"] == "random", "coverage_vs_random"] == 0).all()


def test_predictor_figure_renders_with_and_without_data(tmp_path):
    from analysis.figures import render_figures
    fig = render_figures(tmp_path, ["predictor_correlations"])["predictor_correlations"]
    assert fig.axes and fig.axes[0].texts                      # "no ... yet"



def test_size_only_baseline_by_hand(tmp_path):
    from analysis.predictors import (DERIVED_PREDICTORS, PREDICTORS, best_predictors,
                                     correlation_table, pair_predictor_table, predictor_runs)
    params = {"a": 10.0, "b": 20.0, "c": 40.0}                   # d has no models row
    models = [dict.fromkeys(TABLES["models"].names) | {"key": f"{m}-{ds}", "model": m,
                                                       "dataset": ds, "params_m": p}
              for ds in ("toy", "other") for m, p in params.items()]
    write_part(tmp_path, "models", pd.DataFrame(models), "models")
    gaps = {("a", "b"): 5.0, ("b", "a"): -5.0, ("c", "a"): 3.0, ("a", "c"): 3.0,
            ("b", "c"): 1.0, ("d", "a"): 0.0}
    stats = [dict.fromkeys(TABLES["pair_stats"].names) | {
        "teacher": t, "student": s, "dataset": "toy", "compat": "", "ts_diff": g}
        for (t, s), g in gaps.items()]
    stats.append(dict(stats[0], dataset="other"))
    write_part(tmp_path, "pair_stats", pd.DataFrame(stats), "stats")
    pairs = pair_predictor_table(tmp_path).set_index(["dataset", "teacher", "student"])
    assert pairs.loc[("toy", "c", "a"), ["params_t", "params_s"]].tolist() == [40.0, 10.0]
    # toy: accuracy leads 5, -5, 3, 3, 1 rank 5, 1, 3.5, 3.5, 2 of 5; size ratios 0.5, 2, 4,
    # 0.25, 0.5 rank 2.5, 4, 5, 1, 2.5; size_only = the mean of rank / 5; (d, a) has no size
    toy = pairs.loc["toy", "size_only"]
    expected = {("a", "b"): 0.75, ("b", "a"): 0.5, ("c", "a"): 0.85, ("a", "c"): 0.45,
                ("b", "c"): 0.45}
    assert {k: toy[k] for k in expected} == pytest.approx(expected)
    assert np.isnan(toy[("d", "a")])
    assert pairs.loc[("other", "a", "b"), "size_only"] == 1.0   # ranked within its dataset
    assert "size_only" in DERIVED_PREDICTORS and PREDICTORS[0] == "size_only"
    # runs whose delta is the accuracy lead: ts_diff ranks them perfectly; size_only's ranks
    # 4, 3, 5, 1.5, 1.5 against 5, 1, 3.5, 3.5, 2 give Spearman 3.75 / 9.5 = 15 / 38
    runs = [dict.fromkeys(TABLES["transfer_runs"].names) | {
        "key": f"kl-{t}-{s}", "teacher": t, "student": s, "method": "kl", "dataset": "toy",
        "status": "ok", "compat": "", "seed": 0, "mode": "", "dist_delta": g}
        for (t, s), g in gaps.items() if (t, s) in expected]
    write_part(tmp_path, "transfer_runs", pd.DataFrame(runs), "runs")
    data = predictor_runs(tmp_path)
    table = correlation_table(data, boot=50)
    best = best_predictors(table, data, "kl").set_index("predictor")
    assert best.loc["size_only", "spearman"] == pytest.approx(15 / 38)
    assert best.loc["ts_diff", "vs_size_only"] == pytest.approx(1 - 15 / 38)
    assert best.loc["size_only", "vs_size_only"] == 0.0
