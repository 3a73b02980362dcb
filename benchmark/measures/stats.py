"""Complementary-knowledge statistics of model pairs, vectorised over models, pairs and classes.

Definitions: docs/definitions.md. A pair is (teacher, student). A positive flip is a sample the
student gets wrong and the teacher right (rho_pos), a negative flip one the student gets right
and the teacher wrong (rho_neg); each flip is counted under its true label. The official
`get_flips` tests "a right and b != a" for a negative flip, which is "a right and b wrong".

`compat="fantasticgains"` reproduces the official code's numbers where they differ from the
definitions (docs/compat.md). Among these statistics only the top-p% class count differs.
"""
import dataclasses
from typing import Iterator

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.special import xlogy
from threadpoolctl import threadpool_limits

from results.errors import InputError
from results.schema import TABLES, TOP_P_CLASSES

COMPAT_MODES = ("fantasticgains",)
OFFICIAL_CLASS_COLUMNS = 1000   # the official per-class vectors have 1000 columns on any dataset
_GRID_CELLS = 2**26             # cells of a (models x models x classes) grid held at once
_ENSEMBLE_GRID_CELLS = 2**14    # small grids: blocks then follow the triangle of unordered pairs
_BUFFER_CELLS = 2**20           # cells of a working buffer meant to stay in cache
_ROW_CHUNK = 1024               # pairs summarised at once, to bound temporaries
_FLIP_ROWS = 4_000_000          # class_flips rows per DataFrame (and results part)


def check_compat(compat) -> None:
    if compat is not None and compat not in COMPAT_MODES:
        raise InputError(f"unknown compat mode {compat!r}: use None or {', '.join(COMPAT_MODES)}")


def percent(count, total):
    """count / total x 100, in the official code's order of operations (so compat matches it to
    the bit); 0/0 is nan and x/0 inf, as in numpy."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return count / total * 100


# ---------------------------------------------------------------- per-class vectors

def top_p_class_count(counts, p, compat=None):
    """Smallest K whose K largest classes hold at least p% of the total, per row of `counts`.

    counts: [..., K] non-negative integers, K >= 1. p: a number, or a sequence, which adds a
    leading axis of len(p) (as np.percentile does); p > 100 is refused (no K exists; the
    official loop never ends). Default: an all-zero row and p <= 0 give 0 (zero classes hold 0%
    of anything).

    compat="fantasticgains" is the official `get_top_p_percent_classes`: its loop stops one
    past the smallest K, so it returns K + 1; p <= 0 gives 1 (the loop never runs); an all-zero
    row gives 2 for p > 0, because its first share is 0/0 = nan and `nan < p` is False. Shares
    are `sum(top k) / sum(all) * 100` in float64, as there, so 29/100*100 = 28.999999999999996
    counts as below 29%. Padding to 1000 columns, as the official code does, cannot change the
    count (the padding zeros sort last), so none is done.
    """
    check_compat(compat)
    ps = np.asarray(p, dtype=float)
    if np.any(ps > 100):
        raise ValueError(f"p must be at most 100, got {p}")
    counts = np.asarray(counts)
    if counts.ndim == 0 or counts.shape[-1] == 0:
        raise ValueError("counts must have at least one class on its last axis")
    cum = _descending_cumsum(counts.reshape(-1, counts.shape[-1]))
    count = _official_count if compat else _classes_to_cover
    ks = np.array([count(cum, q) for q in ps.ravel()], dtype=np.int64)
    return ks.reshape(ps.shape + counts.shape[:-1])


def _classes_to_cover(cum, p):
    """The smallest K >= 0 whose K largest entries hold at least p% of the row's total."""
    needed = np.ceil(p * cum[:, -1] / 100)   # for integer sums, top < p*total/100 <=> top < needed
    return (needed > 0) + _prefix_length(cum, lambda top: top < needed)


def _official_count(cum, p):
    """get_top_p_percent_classes: the loop's final k, 1 + one per class added while share < p."""
    if p <= 0:
        return np.ones(len(cum), np.int64)
    total = cum[:, -1]
    with np.errstate(invalid="ignore", divide="ignore"):   # all-zero row: share 0/0 = nan, as there
        return 2 + _prefix_length(cum, lambda top: top / total * 100 < p)


def _descending_cumsum(counts):
    """[rows, j]: the sum of each row's j+1 largest entries."""
    small = _small_counts(counts)
    # a stable sort of a <= 16-bit integer type is a radix sort, far faster than the others
    ascending = np.sort(counts if small is None else small, axis=-1, kind="stable")
    int32_holds_sums = small is not None and counts.shape[-1] <= 2**15
    return np.cumsum(ascending[:, ::-1], axis=-1, dtype=np.int32 if int32_holds_sums else None)


