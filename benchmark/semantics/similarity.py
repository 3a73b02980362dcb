"""How related are the classes where a teacher's complementary knowledge sits? Vectorised over
pairs (docs/definitions.md#class-name-similarity).

For a pair, order the classes by its positive flips (most first) and take the top-p% set: the
first K_p classes (`pair_stats.pos_classes_top{p}`). With unit class-name embeddings e_k and
G = E E^T (cosine similarities), a set S of |S| >= 2 classes has

    mean_sim(S) = sum_{i<j in S} G_ij / (|S| (|S| - 1) / 2),   max_sim(S) = max_{i<j in S} G_ij.

Every prefix of one ordering is computed at once: with the gathered block B = G[o, o] of an
ordering o, row i's strict lower part holds the pairs (i, j < i), so the prefix sums and maxima
are cumulative sums and maxima of its row sums and row maxima.

Random sets of size K: the prefixes of seeded random permutations (each prefix of a uniform
permutation is a uniform K-subset). The mean over all K-subsets of mean_sim is the mean of G off
its diagonal, for every K >= 2, so that is `random_mean_sim`, exact; `random_max_sim` and the
pair's rank among random sets of its size come from the draws.

Order: by default classes sort by flips, most first, ties by class index. compat fantasticgains
takes the authors' `np.argsort(v)[::-1]` over the flips padded to 1000 classes (so ties fall
in their order) and their K_p (one class late), leaving out padding classes.
"""
import numpy as np
import pandas as pd

from benchmark.measures.stats import OFFICIAL_CLASS_COLUMNS, check_compat
from results.schema import TABLES, TOP_P_CLASSES

_CELLS = 2**23          # gathered similarities held at once
_ROUNDING = 1e-9        # similarities closer than this are equal (float32 embeddings)


def cosine_matrix(embeddings) -> np.ndarray:
    """G = E E^T of unit row vectors E [C, D], as float64."""
    e = np.asarray(embeddings, dtype=np.float64)
    return e @ e.T


def random_mean_similarity(g) -> float:
    """The mean of G off its diagonal: the expected mean_sim of a uniform random set of any
    size K >= 2 (NaN below two classes)."""
    c = len(g)
    return float((g.sum() - np.trace(g)) / (c * (c - 1))) if c >= 2 else np.nan


