"""Complementary-knowledge statistics of model pairs, vectorised over models, pairs and classes.

Definitions: paper.md 1.1-1.2. A pair is (teacher, student). A positive flip is a sample the
student gets wrong and the teacher right (rho_pos), a negative flip one the student gets right
and the teacher wrong (rho_neg); each flip is counted under its true label. The official
`get_flips` tests "a right and b != a" for a negative flip, which is "a right and b wrong".

`compat="fantasticgains"` reproduces the official code's numbers where they differ from the
definitions (paper.md 7). Among these statistics only the top-p% class count differs.
"""
import numpy as np
import pandas as pd
from scipy.special import xlogy

from results.schema import TABLES, TOP_P_CLASSES

COMPAT_MODES = ("fantasticgains",)
OFFICIAL_CLASS_COLUMNS = 1000   # the official per-class vectors have 1000 columns on any dataset
_GRID_CELLS = 2**26             # cells of a (teachers x students x classes) grid held at once
_BUFFER_CELLS = 2**20           # cells of a working buffer meant to stay in cache
_ROW_CHUNK = 4096               # pairs summarised at once, to bound temporaries


def check_compat(compat) -> None:
    if compat is not None and compat not in COMPAT_MODES:
        raise ValueError(f"unknown compat mode {compat!r}: use None or {', '.join(COMPAT_MODES)}")


def percent(count, total):
    """count / total x 100, in the official code's order of operations (compat matches bit for bit)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return count / total * 100


# ---------------------------------------------------------------- per-class vectors

def top_p_class_count(counts, p, compat=None):
    """Smallest K whose K largest classes hold at least p% of the total, per row of `counts`.

    counts: [..., K] non-negative integers. p: a number, or a sequence, which adds a leading
    axis of len(p) (as np.percentile does); p > 100 is refused (no K exists; the official loop
    never ends). Default: an all-zero row and p <= 0 give 0 (zero classes hold 0% of anything).
    compat="fantasticgains" is the official `get_top_p_percent_classes`: the loop stops one past
    the smallest K, so it returns K + 1; p <= 0 gives 1; an all-zero row gives 2 for p > 0,
    because its first share is 0/0 = nan and `nan < p` is False. Its shares are computed as
    `sum(top k) / sum(all) * 100` in float64, as the official code does, so a share such as
    29/100*100 = 28.999999999999996 counts as below 29. Padding to 1000 columns, as the official
    code does, cannot change the count (the padding zeros sort last), so none is done.
    """
    check_compat(compat)
    ps = np.asarray(p, dtype=float)
    if np.any(ps > 100):
        raise ValueError(f"p must be at most 100, got {p}")
    cum = _descending_cumsum(np.asarray(counts))
    total = cum[..., -1] if cum.shape[-1] else np.zeros(cum.shape[:-1], cum.dtype)
    if compat:
        with np.errstate(divide="ignore", invalid="ignore"):
            shares = cum / total[..., None] * 100
        ks = [np.full(total.shape, 1) if q <= 0 else 2 + np.count_nonzero(shares < q, axis=-1)
              for q in ps.ravel()]
    else:
        ks = [_classes_to_cover(cum, total, q) for q in ps.ravel()]
    return np.array(ks, dtype=np.int64).reshape(ps.shape + total.shape)


def _descending_cumsum(counts):
    """Cumulative sums of each row sorted in descending order: [..., j] = sum of the j+1 largest."""
    # a stable sort of a <= 16-bit integer type is a radix sort, much faster than quicksort
    ascending = np.sort(counts, axis=-1, kind="stable")
    return np.cumsum(ascending[..., ::-1], axis=-1)


def _classes_to_cover(cum, total, p):
    """#{K >= 0 : the K largest hold less than p% of total}, i.e. the smallest K holding >= p%."""
    # exact in integers: sum < p*total/100 <=> sum < ceil(p*total/100) for an integer sum
    needed = np.ceil(p * total / 100)
    return (needed > 0) + np.count_nonzero(cum < needed[..., None], axis=-1)


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
    if counts.dtype.kind in "ui" and counts.size and 0 <= counts.min() and counts.max() < 2**16:
        values = np.arange(int(counts.max()) + 1)
        return xlogy(values, values)[counts].sum(axis=-1)   # a table look-up, no log per cell
    return xlogy(counts, counts).sum(axis=-1)


# ---------------------------------------------------------------- flips of many pairs

