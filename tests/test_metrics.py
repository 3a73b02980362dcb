"""benchmark.measures.metrics: hand-worked cases, the official per-sample loops, edge cases."""
import math

import numpy as np
import pytest
from scipy.stats import entropy as scipy_entropy

from benchmark.measures.metrics import transfer_metrics
from results.schema import TRANSFER_METRICS, TRANSFER_RATES, metric_column

nan = float("nan")

# 10 samples of 3 classes; right (1) / wrong (0) per sample:
#   labels   0 0 0 0 1 1 1 2 2 2
#   s0       0 0 1 1 0 0 1 0 1 1   (50%)
#   teacher  1 1 1 0 1 0 1 1 0 1   (70%)
#   s        1 0 1 0 0 1 1 1 1 1   (70%)
LABELS = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 2])


def predictions(right):
    """A prediction that is right where `right` is 1 and some other class elsewhere."""
    return np.where(np.array(right) == 1, LABELS, (LABELS + 1) % 3)


ZERO = predictions([0, 0, 1, 1, 0, 0, 1, 0, 1, 1])
TEACHER = predictions([1, 1, 1, 0, 1, 0, 1, 1, 0, 1])
DIST = predictions([1, 0, 1, 0, 0, 1, 1, 1, 1, 1])

# By hand: initial pos flips (s0 wrong, teacher right) samples 0 1 4 7 -> per class [2, 1, 1];
# initial neg 3 8; gained (s0 wrong, s right) 0 5 7 -> [1, 1, 1]; lost 3; remaining pos
# (s wrong, teacher right) 1 4; remaining neg 5 8. Ranking: class 0, then 1 and 2 (tied).
# Default K_p: 1 class for p = 2..50 (class 0 holds 50%), 3 for 100%.
# Transfer rates over the 2 positive flips left (samples 1 4): TR_p = 100 - p + 100 G_p / 2 with
# G_p the gains in the K_p classes: 1 (class 0) for p = 2..50, 3 for 100. Of the 4 initial
# positive flips (0 1 4 7) s now gets 0 and 7 right: 50% transferred (sample 5 is a gain the
# teacher did not have, so it does not count).
HAND_SHARED = {
    "student_acc": 70.0, "dist_delta": 20.0, "knowledge_gain": 30.0, "knowledge_loss": 10.0,
    "positive_flips": 20.0, "negative_flips": 20.0, "pos_flips_delta": -20.0,
    "neg_flips_delta": 0.0, "top100%_improve": 100.0, "other_improve": 0.0,
    "ent_dist_flips": math.log(3), "transfer_rate": 75.0,
    "transfer_rate_top100": 150.0, "complementary_transferred": 50.0,
}
HAND_DEFAULT = {**HAND_SHARED, **{f"top{p}%_improve": 100 / 3 for p in (2, 5, 20, 50)},
                "transfer_rate_top2": 148.0, "transfer_rate_top5": 145.0,
                "transfer_rate_top20": 130.0, "transfer_rate_top50": 100.0}
# official: K + 1 = 2 classes for p = 2..50 (class 0 and one of the tied 1, 2: 2 of 3 gains),
# so G_p = 2 there
HAND_OFFICIAL = {**HAND_SHARED, **{f"top{p}%_improve": 200 / 3 for p in (2, 5, 20, 50)},
                 "transfer_rate_top2": 198.0, "transfer_rate_top5": 195.0,
                 "transfer_rate_top20": 180.0, "transfer_rate_top50": 150.0}


def assert_metrics(actual, expected):
    assert set(actual) == set(expected)
    for name, value in expected.items():
        assert actual[name] == pytest.approx(value, rel=1e-12, abs=1e-12, nan_ok=True), name


def test_hand_case_default():
    assert_metrics(transfer_metrics(ZERO, DIST, TEACHER, LABELS, 3), HAND_DEFAULT)


def test_hand_case_official():
    assert_metrics(transfer_metrics(ZERO, DIST, TEACHER, LABELS, 3, "fantasticgains"),
                   HAND_OFFICIAL)


def test_keys_are_the_official_names_in_schema_order():
    metrics = transfer_metrics(ZERO, DIST, TEACHER, LABELS, 3)
    assert [metric_column(name) for name in metrics] == TRANSFER_METRICS + TRANSFER_RATES
    assert all(type(value) is float for value in metrics.values())