def prefix_similarity(order, g, length: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(mean_sim, max_sim) [R, L] of every prefix of each ordering in `order` [R, >= L]:
    column k-1 is the set of the first k classes; NaN for k < 2."""
    order = np.asarray(order)
    length = order.shape[1] if length is None else length
    means = np.full((len(order), length), np.nan)
    maxes = np.full((len(order), length), np.nan)
    if length < 2 or not len(order):
        return means, maxes
    below = np.tril(np.ones((length, length), bool), k=-1)
    pairs = np.arange(length) * (np.arange(length) + 1) / 2        # pairs among k + 1 classes
    rows = max(1, _CELLS // (length * length))
    for start in range(0, len(order), rows):
        o = order[start:start + rows, :length]
        block = g[o[:, :, None], o[:, None, :]]                      # [r, L, L]
        row_sum = np.where(below, block, 0.0).sum(axis=2)
        row_max = np.where(below, block, -np.inf).max(axis=2)
        means[start:start + rows, 1:] = np.cumsum(row_sum, axis=1)[:, 1:] / pairs[1:]
        maxes[start:start + rows, 1:] = np.maximum.accumulate(row_max, axis=1)[:, 1:]
    return means, maxes


def class_order(pos, compat=None) -> np.ndarray:
    """[P, C]: each pair's classes by positive flips, most first (see the module docstring)."""
    check_compat(compat)
    pos = np.asarray(pos)
    if not compat:
        return np.argsort(-pos, axis=1, kind="stable")
    classes = pos.shape[1]
    width = max(classes, OFFICIAL_CLASS_COLUMNS)
    padded = np.zeros((len(pos), width), pos.dtype)
    padded[:, :classes] = pos
    official = np.argsort(padded, axis=1)[:, ::-1]
    keep = official < classes                 # each row keeps its `classes` real classes, in order
    return official[keep].reshape(len(pos), classes)


class RandomSets:
    """Seeded random class sets of every size up to `longest`: the prefixes of `draws` random
    permutations, with each prefix's mean_sim and max_sim [draws, longest]."""

    def __init__(self, g, longest: int, draws: int = 1000, seed: int = 0):
        self.draws, self.seed = draws, seed
        self.mean_all = random_mean_similarity(g)
        rng = np.random.default_rng(seed)
        perms = rng.permuted(np.tile(np.arange(len(g)), (draws, 1)), axis=1)
        self.means, self.maxes = prefix_similarity(perms, g, min(longest, len(g)))

    def against(self, sizes, means) -> tuple[np.ndarray, np.ndarray]:
        """For sets of `sizes` with mean similarity `means`: the mean max_sim of random sets of
        each size, and the % of random sets of that size with a lower mean_sim."""
        random_max = np.full(np.shape(sizes), np.nan)
        rank = np.full(np.shape(sizes), np.nan)
        for k in np.unique(sizes[(sizes >= 2) & (sizes <= self.means.shape[1])]):
            at = sizes == k
            random_max[at] = self.maxes[:, k - 1].mean()
            ranked = np.sort(self.means[:, k - 1])
            # strictly below, rounding aside: a set of every class ties every draw
            rank[at] = 100 * np.searchsorted(ranked, means[at] - _ROUNDING) / self.draws
        return random_max, rank


def pair_similarity(pos, sizes, g, pairs: pd.DataFrame, random_sets: RandomSets,
                    compat=None) -> pd.DataFrame:
    """The top-p% class sets of `pairs` and their similarity: `pairs`' own columns, then p,
    classes, flip_share, ..., seed of `pair_similarity`, one row per pair and p.

    pos [P, C]: positive flips per class of each pair; sizes [P, len(TOP_P_CLASSES)]: the
    pairs' K_p in that order; g [C, C]: cosine similarities of the class names.
    """
    pos, sizes = np.asarray(pos), np.asarray(sizes, dtype=np.int64)
    classes = pos.shape[1]
    if len(g) != classes:
        raise ValueError(f"{len(g)} class embeddings for flips over {classes} classes")
    sizes = np.clip(sizes, 0, classes)
    order = class_order(pos, compat)
    means, maxes = _top_sets(order, sizes, g)
    ordered_flips = np.take_along_axis(pos, order, axis=1).cumsum(axis=1, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(sizes > 0, np.take_along_axis(
            ordered_flips, np.maximum(sizes - 1, 0), axis=1), 0.0) / ordered_flips[:, -1:] * 100
    random_max, rank = random_sets.against(sizes, means)
    out = pairs.loc[pairs.index.repeat(sizes.shape[1])].reset_index(drop=True)
    columns = {"p": np.tile(np.asarray(TOP_P_CLASSES), len(sizes)), "classes": sizes.ravel(),
               "flip_share": share.ravel(), "mean_sim": means.ravel(), "max_sim": maxes.ravel(),
               "random_mean_sim": np.full(sizes.size, random_sets.mean_all),
               "random_max_sim": random_max.ravel(), "mean_sim_rank": rank.ravel(),
               "draws": np.full(sizes.size, random_sets.draws),
               "seed": np.full(sizes.size, random_sets.seed)}
    for name, values in columns.items():
        out[name] = values.astype(TABLES["pair_similarity"].field(name).type.to_pandas_dtype())
    return out


def _top_sets(order, sizes, g) -> tuple[np.ndarray, np.ndarray]:
    """(mean_sim, max_sim) [P, len(p)] of each pair's first sizes[:, j] classes, in chunks of
    pairs of similar set size (a chunk gathers up to its longest set)."""
    means = np.full(sizes.shape, np.nan)
    maxes = np.full(sizes.shape, np.nan)
    longest = sizes.max(axis=1) if sizes.size else np.zeros(len(sizes), np.int64)
    by_length = np.argsort(longest, kind="stable")
    step = max(1, _CELLS // max(int(longest.max(initial=0)) ** 2, 1))
    for start in range(0, len(by_length), step):
        rows = by_length[start:start + step]
        length = int(longest[rows].max())
        if length < 2:
            continue
        m, x = prefix_similarity(order[rows], g, length)
        at = np.maximum(sizes[rows] - 1, 0)
        means[rows] = np.where(sizes[rows] >= 2, np.take_along_axis(m, at, axis=1), np.nan)
        maxes[rows] = np.where(sizes[rows] >= 2, np.take_along_axis(x, at, axis=1), np.nan)
    return means, maxes
