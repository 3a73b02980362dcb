"""benchmark.measures.stats: hand-worked cases, the official per-sample loops on random data, edge cases."""
import math
from fractions import Fraction

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from scipy.stats import entropy as scipy_entropy

from benchmark.measures import stats
from benchmark.measures.stats import (class_entropy, class_flip_counts, ensemble_correct_counts,
                             pair_statistics, top_p_class_count)
from results.schema import TABLES, TOP_P_CLASSES

nan = float("nan")

# Three models on 8 samples of 3 classes. Right (1) / wrong (0) per sample:
#   A 1 1 0 1 1 0 1 0   (5/8)      labels 0 0 0 1 1 1 2 2
#   B 1 0 0 1 0 1 1 1   (5/8)
#   C 0 1 1 0 1 1 1 1   (6/8)
LABELS = np.array([0, 0, 0, 1, 1, 1, 2, 2])
PREDS = np.array([[0, 0, 1, 1, 1, 0, 2, 0],
                  [0, 1, 1, 1, 0, 1, 2, 2],
                  [2, 0, 0, 0, 1, 1, 2, 2]])
P_MAX = np.array([[0.9, 0.8, 0.5, 0.6, 0.7, 0.3, 0.9, 0.3],
                  [0.5, 0.8, 0.6, 0.9, 0.2, 0.4, 0.9, 0.6],
                  [0.95, 0.1, 0.2, 0.99, 0.3, 0.5, 0.9, 0.7]], dtype=np.float32)
A, B, C = 0, 1, 2
TEACHERS, STUDENTS = [A, C, B, B, A], [B, A, C, A, A]

# Worked by hand from the rows above (ln = natural log):
#  A->B: pos (B wrong, A right) samples 1, 4 -> classes [1,1,0]; neg samples 5, 7 -> [0,1,1].
#        ensemble: sample 1 is a 0.8/0.8 tie, so the teacher A (right) decides; 0 2 are B's,
#        4 is A's: 7/8 (sample 6 is a tie too, but both are right there).
#  C->A: pos samples 2, 5, 7 -> [1,1,1]; neg samples 0, 3 -> [1,1,0]; ensemble 5/8.
#  B->C: pos samples 0, 3 -> [1,1,0]; neg samples 1, 2, 4 -> [2,1,0]; ensemble 4/8.
#  B->A: the reverse of A->B: pos [0,1,1], neg [1,1,0]; the sample-1 tie now goes to the
#        teacher B (wrong): 6/8.
#  A->A: no flips; entropies nan; ensemble = A.
EXPECTED = {
    "acc_t": [62.5, 75.0, 62.5, 62.5, 62.5],
    "acc_s": [62.5, 62.5, 75.0, 62.5, 62.5],
    "ts_diff": [0.0, 12.5, -12.5, 0.0, 0.0],
    "pos_flips": [25.0, 37.5, 25.0, 25.0, 0.0],
    "neg_flips": [25.0, 25.0, 37.5, 25.0, 0.0],
    "pos_entropy": [math.log(2), math.log(3), math.log(2), math.log(2), nan],
    "neg_entropy": [math.log(2), math.log(2), math.log(3) - 2 / 3 * math.log(2), math.log(2), nan],
    # top-p% classes of pos: [1,1,0] needs 1 class for every p; [1,1,1] needs 2 for 50%
    "pos_classes_top2": [1, 1, 1, 1, 0],
    "pos_classes_top5": [1, 1, 1, 1, 0],
    "pos_classes_top20": [1, 1, 1, 1, 0],
    "pos_classes_top50": [1, 2, 1, 1, 0],
    "ensemble_acc": [87.5, 62.5, 50.0, 75.0, 62.5],
}
EXPECTED_CLASS_FLIPS = {   # (pos per class, neg per class)
    ("A", "B"): ([1, 1, 0], [0, 1, 1]),
    ("C", "A"): ([1, 1, 1], [1, 1, 0]),
    ("B", "C"): ([1, 1, 0], [2, 1, 0]),
    ("B", "A"): ([0, 1, 1], [1, 1, 0]),
    ("A", "A"): ([0, 0, 0], [0, 0, 0]),
}