def _small_counts(counts):
    """counts in the narrowest unsigned type if they are integers in 0..65535, else None."""
    if counts.dtype.kind not in "ui" or counts.size == 0:
        return None
    low, high = counts.min(), counts.max()
    if low < 0 or high >= 2**16:
        return None
    return counts.astype(np.min_scalar_type(high), copy=False)


def _prefix_length(rows_sorted, below):
    """Per row, how many leading entries pass `below` (given one entry per row, it must hold on
    a prefix of every row): a branchless binary search, log2(K) gathers of one entry per row."""
    rows = np.arange(len(rows_sorted))
    base, n = np.zeros(len(rows), np.intp), rows_sorted.shape[1]
    while n > 1:
        half = n // 2
        base = np.where(below(rows_sorted[rows, base + half]), base + half, base)
        n -= half
    return base + below(rows_sorted[rows, base])


def class_entropy(counts):
    """Entropy (natural log) of each row of `counts` [..., K] normalised to a distribution.

    scipy.stats.entropy's semantics: zeros are ignored, an all-zero row gives nan. Computed as
    log T - sum(c log c) / T, which equals scipy's value up to floating-point rounding (~1e-15).
    """
    counts = np.asarray(counts)
    total = counts.sum(axis=-1, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = np.log(total) - _sum_xlogx(counts) / total
    return np.maximum(entropy, 0.0)   # rounding can leave -1e-16 for a single-class row


def _sum_xlogx(counts):
    """sum over the last axis of c log c (0 log 0 = 0)."""
    small = _small_counts(counts)
    if small is None:
        return xlogy(counts, counts).sum(axis=-1)
    values = np.arange(int(small.max()) + 1)
    return xlogy(values, values)[small].sum(axis=-1)   # a table look-up, no log per cell


# ---------------------------------------------------------------- flips of many pairs

def class_flip_counts(correct, labels, num_classes, teachers, students):
    """Per-class positive and negative flips of each pair teacher[p] -> student[p].

    correct: bool [M, N], model m right on sample i. Returns (pos, neg) [P, num_classes] in the
    narrowest unsigned type that holds a class's samples (uint8 for ImageNet's 50 a class):
    pos[p, k] = samples of class k that the student gets wrong and the teacher right, neg[p, k]
    the reverse. Both come from one count per class, the samples both models get right, which
    is symmetric, so it is computed once per unordered pair, as one matmul per class over
    blocks of models: pos = teacher right - both, neg = student right - both.
    """
    correct, labels = np.asarray(correct, bool), np.asarray(labels)
    teachers, students = _pair_indices(teachers, students, len(correct))
    order, bounds = _class_slices(labels, num_classes)
    by_class = correct[:, order]
    class_size_type = np.min_scalar_type(max(int(np.diff(bounds).max()), 1))
    samples = by_class.astype(np.float32)   # for BLAS; exact for counts below 2**24
    first, second, unordered = _unordered_pairs(teachers, students, len(correct))
    both = _per_pair(lambda a, b: _both_right_per_class(samples[a], samples[b], bounds,
                                                        class_size_type),
                     first, second, _GRID_CELLS // num_classes, num_classes, class_size_type)
    both = both[unordered]
    right = _right_per_class(by_class, bounds).astype(class_size_type)
    pos, neg = right[teachers], right[students]
    pos -= both
    neg -= both
    return pos, neg


def _pair_indices(teachers, students, num_models):
    teachers, students = np.asarray(teachers, np.intp), np.asarray(students, np.intp)
    if teachers.shape != students.shape or teachers.ndim != 1:
        raise ValueError("teachers and students must be 1-D index arrays of the same length")
    if teachers.size and (min(teachers.min(), students.min()) < 0
                          or max(teachers.max(), students.max()) >= num_models):
        raise ValueError(f"pair indices must lie in 0..{num_models - 1}")
    return teachers, students


def _unordered_pairs(teachers, students, num_models):
    """The distinct unordered pairs as (first <= second), and each ordered pair's index in them."""
    low, high = np.minimum(teachers, students), np.maximum(teachers, students)
    distinct, unordered = np.unique(low * num_models + high, return_inverse=True)
    return *np.divmod(distinct, num_models), unordered


def _class_slices(labels, num_classes):
    """A sample order grouping samples by class, and class k's slice bounds[k]:bounds[k+1] in it."""
    if labels.ndim != 1 or labels.size == 0:
        raise ValueError("labels must be a non-empty 1-D array")
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(f"labels must lie in 0..{num_classes - 1}")
    order = np.argsort(labels, kind="stable")
    return order, np.searchsorted(labels[order], np.arange(num_classes + 1))


def _right_per_class(by_class, bounds):
    """[M, K]: samples of each class each model gets right."""
    running = np.zeros((len(by_class), by_class.shape[1] + 1), np.int64)
    np.cumsum(by_class, axis=1, out=running[:, 1:])
    return running[:, bounds[1:]] - running[:, bounds[:-1]]


def _both_right_per_class(rows_a, rows_b, bounds, count_type):
    """[K, A, B]: samples of each class that both a and b get right, for every a and b."""
    both = np.empty((len(bounds) - 1, len(rows_a), len(rows_b)), count_type)
    # BLAS threads only slow down matmuls this small (50x, measured on a 2-core VM)
    with threadpool_limits(limits=1, user_api="blas"):
        for k, (start, stop) in enumerate(zip(bounds[:-1], bounds[1:])):
            both[k] = rows_a[:, start:stop] @ rows_b[:, start:stop].T
    return both


def _per_pair(grid, first, second, max_cells, width, dtype):
    """[P, width]: grid(models_a, models_b) -> [width, A, B] (or [A, B] for width 1) evaluated
    on blocks of consecutive `first` models against the `second` models paired with them, read
    at each pair."""
    values = np.empty((len(first), width), dtype)
    for pairs, block_a, block_b, cell in _blocks(first, second, max_cells):
        values[pairs] = np.take(grid(block_a, block_b).reshape(width, -1), cell, axis=1).T
    return values


def _blocks(first, second, max_cells):
    """The pairs in blocks of consecutive `first` models whose grid against all `second` models
    has at most max_cells cells (one model at least). Yields (pair indices, the block's first
    models, its second models, each pair's flat index in the first x second grid)."""
    distinct_first = np.unique(first)
    per_block = max(1, max_cells // max(len(np.unique(second)), 1))
    order = np.argsort(first, kind="stable")
    sorted_first = first[order]
    for start in range(0, len(distinct_first), per_block):
        block_a = distinct_first[start:start + per_block]
        pairs = order[np.searchsorted(sorted_first, block_a[0]):
                      np.searchsorted(sorted_first, block_a[-1], side="right")]
        block_b, b_at = np.unique(second[pairs], return_inverse=True)
        yield pairs, block_a, block_b, np.searchsorted(block_a, first[pairs]) * len(block_b) + b_at


# ---------------------------------------------------------------- confidence ensemble

def ensemble_correct_counts(correct, confidence, teachers, students):
    """Samples the confidence ensemble of each pair gets right: per sample, the prediction of
    whichever of teacher and student has the higher confidence (p_max); ties go to the teacher,
    as in the authors' ensemble (the student only where it is strictly more confident).

    Exact, with one comparison per unordered pair and sample. Each model's key on a sample is
    2 x (rank of its confidence there) + (right): max(key_a, key_b) is the more confident
    model's key, so its lowest bit says whether the ensemble is right, for (a, b) and (b, a)
    alike. On a tie the max holds "either is right" where the ensemble holds "the teacher is
    right", so ties with the student right and the teacher wrong are subtracted.
    """
    correct, confidence = np.asarray(correct, bool), np.asarray(confidence)
    teachers, students = _pair_indices(teachers, students, len(correct))
    if confidence.shape != correct.shape:
        raise ValueError("confidence must have the shape of correct, [models, samples]")
    ranking = _ConfidenceRanking(confidence)
    keys = ranking.keys(correct)
    first, second, unordered = _unordered_pairs(teachers, students, len(correct))
    winner_right = _per_pair(
        lambda a, b: _count_odd_maxima(np.take(keys, a, axis=1), np.take(keys, b, axis=1)),
        first, second, _ENSEMBLE_GRID_CELLS, 1, np.int64)[:, 0]
    return winner_right[unordered] - ranking.tied_right_wrong(correct)[students, teachers]


class _ConfidenceRanking:
    """Each sample's models sorted by confidence, with ties (equal confidences) as groups."""

    def __init__(self, confidence):
        by_sample = np.ascontiguousarray(confidence.T)            # [N, M]
        self.order = np.argsort(by_sample, axis=1)               # sorted position -> model
        ascending = np.take_along_axis(by_sample, self.order, axis=1)
        self.starts_group = np.ones(ascending.shape, bool)
        self.starts_group[:, 1:] = ascending[:, 1:] != ascending[:, :-1]
        position = np.arange(by_sample.shape[1], dtype=np.int32)
        # a group's rank is its first position: rank_a > rank_b <=> confidence_a > confidence_b
        self.rank_in_order = np.maximum.accumulate(
            np.where(self.starts_group, position, 0), axis=1)

    def keys(self, correct):
        """[N, M]: 2 x rank + right, per sample and model."""
        num_models = self.order.shape[1]
        keys = np.empty(self.order.shape, np.int16 if 2 * num_models < 2**15 else np.int32)
        np.put_along_axis(keys, self.order, 2 * self.rank_in_order, axis=1)
        return keys + correct.T

    def tied_right_wrong(self, correct):
        """Sparse [M, M]: samples where a and b are equally confident, a right and b wrong."""
        num_samples, num_models = self.order.shape
        ends_group = np.ones_like(self.starts_group)
        ends_group[:, :-1] = self.starts_group[:, 1:]
        sample, position = np.nonzero(~(self.starts_group & ends_group))   # groups of 2 or more
        model = self.order[sample, position]
        group = sample * num_models + self.rank_in_order[sample, position]
        right = correct[model, sample]
        members = [sparse.csr_array((np.ones(mask.sum()), (model[mask], group[mask])),
                                    shape=(num_models, num_samples * num_models))
                   for mask in (right, ~right)]
        return (members[0] @ members[1].T).astype(np.int64)


def _count_odd_maxima(keys_a, keys_b):
    """[A, B]: samples where max(keys_a[:, a], keys_b[:, b]) is odd."""
    num_samples, cells = len(keys_a), keys_a.shape[1] * keys_b.shape[1]
    step = max(1, min(_BUFFER_CELLS // max(cells, 1), np.iinfo(np.int16).max))
    buffer = np.empty((step, keys_a.shape[1], keys_b.shape[1]), keys_a.dtype)
    odd = np.zeros(buffer.shape[1:], np.int64)
    for start in range(0, num_samples, step):
        maxima = buffer[:min(step, num_samples - start)]
        np.maximum(keys_a[start:start + step, :, None], keys_b[start:start + step, None, :],
                   out=maxima)
        np.bitwise_and(maxima, 1, out=maxima)
        odd += maxima.sum(axis=0, dtype=np.int16)   # step < 2**15 samples: no overflow
    return odd


# ---------------------------------------------------------------- tables

def pair_statistics(preds, p_max, labels, num_classes, teachers, students, models, dataset,
                    compat=None, model_keys=None):
    """The `pair_stats` and `class_flips` tables (results/schema.py) of the pairs
    (models[teachers[p]], models[students[p]]); `model_keys`: the predict key of each model's
    predictions (`pair_stats.teacher_key`, `student_key`; None: NULL).

    preds, p_max: [M, N] top-1 class and its probability of each model on each sample;
    labels: [N]. Accuracies and flip rates are % of N. pos_classes_top{p} is
    `top_p_class_count` of the pair's positive flips per class (compat changes only that);
    ensemble_acc is `ensemble_correct_counts` in %. class_flips (a `ClassFlips`) has one row
    per pair and class 0..num_classes-1, whatever compat is.
    """
    check_compat(compat)
    preds, p_max, labels = np.asarray(preds), np.asarray(p_max), np.asarray(labels)
    if preds.ndim != 2 or p_max.shape != preds.shape or preds.shape[1:] != labels.shape:
        raise ValueError("preds and p_max must be [models, samples] with one label per sample")
    if len(models) != len(preds):
        raise ValueError(f"{len(models)} model names for {len(preds)} models' predictions")
    if model_keys is not None and len(model_keys) != len(preds):
        raise ValueError(f"{len(model_keys)} predict keys for {len(preds)} models' predictions")
    correct = preds == labels
    teachers, students = _pair_indices(teachers, students, len(preds))
    pos, neg = class_flip_counts(correct, labels, num_classes, teachers, students)
    num_samples = labels.size
    accuracy = percent(correct.sum(axis=1), num_samples)
    ensemble = ensemble_correct_counts(correct, p_max, teachers, students)
    stats = {
        "acc_t": accuracy[teachers], "acc_s": accuracy[students],
        "ts_diff": accuracy[teachers] - accuracy[students],
        "pos_flips": percent(pos.sum(axis=1, dtype=np.int64), num_samples),
        "neg_flips": percent(neg.sum(axis=1, dtype=np.int64), num_samples),
        **_class_summaries(pos, neg, teachers, students, compat),
        "ensemble_acc": percent(ensemble, num_samples),
    }
    names = {"teacher": _labels(models, teachers), "student": _labels(models, students),
             "dataset": _labels([dataset], np.zeros(len(teachers), np.intp))}
    pair_stats = _table("pair_stats", {
        **names, "compat": _labels([compat or ""], np.zeros(len(teachers), np.intp)), **stats,
        "teacher_key": _keys_of(model_keys, teachers),
        "student_key": _keys_of(model_keys, students)})
    return pair_stats, ClassFlips(names, pos, neg)


def _keys_of(model_keys, indices):
    """The predict keys of the models at `indices` (all NULL without `model_keys`)."""
    if model_keys is None:
        return np.full(len(indices), None, dtype=object)
    codes, keys = pd.factorize(np.asarray(model_keys, dtype=object))
    return _labels(keys, codes[indices])


@dataclasses.dataclass
class ClassFlips:
    """The class_flips table, kept as per-pair count arrays and turned into rows a chunk of
    pairs at a time: as one DataFrame, M = 800 models' 639,200 pairs x 1000 classes would take
    ~11 GB where the counts take 1.3."""
    names: dict[str, pd.Categorical]     # teacher, student, dataset: one entry per pair
    pos: np.ndarray                      # [P, K]
    neg: np.ndarray

    def __len__(self) -> int:
        return self.pos.size

    def frames(self, rows: int | None = None) -> Iterator[pd.DataFrame]:
        """The table in DataFrames of whole pairs, about `rows` rows each."""
        num_pairs, num_classes = self.pos.shape
        step = max(1, (rows or _FLIP_ROWS) // max(num_classes, 1))
        for start in range(0, num_pairs, step):
            pairs = slice(start, start + step)
            n = len(self.pos[pairs])
            yield _table("class_flips", {
                **{name: column[pairs].repeat(num_classes) for name, column in self.names.items()},
                "class": np.tile(np.arange(num_classes, dtype=np.int32), n),
                "pos": self.pos[pairs].ravel(), "neg": self.neg[pairs].ravel()})

    def to_frame(self) -> pd.DataFrame:
        """The whole table as one DataFrame (small plans)."""
        frames = list(self.frames())
        return pd.concat(frames, ignore_index=True) if len(frames) > 1 else (
            frames[0] if frames else _table("class_flips", {
                **self.names, "class": np.zeros(0, np.int32), "pos": self.pos.ravel(),
                "neg": self.neg.ravel()}))


def _class_summaries(pos, neg, teachers, students, compat):
    """Per pair: entropies of the flips per class, top-p% class counts of the positive ones."""
    summary = {"pos_entropy": np.empty(len(pos)), "neg_entropy": np.empty(len(pos)),
               **{f"pos_classes_top{p}": np.empty(len(pos), np.int64) for p in TOP_P_CLASSES}}
    for rows in _chunks(np.arange(len(pos))):   # chunks bound the temporaries
        summary["pos_entropy"][rows] = class_entropy(pos[rows])
        for p, count in zip(TOP_P_CLASSES, top_p_class_count(pos[rows], TOP_P_CLASSES, compat)):
            summary[f"pos_classes_top{p}"][rows] = count
    # the negative flips of (t, s) are the positive flips of (s, t): reuse where it is planned
    reverse = _index_of_reverse(teachers, students)
    planned = reverse >= 0
    summary["neg_entropy"][planned] = summary["pos_entropy"][reverse[planned]]
    for rows in _chunks(np.flatnonzero(~planned)):
        summary["neg_entropy"][rows] = class_entropy(neg[rows])
    return summary


def _chunks(rows):
    return (rows[start:start + _ROW_CHUNK] for start in range(0, len(rows), _ROW_CHUNK))


def _index_of_reverse(teachers, students):
    """Per pair (t, s), the index of a pair (s, t), or -1 where none is planned."""
    if not len(teachers):
        return np.empty(0, np.intp)
    num_models = max(teachers.max(), students.max()) + 1
    codes, reverse_codes = teachers * num_models + students, students * num_models + teachers
    order = np.argsort(codes)
    candidate = order[np.minimum(np.searchsorted(codes, reverse_codes, sorter=order),
                                 len(codes) - 1)]
    return np.where(codes[candidate] == reverse_codes, candidate, -1)


def _labels(categories, codes):
    """A categorical column: one copy of each string, whatever the number of rows."""
    return pd.Categorical.from_codes(codes, categories=list(categories))


def _table(name, columns):
    """A DataFrame with the table's columns, in its order, numbers in its types."""
    schema = TABLES[name]
    frame = {}
    for field in schema:
        column = columns[field.name]
        frame[field.name] = column if isinstance(column, pd.Categorical) else \
            np.asarray(column).astype(field.type.to_pandas_dtype(), copy=False)
    return pd.DataFrame(frame, copy=False)