def test_no_gained_flips():
    metrics = transfer_metrics(ZERO, ZERO, TEACHER, LABELS, 3)
    assert metrics["knowledge_gain"] == metrics["knowledge_loss"] == metrics["dist_delta"] == 0
    for name in ["top2%_improve", "top100%_improve", "other_improve", "ent_dist_flips"]:
        assert math.isnan(metrics[name]), name
    assert metrics["transfer_rate"] == 0.0
    # all 4 initial positive flips are left and none moved: TR_p = 100 - p, nothing transferred
    assert [metrics[f"transfer_rate_top{p}"] for p in (2, 5, 20, 50, 100)] == [98, 95, 80, 50, 0]
    assert metrics["complementary_transferred"] == 0.0


def test_no_initial_complementary_knowledge():
    metrics = transfer_metrics(ZERO, DIST, ZERO, LABELS, 3)   # the teacher is s0
    # every K_p is 0 classes: no gain lies in them, all lie outside; the rate is 0/0
    assert metrics["top2%_improve"] == metrics["top100%_improve"] == 0.0
    assert metrics["other_improve"] == 100.0
    assert math.isnan(metrics["transfer_rate"])
    # one positive flip left (sample 3, which s lost): TR_p = 100 - p + 0 / 1
    assert [metrics[f"transfer_rate_top{p}"] for p in (2, 5, 20, 50, 100)] == [98, 95, 80, 50, 0]
    assert math.isnan(metrics["complementary_transferred"])   # 0 of 0


def test_no_complementary_knowledge_left():
    # s learns every teacher-right sample: nothing left to divide by
    metrics = transfer_metrics(ZERO, TEACHER, TEACHER, LABELS, 3)
    assert metrics["positive_flips"] == 0.0 and metrics["complementary_transferred"] == 100.0
    for p in (2, 5, 20, 50, 100):
        assert math.isnan(metrics[f"transfer_rate_top{p}"]), p
    official = transfer_metrics(ZERO, TEACHER, TEACHER, LABELS, 3, "fantasticgains")
    assert all(official[f"transfer_rate_top{p}"] == math.inf for p in (2, 5, 20, 50, 100))


def test_refusals():
    with pytest.raises(ValueError, match="unknown compat"):
        transfer_metrics(ZERO, DIST, TEACHER, LABELS, 3, "fantasticgain")
    with pytest.raises(ValueError, match="1000 classes"):
        transfer_metrics(ZERO, DIST, TEACHER, LABELS, 1001, "fantasticgains")


# ---------------------------------------------------------------- the official code, rewritten

def official_flips(a, b, true):
    """get_flips: positive = a wrong and b right; negative = a right and b != a."""
    pos = sum(a[i] != y and b[i] == y for i, y in enumerate(true))
    neg = sum(a[i] == y and b[i] != a[i] for i, y in enumerate(true))
    return pos / len(true) * 100, neg / len(true) * 100


def official_positive_flips_per_class(a, b, true):
    per_class = np.zeros(1000)
    for i, y in enumerate(true):
        per_class[y] += a[i] != y and b[i] == y
    return per_class


def official_k(per_class, p):
    order = np.argsort(per_class)[::-1]
    share, k = 0, 1
    while share < p:
        share = np.sum(per_class[order[:k]]) / np.sum(per_class) * 100
        k += 1
    return k


@np.errstate(invalid="ignore", divide="ignore")   # the official code divides by zero freely
def official_metrics(zero, dist, teacher, true):
    """dist_utils.get_metrics + flip_study.get_dist_improvement, as docs/compat.md describes them."""
    accuracy = [np.mean(np.asarray(m) == true) * 100 for m in (dist, zero)]
    gain, loss = official_flips(zero, dist, true)
    initial_pos, initial_neg = official_flips(zero, teacher, true)
    left_pos, left_neg = official_flips(dist, teacher, true)
    initial = official_positive_flips_per_class(zero, teacher, true)
    gained = official_positive_flips_per_class(zero, dist, true)
    order = np.argsort(initial)[::-1]
    ks = [official_k(initial, p) for p in (2, 5, 20, 50, 100)]
    metrics = {"student_acc": accuracy[0], "dist_delta": accuracy[0] - accuracy[1],
               "knowledge_gain": gain, "knowledge_loss": loss, "positive_flips": left_pos,
               "negative_flips": left_neg, "pos_flips_delta": left_pos - initial_pos,
               "neg_flips_delta": left_neg - initial_neg}
    for p, k in zip((2, 5, 20, 50, 100), ks):
        metrics[f"top{p}%_improve"] = np.sum(gained[order[:k]]) / np.sum(gained) * 100
    metrics["other_improve"] = 100 - metrics["top100%_improve"]
    metrics["ent_dist_flips"] = scipy_entropy(gained)
    metrics["transfer_rate"] = np.sum(gained[order[:ks[-1]]]) / np.sum(initial) * 100
    for p in (2, 5, 20, 50, 100):   # transfer_rate_plot_a, from the logged fields
        metrics[f"transfer_rate_top{p}"] = 100 - (p * left_pos - metrics[f"top{p}%_improve"]
                                                  * gain) / left_pos
    return metrics