def hand_case(compat=None):
    return pair_statistics(PREDS, P_MAX, LABELS, 3, TEACHERS, STUDENTS, ["A", "B", "C"],
                           "toy", compat)


def test_pair_stats_hand_case():
    pair_stats, _ = hand_case()
    assert list(pair_stats["teacher"]) == ["A", "C", "B", "B", "A"]
    assert list(pair_stats["student"]) == ["B", "A", "C", "A", "A"]
    assert set(pair_stats["dataset"]) == {"toy"} and set(pair_stats["compat"]) == {""}
    for column, expected in EXPECTED.items():
        np.testing.assert_allclose(pair_stats[column], expected, rtol=1e-12, err_msg=column)


def test_class_flips_hand_case():
    _, flips = hand_case()
    assert len(flips) == len(TEACHERS) * 3
    class_flips = flips.to_frame()
    for (teacher, student), (pos, neg) in EXPECTED_CLASS_FLIPS.items():
        rows = class_flips[(class_flips.teacher == teacher) & (class_flips.student == student)]
        assert list(rows["class"]) == [0, 1, 2]
        assert list(rows["pos"]) == pos and list(rows["neg"]) == neg


def test_compat_changes_only_the_top_p_counts():
    default, default_flips = hand_case()
    compat, compat_flips = hand_case("fantasticgains")
    assert set(compat["compat"]) == {"fantasticgains"}
    # the official loop returns K + 1, and 2 for an all-zero vector (A->A)
    assert list(compat["pos_classes_top20"]) == [2, 2, 2, 2, 2]
    assert list(compat["pos_classes_top50"]) == [2, 3, 2, 2, 2]
    same = [c for c in default.columns if c != "compat" and not c.startswith("pos_classes_top")]
    pd.testing.assert_frame_equal(default[same], compat[same])
    pd.testing.assert_frame_equal(default_flips.to_frame(), compat_flips.to_frame())


def test_tables_match_the_schema():
    pair_stats, class_flips = hand_case()
    for table, frame in (("pair_stats", pair_stats), ("class_flips", class_flips.to_frame())):
        assert list(frame.columns) == TABLES[table].names
        arrow = pa.Table.from_pandas(frame, schema=TABLES[table], preserve_index=False)
        assert arrow.num_rows == len(frame)


def test_class_flips_come_in_frames_of_whole_pairs():
    _, flips = hand_case()
    whole = flips.to_frame()
    frames = list(flips.frames(rows=7))                # 7 rows: 2 pairs (6 rows) per frame
    assert [len(f) for f in frames] == [6, 6, 3]
    pd.testing.assert_frame_equal(pd.concat(frames, ignore_index=True), whole)
    assert flips.pos.dtype == np.uint8                 # at most 255 samples in a class


def test_ensemble_ties_go_to_the_teacher():
    correct = PREDS == LABELS
    # A->B and B->A differ only through the tie on sample 1 (A right, B wrong): the teacher
    # decides, as in the authors' ensemble (the student only when strictly more confident)
    counts = ensemble_correct_counts(correct, P_MAX, [A, B], [B, A])
    assert list(counts) == [7, 6]
    # a hand-made tie on every sample: the ensemble is the teacher, whoever is right
    tie = np.full((2, 4), 0.5, dtype=np.float32)
    right = np.array([[True, True, False, False], [True, False, True, False]])
    assert list(ensemble_correct_counts(right, tie, [0, 1], [1, 0])) == [2, 2]
    right[1] = [False, False, False, True]
    assert list(ensemble_correct_counts(right, tie, [0, 1], [1, 0])) == [2, 1]


# ---------------------------------------------------------------- top-p% class counts

@pytest.mark.parametrize("p, default, official", [
    (2, 1, 2), (50, 1, 2), (51, 2, 3), (80, 2, 3), (100, 3, 4), (0, 0, 1), (-5, 0, 1)])
def test_top_p_hand_case(p, default, official):
    counts = np.array([5, 0, 3, 2])   # sorted 5 3 2 0: cumulative 50%, 80%, 100%
    assert top_p_class_count(counts, p) == default
    assert top_p_class_count(counts, p, "fantasticgains") == official


