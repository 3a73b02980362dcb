"""Choosing a set of teachers for a student from cached predictions: greedy by a submodular
score, beside random and accuracy-sorted sets of the same size.

For student s, E = the samples s gets wrong and P_t = the samples of E that teacher t gets right
(t's complementary knowledge for s, rho_pos per sample, over every class). For a set T, with
c_i = the number of teachers in T right on sample i of E:
- coverage(T)   = #{i in E: c_i >= 1} / |E|          the share of the student's errors some
                                                      teacher knows (monotone submodular: a
                                                      set cover); also the oracle ensemble's gain
- redundancy(T) = sum_{i in E} (c_i - 1)^+ / |E|      errors known by more than one teacher, each
                  = (sum_t |P_t| - |union P_t|) / |E|  extra teacher counted (supermodular)
- score(T)      = coverage(T) - lam * redundancy(T)  = (1 + lam) coverage - lam sum_t |P_t| / |E|,
                                                      submodular (submodular + modular).
Greedy adds, k times, the teacher with the largest marginal gain: new errors it covers minus lam
times the errors it covers again; ties go to the teacher with more complementary knowledge, then
to the earlier model. All quantities are in % of |E|.
"""
import numpy as np
import pandas as pd

from benchmark.predictors.compute import table_frame
from results.errors import InputError

LAMBDA = 0.5
DRAWS = 100


def set_scores(correct, student: int, sets, lam: float = LAMBDA):
    """(coverage, redundancy, score) in % of the student's errors, for each teacher set in
    `sets` [S, k] (model indices); nan when the student makes no error."""
    correct = np.asarray(correct, bool)
    sets = np.atleast_2d(np.asarray(sets, np.intp))
    errors = ~correct[student]
    n_err = errors.sum()
    if n_err == 0:
        nan = np.full(len(sets), np.nan)
        return nan, nan, nan
    hits = correct[:, errors][sets].sum(axis=1, dtype=np.int64)     # [S, |E|]: c_i
    covered = (hits > 0).sum(1)
    coverage = 100.0 * covered / n_err
    redundancy = 100.0 * (hits.sum(1) - covered) / n_err
    return coverage, redundancy, coverage - lam * redundancy


def greedy_teachers(correct, student: int, k: int, lam: float = LAMBDA, candidates=None):
    """k teacher indices chosen greedily by the marginal gain of `score` (module docstring)."""
    correct = np.asarray(correct, bool)
    candidates = _candidates(len(correct), student, candidates)
    if not 0 < k <= len(candidates):
        raise InputError(f"k must be between 1 and {len(candidates)}, got {k}")
    errors = ~correct[student]
    know = correct[candidates][:, errors]                   # [K, |E|]: P_t
    size = know.sum(1)
    covered = np.zeros(errors.sum(), bool)
    chosen, free = [], np.ones(len(candidates), bool)
    position = np.arange(len(candidates))
    for _ in range(k):
        new = (know & ~covered).sum(1)
        gain = new - lam * (size - new)
        # the best free candidate: largest gain, then most knowledge, then earliest
        order = np.lexsort((-position, size, gain))
        best = order[free[order]][-1]
        chosen.append(best)
        free[best] = False
        covered |= know[best]
    return candidates[np.asarray(chosen)]


def _candidates(num_models, student, candidates):
    if candidates is None:
        candidates = np.arange(num_models)
    candidates = np.asarray(candidates, np.intp)
    return candidates[candidates != student]


def teacher_set_table(correct, models: list[str], dataset: str, split: str, ks=(2, 3),
                      lam: float = LAMBDA, draws: int = DRAWS, seed: int = 0,
                      students=None) -> pd.DataFrame:
    """The `teacher_sets` table: for each student (default every model) and set size k, sets of
    the other models: `greedy` (by the score with `lam`), `greedy_cover` (greedy with lam = 0:
    coverage alone, for reference), `accuracy` (the k most accurate) and `random` (its coverage,
    redundancy and score are means over `draws` seeded random sets; `teachers` is the first
    draw, the one a plan would take). Every set's score uses `lam`."""
    correct = np.asarray(correct, bool)
    accuracy = correct.mean(1)
    names = np.asarray(models, dtype=object)
    rng = np.random.default_rng(seed)
    students = range(len(models)) if students is None else students
    rows = []
    for s in students:
        others = _candidates(len(models), s, None)
        by_accuracy = others[np.lexsort((others, -accuracy[others]))]
        for k in ks:
            if k > len(others):
                continue
            random_sets = np.stack([rng.choice(others, size=k, replace=False)
                                    for _ in range(draws)])
            candidates = {"greedy": greedy_teachers(correct, s, k, lam)[None, :],
                          "greedy_cover": greedy_teachers(correct, s, k, 0.0)[None, :],
                          "accuracy": by_accuracy[:k][None, :], "random": random_sets}
            for strategy, sets in candidates.items():
                coverage, redundancy, score = set_scores(correct, s, sets, lam)
                errors = (~correct[s]).sum()
                oracle = 100.0 * (correct[s].sum() + coverage / 100.0 * errors) / correct.shape[1]
                rows.append({"dataset": dataset, "split": split, "student": names[s], "k": k,
                             "strategy": strategy, "teachers": ",".join(names[sets[0]]),
                             "coverage": coverage.mean(), "redundancy": redundancy.mean(),
                             "score": score.mean(), "oracle_acc": oracle.mean(), "lam": lam,
                             "draws": len(sets)})
    return table_frame("teacher_sets", rows)