def class_flip_counts(correct, labels, num_classes, teachers, students):
    """Per-class positive and negative flips of each pair teacher[p] -> student[p].

    correct: bool [M, N], model m right on sample i. Returns (pos, neg), each [P, num_classes] in
    the smallest unsigned type holding a class size: pos[p, k] = samples of class k that the
    student gets wrong and the teacher right, neg[p, k] the reverse. Both come from one count,
    the samples of each class both models get right, computed as one matmul per class over a
    block of teachers and the students paired with them: pos = teacher right - both,
    neg = student right - both.
    """
    correct, labels = np.asarray(correct, bool), np.asarray(labels)
    teachers, students = _pair_indices(teachers, students, len(correct))
    order, bounds = _class_slices(labels, num_classes)
    by_class = correct[:, order]
    count_type = np.min_scalar_type(max(int(np.diff(bounds).max()), 1))   # holds a class size
    right = _right_per_class(by_class, bounds).astype(count_type)
    pos = np.empty((len(teachers), num_classes), count_type)
    neg = np.empty_like(pos)
    samples = by_class.astype(np.float32)   # BLAS matmul; exact for counts below 2**24
    for pairs, block_t, block_s, cell in _teacher_blocks(teachers, students, num_classes):
        both = _both_right_per_class(samples[block_t], samples[block_s], bounds, count_type)
        both = np.ascontiguousarray(both.reshape(num_classes, -1)[:, cell].T)
        pos[pairs] = right[teachers[pairs]] - both
        neg[pairs] = right[students[pairs]] - both
    return pos, neg


def _pair_indices(teachers, students, num_models):
    teachers, students = np.asarray(teachers, np.intp), np.asarray(students, np.intp)
    if teachers.shape != students.shape or teachers.ndim != 1:
        raise ValueError("teachers and students must be 1-D index arrays of the same length")
    if teachers.size and (min(teachers.min(), students.min()) < 0
                          or max(teachers.max(), students.max()) >= num_models):
        raise ValueError(f"pair indices must lie in 0..{num_models - 1}")
    return teachers, students


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
    for k, (start, stop) in enumerate(zip(bounds[:-1], bounds[1:])):
        both[k] = rows_a[:, start:stop] @ rows_b[:, start:stop].T
    return both


def _teacher_blocks(teachers, students, cells_per_entry):
    """The pairs in blocks of consecutive teachers whose (teachers x students x cells_per_entry)
    grid fits in _GRID_CELLS. Yields (pair indices, the block's teachers, its students, each
    pair's flat index in the teachers x students grid).
    """
    distinct_teachers = np.unique(teachers)
    per_block = max(1, _GRID_CELLS // (cells_per_entry * max(len(np.unique(students)), 1)))
    order = np.argsort(teachers, kind="stable")
    sorted_teachers = teachers[order]
    for start in range(0, len(distinct_teachers), per_block):
        block_t = distinct_teachers[start:start + per_block]
        lo = np.searchsorted(sorted_teachers, block_t[0], side="left")
        hi = np.searchsorted(sorted_teachers, block_t[-1], side="right")
        pairs = order[lo:hi]
        block_s, student_at = np.unique(students[pairs], return_inverse=True)
        teacher_at = np.searchsorted(block_t, teachers[pairs])
        yield pairs, block_t, block_s, teacher_at * len(block_s) + student_at


# ---------------------------------------------------------------- confidence ensemble

def ensemble_correct_counts(correct, confidence, teachers, students):
    """Samples the confidence ensemble of each pair gets right: per sample, the prediction of
    whichever of teacher and student has the higher confidence (p_max); ties go to the student.

    Exact. Each model's confidence becomes its rank on the sample, and the rank and correctness
    one small integer key, so a pair's ensemble on a sample is max(teacher key, student key) and
    its correctness that key's lowest bit: a comparison per (pair, sample), grid by grid.
    """
    correct, confidence = np.asarray(correct, bool), np.asarray(confidence)
    teachers, students = _pair_indices(teachers, students, len(correct))
    teacher_keys, student_keys = _ensemble_keys(correct, confidence)
    counts = np.empty(len(teachers), np.int64)
    for pairs, block_t, block_s, cell in _teacher_blocks(teachers, students, 16):
        grid = _count_odd_maxima(teacher_keys[:, block_t], student_keys[:, block_s])
        counts[pairs] = grid.ravel()[cell]
    return counts


def _ensemble_keys(correct, confidence):
    """Sample-major [N, M] keys 4 rank + c (as teacher) and 4 rank + 2 + c (as student).

    max(teacher key, student key) is the teacher's key exactly when its rank is higher
    (4 x rank difference >= 4 > 2 + c_s - c_t), so ties go to the student; bit 0 is c.
    """
    ranks = _confidence_ranks(confidence)
    key_type = np.int16 if 4 * ranks.shape[1] <= np.iinfo(np.int16).max else np.int32
    teacher_keys = (4 * ranks).astype(key_type) + correct.T
    return teacher_keys, teacher_keys + key_type(2)


def _confidence_ranks(confidence):
    """[N, M]: each model's rank among all models on each sample; equal confidences share the
    lowest rank, so rank_a > rank_b exactly when confidence_a > confidence_b."""
    by_sample = np.ascontiguousarray(np.asarray(confidence).T)
    order = np.argsort(by_sample, axis=1)
    ascending = np.take_along_axis(by_sample, order, axis=1)
    starts_tie = np.ones(ascending.shape, bool)
    starts_tie[:, 1:] = ascending[:, 1:] != ascending[:, :-1]
    position = np.arange(by_sample.shape[1])
    rank_in_order = np.maximum.accumulate(np.where(starts_tie, position, 0), axis=1)
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, rank_in_order, axis=1)
    return ranks