def test_top_p_all_zero():
    zeros = np.zeros(4, int)
    assert list(top_p_class_count(zeros, [0, 2, 100])) == [0, 0, 0]
    # official: 0/0 = nan stops the loop after one pass, so k = 2; p <= 0 never enters it
    assert list(top_p_class_count(zeros, [0, 2, 100], "fantasticgains")) == [1, 2, 2]


def test_top_p_official_float_share():
    counts = np.array([29] + [1] * 71)   # the top class holds exactly 29 of 100
    assert top_p_class_count(counts, 29) == 1
    # 29/100*100 = 28.999999999999996 < 29, so the official loop takes a second class, then stops
    assert top_p_class_count(counts, 29, "fantasticgains") == 3


def test_top_p_official_count_can_exceed_the_class_count():
    assert top_p_class_count(np.array([1, 1]), 100, "fantasticgains") == 3


def test_top_p_shapes_and_refusals():
    counts = np.arange(24).reshape(2, 3, 4)
    assert top_p_class_count(counts, 50).shape == (2, 3)
    assert top_p_class_count(counts, [5, 50]).shape == (2, 2, 3)
    with pytest.raises(ValueError, match="at most 100"):
        top_p_class_count(counts, 101)
    with pytest.raises(ValueError, match="unknown compat"):
        top_p_class_count(counts, 50, "fantastic")


def official_top_p(counts, p):
    """The official loop, rewritten from docs/compat.md (argsort descending, k starts at 1)."""
    order = np.argsort(counts)[::-1]
    share, k = 0, 1
    with np.errstate(invalid="ignore"):
        while share < p:
            share = np.sum(counts[order[:k]]) / np.sum(counts) * 100
            k += 1
    return k


def exact_top_p(counts, p):
    """Smallest K whose K largest counts hold >= p% of the total, in exact arithmetic."""
    total, held = sum(counts), 0
    for k, count in enumerate([0] + sorted(counts, reverse=True)):
        held += count
        if 100 * held >= Fraction(p) * total:
            return k


def test_top_p_matches_the_loops_on_random_counts():
    rng = np.random.default_rng(0)
    counts = rng.integers(0, 4, size=(300, 12)) * (rng.random((300, 12)) < 0.6)
    counts[:5] = 0
    ps = [2, 5, 20, 29, 50, 100]
    default = top_p_class_count(counts.astype(np.uint8), ps)
    official = top_p_class_count(counts, ps, "fantasticgains")
    for row in range(len(counts)):
        for j, p in enumerate(ps):
            assert default[j, row] == exact_top_p(list(counts[row]), p)
            padded = np.zeros(1000)
            padded[:12] = counts[row]
            assert official[j, row] == official_top_p(padded, p)


# ---------------------------------------------------------------- entropy

def test_class_entropy_hand_cases():
    counts = np.array([[1, 1, 0], [2, 1, 0], [5, 0, 0], [0, 0, 0]])
    expected = [math.log(2), math.log(3) - 2 / 3 * math.log(2), 0.0, nan]
    np.testing.assert_allclose(class_entropy(counts), expected, rtol=1e-12)
    assert class_entropy([0.5, 0.5]) == pytest.approx(math.log(2))


def test_class_entropy_agrees_with_scipy():
    rng = np.random.default_rng(1)
    counts = rng.integers(0, 6, size=(200, 30)) * (rng.random((200, 30)) < 0.5)
    np.testing.assert_allclose(class_entropy(counts), scipy_entropy(counts, axis=1),
                               rtol=1e-12, atol=1e-14)


# ---------------------------------------------------------------- against per-sample loops

def loop_pair_stats(preds, p_max, labels, num_classes, teacher, student):
    """One pair, sample by sample, as the official get_flips / get_flips_per_class do."""
    n = len(labels)
    pos, neg = [0] * num_classes, [0] * num_classes
    ensemble_right = 0
    for i, y in enumerate(labels):
        s_right, t_right = preds[student][i] == y, preds[teacher][i] == y
        if not s_right and t_right:
            pos[y] += 1
        elif s_right and preds[teacher][i] != preds[student][i]:
            neg[y] += 1
        chosen = student if p_max[student][i] > p_max[teacher][i] else teacher
        ensemble_right += preds[chosen][i] == y
    acc = [sum(preds[m][i] == y for i, y in enumerate(labels)) / n * 100
           for m in (teacher, student)]
    with np.errstate(invalid="ignore"):
        row = {"acc_t": acc[0], "acc_s": acc[1], "ts_diff": acc[0] - acc[1],
               "pos_flips": sum(pos) / n * 100, "neg_flips": sum(neg) / n * 100,
               "pos_entropy": scipy_entropy(pos), "neg_entropy": scipy_entropy(neg),
               "ensemble_acc": ensemble_right / n * 100}
    row.update({f"pos_classes_top{p}": exact_top_p(pos, p) for p in TOP_P_CLASSES})
    return row, pos, neg


