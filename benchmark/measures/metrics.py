"""Per-epoch transfer metrics of a student against its teacher (docs/definitions.md#transfer-metrics), with the official
key names of `dist_utils.get_metrics` and `flip_study.get_dist_improvement`.

s0 is the student before transfer ("zero"), s the student now ("dist"), t the teacher. In pair
terms (stats.py: a positive flip is the second model wrong and the first right):
knowledge_gain / knowledge_loss are the positive / negative flips of s over s0, positive_flips /
negative_flips those of t over s (the complementary knowledge left), and the class ranking uses
the initial complementary knowledge, the positive flips of t over s0, per class.
"""
import numpy as np

from benchmark.measures.stats import (OFFICIAL_CLASS_COLUMNS, check_compat, class_entropy,
                             class_flip_counts, percent, top_p_class_count)
from results.errors import InputError
from results.schema import TOP_P_IMPROVE

_ZERO, _DIST, _TEACHER = 0, 1, 2
_ALL_CLASSES = TOP_P_IMPROVE.index(100)   # K_100: the classes holding all initial flips
# (first, second) model of each flip count: knowledge gained, initial and remaining
_PAIRS = {"gained": (_DIST, _ZERO), "initial": (_TEACHER, _ZERO), "remaining": (_TEACHER, _DIST)}


def transfer_metrics(zero_preds, dist_preds, teacher_preds, labels, num_classes,
                     compat=None) -> dict[str, float]:
    """The official metric dict; accuracies and flips in % of the samples.

    Default, the definitions: top{p}%_improve is the share of gained flips (s0 -> s, per class)
    in the K_p classes holding p% of the initial complementary knowledge, ranked by a stable
    sort (ties by class index) and K_p the true smallest count; other_improve the share outside
    the K_100 classes; transfer_rate the gained flips in the K_100 classes / all initial
    positive flips x 100; ent_dist_flips the entropy of the gained flips per class. A share of
    nothing is nan: with no gained flips the shares and the entropy are nan (transfer_rate is
    0); with no initial positive flips every K_p is 0 classes, so the top shares are 0,
    other_improve 100 and transfer_rate 0/0 = nan.

    Beyond the official keys: transfer_rate_top{p}, the transfer rate of the authors' plots,
    100 - p + 100 x (gained flips in the K_p classes) / (positive flips of t over s left), nan
    when none is left; complementary_transferred, the share of the samples of the initial
    complementary knowledge (s0 wrong, t right) that s gets right, nan when there were none.

    compat="fantasticgains": `get_dist_improvement` as released: 1000-column per-class vectors,
    numpy's default (unstable) argsort reversed, K_p + 1 classes, other_improve =
    100 - top100%_improve, and numpy's division semantics (0/0 = nan, x/0 = inf); the
    transfer_rate_top{p} take those K_p + 1 classes, as the plots read the logged fields.
    """
    check_compat(compat)
    if compat and num_classes > OFFICIAL_CLASS_COLUMNS:
        raise InputError(f"compat {compat!r} handles at most {OFFICIAL_CLASS_COLUMNS} classes")
    labels = np.asarray(labels)
    correct = np.stack([zero_preds, dist_preds, teacher_preds]) == labels
    first, second = np.array(list(_PAIRS.values())).T
    pos, neg = class_flip_counts(correct, labels, num_classes, first, second)
    gained, initial, remaining = range(len(_PAIRS))
    n = labels.size
    flips = percent(pos.sum(axis=1, dtype=np.int64), n)
    losses = percent(neg.sum(axis=1, dtype=np.int64), n)
    accuracy = percent(correct.sum(axis=1), n)
    gained_in_top = _gains_in_top_classes(pos[initial], pos[gained], compat)
    metrics = {
        "student_acc": accuracy[_DIST],
        "dist_delta": accuracy[_DIST] - accuracy[_ZERO],
        "knowledge_gain": flips[gained],
        "knowledge_loss": losses[gained],
        "positive_flips": flips[remaining],
        "negative_flips": losses[remaining],
        "pos_flips_delta": flips[remaining] - flips[initial],
        "neg_flips_delta": losses[remaining] - losses[initial],
        **_class_focus(gained_in_top, pos[initial].sum(), pos[gained], compat),
        **_remaining_transfer_rates(gained_in_top, pos[remaining].sum(), compat),
        # initial complementary knowledge (s0 wrong, t right) that s now gets right
        "complementary_transferred": percent(
            np.count_nonzero(~correct[_ZERO] & correct[_TEACHER] & correct[_DIST]),
            pos[initial].sum()),
    }
    return {name: float(value) for name, value in metrics.items()}


def _gains_in_top_classes(initial, gained, compat):
    """The gained flips in the K_p classes with the most initial flips, for each p of
    TOP_P_IMPROVE (compat: the official ranking and K_p + 1 classes)."""
    if compat:
        initial, gained = _official_columns(initial), _official_columns(gained)
        ranking = np.argsort(initial)[::-1]
    else:
        ranking = np.argsort(-initial.astype(np.int64), kind="stable")
    top_k = top_p_class_count(initial, TOP_P_IMPROVE, compat)
    gained_in_best = np.concatenate([[0], np.cumsum(gained[ranking])])   # in the k best, each k
    return gained_in_best[np.minimum(top_k, len(ranking))]              # official k can pass K


def _class_focus(gained_in_top, total_initial, gained, compat):
    """top{p}%_improve, other_improve, ent_dist_flips and transfer_rate (get_dist_improvement)."""
    if compat:
        gained = _official_columns(gained)
    total_gained = gained.sum()
    improve = percent(gained_in_top, total_gained)
    other = (100 - improve[_ALL_CLASSES] if compat
             else percent(total_gained - gained_in_top[_ALL_CLASSES], total_gained))
    return {
        **{f"top{p}%_improve": share for p, share in zip(TOP_P_IMPROVE, improve)},
        "other_improve": other,
        "ent_dist_flips": class_entropy(gained),
        "transfer_rate": percent(gained_in_top[_ALL_CLASSES], total_initial),
    }


def _official_columns(per_class):
    """The official float64 vector of 1000 columns (get_flips_per_class), whose ties the
    unstable argsort orders as the official code does."""
    padded = np.zeros(OFFICIAL_CLASS_COLUMNS)
    padded[:len(per_class)] = per_class
    return padded


def _remaining_transfer_rates(gained_in_top, remaining, compat):
    """transfer_rate_top{p}: the transfer rate the paper plots, over the complementary knowledge
    left at the end: 100 - p + 100 x (gained flips in the K_p classes) / (positive flips left).
    Nothing left: nan by default (compat: numpy's x/0)."""
    rates = 100 - np.asarray(TOP_P_IMPROVE) + percent(gained_in_top, remaining)
    if not compat and remaining == 0:
        rates = np.full(len(TOP_P_IMPROVE), np.nan)
    return {f"transfer_rate_top{p}": rate for p, rate in zip(TOP_P_IMPROVE, rates)}