def _count_odd_maxima(teacher_keys, student_keys):
    """[A, B]: samples where max(teacher_keys[:, a], student_keys[:, b]) is odd."""
    num_samples, cells = len(teacher_keys), teacher_keys.shape[1] * student_keys.shape[1]
    step = max(1, min(_BUFFER_CELLS // max(cells, 1), np.iinfo(np.int16).max))
    buffer = np.empty((step, teacher_keys.shape[1], student_keys.shape[1]), teacher_keys.dtype)
    odd = np.zeros(buffer.shape[1:], np.int64)
    for start in range(0, num_samples, step):
        winners = buffer[:min(step, num_samples - start)]
        np.maximum(teacher_keys[start:start + step, :, None],
                   student_keys[start:start + step, None, :], out=winners)
        np.bitwise_and(winners, 1, out=winners)
        odd += winners.sum(axis=0, dtype=np.int16)   # step < 2**15 samples: no overflow
    return odd


# ---------------------------------------------------------------- tables

def pair_statistics(preds, p_max, labels, num_classes, teachers, students, models, dataset,
                    compat=None):
    """The `pair_stats` and `class_flips` tables (results/schema.py) of the pairs
    (models[teachers[p]], models[students[p]]).

    preds, p_max: [M, N] top-1 class and its probability of each model on each sample;
    labels: [N]. Accuracies and flip rates are % of N. pos_classes_top{p} is
    `top_p_class_count` of the pair's positive flips per class (compat changes only that);
    ensemble_acc is `ensemble_correct_counts` in %. class_flips has one row per pair and class
    0..num_classes-1, whatever compat is.
    """
    check_compat(compat)
    preds, p_max, labels = np.asarray(preds), np.asarray(p_max), np.asarray(labels)
    if preds.ndim != 2 or p_max.shape != preds.shape or preds.shape[1:] != labels.shape:
        raise ValueError("preds and p_max must be [models, samples] with one label per sample")
    if len(models) != len(preds):
        raise ValueError(f"{len(models)} model names for {len(preds)} models' predictions")
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
        **_class_summaries(pos, neg, compat),
        "ensemble_acc": percent(ensemble, num_samples),
    }
    names = {"teacher": _labels(models, teachers), "student": _labels(models, students),
             "dataset": _labels([dataset], np.zeros(len(teachers), np.intp))}
    pair_stats = _table("pair_stats", {
        **names, "compat": _labels([compat or ""], np.zeros(len(teachers), np.intp)), **stats})
    class_flips = _table("class_flips", {
        **{name: column.repeat(num_classes) for name, column in names.items()},
        "class": np.tile(np.arange(num_classes, dtype=np.int32), len(teachers)),
        "pos": pos.ravel(), "neg": neg.ravel()})
    return pair_stats, class_flips


def _class_summaries(pos, neg, compat):
    """Per-pair entropies of the flips per class and top-p% class counts, chunk by chunk."""
    columns = [f"pos_classes_top{p}" for p in TOP_P_CLASSES]
    chunks = []
    for start in range(0, len(pos), _ROW_CHUNK):
        rows = slice(start, start + _ROW_CHUNK)
        tops = top_p_class_count(pos[rows], TOP_P_CLASSES, compat)
        chunks.append({"pos_entropy": class_entropy(pos[rows]),
                       "neg_entropy": class_entropy(neg[rows]), **dict(zip(columns, tops))})
    names = ["pos_entropy", "neg_entropy", *columns]
    return {name: np.concatenate([chunk[name] for chunk in chunks]) if chunks else np.empty(0)
            for name in names}


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