def random_zoo(seed, models=6, samples=90, classes=5):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, samples)
    skill = rng.uniform(0.3, 0.9, (models, 1))
    preds = np.where(rng.random((models, samples)) < skill, labels,
                     rng.integers(0, classes, (models, samples)))
    p_max = (rng.integers(1, 6, (models, samples)) / 5).astype(np.float32)   # many ties
    teachers, students = np.meshgrid(np.arange(models), np.arange(models), indexing="ij")
    return preds, p_max, labels, classes, teachers.ravel(), students.ravel()


@pytest.mark.parametrize("seed", [0, 1])
def test_pair_statistics_matches_the_loops(seed):
    preds, p_max, labels, classes, teachers, students = random_zoo(seed)
    names = [f"m{m}" for m in range(len(preds))]
    pair_stats, class_flips = pair_statistics(preds, p_max, labels, classes, teachers,
                                              students, names, "rand")
    for p, (t, s) in enumerate(zip(teachers, students)):
        row, pos, neg = loop_pair_stats(preds, p_max, labels, classes, t, s)
        for column, value in row.items():
            assert pair_stats[column][p] == pytest.approx(value, rel=1e-12, nan_ok=True), column
        flips = class_flips.to_frame().iloc[p * classes:(p + 1) * classes]
        assert list(flips["pos"]) == pos and list(flips["neg"]) == neg


def test_blocks_and_chunks_do_not_change_results(monkeypatch):
    preds, p_max, labels, classes, teachers, students = random_zoo(2, models=9)
    order = np.random.default_rng(3).permutation(len(teachers))[:50]   # a sparse, shuffled plan
    args = (preds, p_max, labels, classes, teachers[order], students[order],
            [f"m{m}" for m in range(len(preds))], "rand")
    whole = pair_statistics(*args)
    for name, tiny in [("_GRID_CELLS", 20), ("_ENSEMBLE_GRID_CELLS", 3), ("_BUFFER_CELLS", 7),
                       ("_ROW_CHUNK", 4)]:
        monkeypatch.setattr(stats, name, tiny)
    blocked = pair_statistics(*args)
    pd.testing.assert_frame_equal(whole[0], blocked[0])
    pd.testing.assert_frame_equal(whole[1].to_frame(), blocked[1].to_frame())


def test_positive_flips_difference_is_the_accuracy_difference():
    preds, p_max, labels, classes, teachers, students = random_zoo(4, models=5)
    pair_stats, _ = pair_statistics(preds, p_max, labels, classes, teachers, students,
                                    list("abcde"), "rand")
    forward = pair_stats.set_index(["teacher", "student"])
    backward = forward.swaplevel().sort_index().reindex(forward.index)
    # rho_pos(t->s) - rho_pos(s->t) = acc_t - acc_s
    np.testing.assert_allclose(forward["pos_flips"] - backward["pos_flips"], forward["ts_diff"],
                               atol=1e-9)
    np.testing.assert_allclose(forward["neg_flips"], backward["pos_flips"])


def test_class_flip_counts_direct():
    correct = PREDS == LABELS
    pos, neg = class_flip_counts(correct, LABELS, 3, [C], [A])
    assert pos.tolist() == [[1, 1, 1]] and neg.tolist() == [[1, 1, 0]]


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="unknown compat"):
        hand_case("official")
    with pytest.raises(ValueError, match="labels must lie"):
        pair_statistics(PREDS, P_MAX, LABELS, 2, TEACHERS, STUDENTS, ["A", "B", "C"], "toy")
    with pytest.raises(ValueError, match="pair indices"):
        pair_statistics(PREDS, P_MAX, LABELS, 3, [3], [0], ["A", "B", "C"], "toy")