def correct_metrics(zero, dist, teacher, true, num_classes):
    """The default definitions, sample by sample and class by class."""
    n = len(true)
    initial = [sum(zero[i] != y and teacher[i] == y for i, y in enumerate(true) if y == k)
               for k in range(num_classes)]
    gained = [sum(zero[i] != y and dist[i] == y for i, y in enumerate(true) if y == k)
              for k in range(num_classes)]
    ranking = sorted(range(num_classes), key=lambda k: -initial[k])   # stable: ties by index
    metrics = {}
    for p in (2, 5, 20, 50, 100):
        k = next(k for k in range(num_classes + 1)
                 if 100 * sum(initial[c] for c in ranking[:k]) >= p * sum(initial))
        metrics[f"top{p}%_improve"] = (sum(gained[c] for c in ranking[:k]) / sum(gained) * 100
                                       if sum(gained) else nan)
        remaining = sum(dist[i] != y and teacher[i] == y for i, y in enumerate(true))
        metrics[f"transfer_rate_top{p}"] = (100 - p + 100 * sum(gained[c] for c in ranking[:k])
                                            / remaining if remaining else nan)
        if p == 100:
            metrics["other_improve"] = (100 * (sum(gained) - sum(gained[c] for c in ranking[:k]))
                                        / sum(gained) if sum(gained) else nan)
            metrics["transfer_rate"] = (sum(gained[c] for c in ranking[:k]) / sum(initial) * 100
                                        if sum(initial) else nan)
    metrics["ent_dist_flips"] = scipy_entropy(gained) if sum(gained) else nan
    complementary = [i for i, y in enumerate(true) if zero[i] != y and teacher[i] == y]
    metrics["complementary_transferred"] = (
        100 * sum(dist[i] == true[i] for i in complementary) / len(complementary))
    accuracy = [sum(m[i] == y for i, y in enumerate(true)) / n * 100 for m in (dist, zero)]
    metrics.update(student_acc=accuracy[0], dist_delta=accuracy[0] - accuracy[1])
    return metrics


def random_run(seed, classes=10, samples=200):
    rng = np.random.default_rng(seed)
    true = rng.integers(0, classes, samples)

    def model(skill):
        return np.where(rng.random(samples) < skill, true, rng.integers(0, classes, samples))
    return model(0.5), model(0.6), model(0.75), true


@pytest.mark.parametrize("seed", range(4))
def test_official_mode_reproduces_the_official_code(seed):
    zero, dist, teacher, true = random_run(seed)
    expected = official_metrics(zero, dist, teacher, true)
    actual = transfer_metrics(zero, dist, teacher, true, 10, "fantasticgains")
    for name, value in expected.items():
        if name == "ent_dist_flips" or name.startswith("transfer_rate_top"):   # other rounding
            assert actual[name] == pytest.approx(value, rel=1e-12)
        else:
            assert actual[name] == value or (math.isnan(actual[name]) and math.isnan(value)), name


def test_official_mode_without_initial_flips_matches_too():
    zero, dist, _, true = random_run(7)
    expected = official_metrics(zero, dist, zero, true)   # pos all zero: k = 2 everywhere, x/0
    actual = transfer_metrics(zero, dist, zero, true, 10, "fantasticgains")
    for name in ["top2%_improve", "top100%_improve", "transfer_rate"]:
        assert actual[name] == expected[name] or (math.isnan(actual[name])
                                                  and math.isnan(expected[name])), name


@pytest.mark.parametrize("seed", range(4))
def test_default_mode_matches_the_definitions(seed):
    zero, dist, teacher, true = random_run(seed)
    metrics = transfer_metrics(zero, dist, teacher, true, 10)
    for name, value in correct_metrics(zero, dist, teacher, true, 10).items():
        assert metrics[name] == pytest.approx(value, rel=1e-12, nan_ok=True), name


@pytest.mark.parametrize("seed", range(3))
def test_delta_is_gain_minus_loss(seed):
    zero, dist, teacher, true = random_run(seed)
    metrics = transfer_metrics(zero, dist, teacher, true, 10)
    assert metrics["dist_delta"] == pytest.approx(
        metrics["knowledge_gain"] - metrics["knowledge_loss"], abs=1e-9)
