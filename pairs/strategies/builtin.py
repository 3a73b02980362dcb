"""The built-in pair strategies: all, random, cross, stratified, paper, top-stats."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Callable

import numpy as np

from pairs.catalog_table import matches
from pairs.plan import PlanError, random_pairs
from pairs.strategies.base import PairRequest, register_strategy
from results.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

# docs/protocol.md#models: the students of the main transfer study (figures), by type, as timm 1.x names
# of the weights timm 0.6.12 gave the paper's names (`gluon_senet154` -> `senet154.gluon_in1k`).
PAPER_STUDENTS = (
    # transformer: ids 41, 7, 5, 46, 26, 171
    "xcit_large_24_p16_224.fb_in1k", "vit_base_patch16_224.augreg_in21k_ft_in1k",
    "pit_b_224.in1k", "vit_relpos_medium_patch16_224.sw_in1k", "pit_xs_224.in1k",
    "pit_xs_distilled_224.in1k",
    # cnn: ids 33, 131, 235, 132, 42, 130, 48
    "resnext101_32x16d.fb_wsl_ig1b_ft_in1k", "senet154.gluon_in1k", "wide_resnet50_2.racm_in1k",
    "resnet101c.gluon_in1k", "resnetv2_50.a1h_in1k", "resnetv2_50x1_bit.goog_distilled_in1k",
    "resnet34.gluon_in1k",
    # mlp: ids 214, 2, 9, 77, 258, 160, 72
    "mixer_l16_224.goog_in21k_ft_in1k", "mixer_b16_224.miil_in21k_ft_in1k",
    "mixer_b16_224.goog_in21k_ft_in1k", "resmlp_36_224.fb_in1k", "resmlp_24_224.fb_in1k",
    "resmlp_24_224.fb_distilled_in1k", "resmlp_12_224.fb_in1k",
)
# docs/protocol.md#models: of the 20 teachers only ids 302, 77 and 232 have known names
PAPER_TEACHERS = ("resnext101_32x8d.fb_swsl_ig1b_ft_in1k", "resmlp_36_224.fb_in1k",
                  "mixnet_s.ft_in1k")


def _require_n(request: PairRequest, strategy: str) -> int:
    if request.n is None:
        raise InputError(f"strategy {strategy!r} needs --pairs N")
    return request.n


def _product(teachers: np.ndarray, students: np.ndarray) -> np.ndarray:
    t = np.repeat(teachers, len(students))
    s = np.tile(students, len(teachers))
    keep = t != s
    return np.stack([t[keep], s[keep]], axis=1)


def _names(models: pd.DataFrame) -> np.ndarray:
    return models["name"].to_numpy(dtype=object)


@register_strategy("all")
def all_ordered(models, request) -> np.ndarray:
    """Every ordered pair of distinct models."""
    names = _names(models)
    return _product(names, names)


@register_strategy("random")
def seeded_random(models, request) -> np.ndarray:
    """`n` distinct ordered pairs, uniformly at random, reproducible from `seed`."""
    pairs = random_pairs(list(_names(models)), _require_n(request, "random"), request.seed)
    return np.asarray(pairs, dtype=object).reshape(-1, 2)


def _selected(models: pd.DataFrame, patterns, role: str) -> np.ndarray:
    names = _names(models)[matches(models, patterns).to_numpy()]
    if not len(names):
        raise PlanError(f"no model matches the {role} list {', '.join(patterns)}")
    return names


@register_strategy("cross")
def teachers_x_students(models, request) -> np.ndarray:
    """Every model matching `teachers` x every model matching `students` (self-pairs dropped)."""
    if not request.teachers or not request.students:
        raise InputError("strategy 'cross' needs --teachers and --students")
    return _product(_selected(models, request.teachers, "teacher"),
                    _selected(models, request.students, "student"))


def _binned(values: np.ndarray, edges) -> tuple[np.ndarray, int]:
    """Bin codes 0..len(edges) with one more code for unknown (NaN) values."""
    codes = np.digitize(values, np.asarray(edges, dtype=float))
    codes[np.isnan(values)] = len(edges) + 1
    return codes, len(edges) + 2


def _categories(values: np.ndarray) -> tuple[np.ndarray, int]:
    import pandas as pd
    codes, uniques = pd.factorize(pd.Series(values), use_na_sentinel=False)
    return codes, len(uniques)


# stratum keys: (teacher index, student index, catalog, request) -> (codes per pair, code count)
STRATUM_KEYS: dict[str, Callable] = {
    "gap": lambda t, s, m, r: _binned(m["top1"].to_numpy(float)[t]
                                      - m["top1"].to_numpy(float)[s], r.gap_bins),
    "family": lambda t, s, m, r: _categories(m["family"].to_numpy(object)[s]),
    "teacher_family": lambda t, s, m, r: _categories(m["family"].to_numpy(object)[t]),
    "size": lambda t, s, m, r: _binned(m["params_m"].to_numpy(float)[s], r.size_bins),
}


def _equal_quotas(sizes: np.ndarray, n: int) -> np.ndarray:
    """Near-equal shares of `n` over strata, each capped at its size (smallest strata first,
    what a full one cannot take goes to the rest)."""
    quotas = np.zeros_like(sizes)
    remaining = n
    order = np.argsort(sizes, kind="stable")
    for left, k in zip(range(len(order), 0, -1), order):
        quotas[k] = min(sizes[k], math.ceil(remaining / left))
        remaining -= quotas[k]
    return quotas


@register_strategy("stratified")
def stratified(models, request) -> np.ndarray:
    """`n` pairs spread evenly over strata of all ordered pairs: accuracy gap bins (teacher top-1
    minus student top-1), student family, teacher family and student size bins, as listed in
    `strata`. Unknown accuracies or sizes form their own bin. Seeded."""
    n = _require_n(request, "stratified")
    if unknown := set(request.strata) - set(STRATUM_KEYS):
        raise InputError(f"unknown strata {sorted(unknown)}; use {', '.join(STRATUM_KEYS)}")
    m = len(models)
    flat = np.arange(m * m)
    teacher, student = np.divmod(flat, m)
    keep = teacher != student
    teacher, student = teacher[keep], student[keep]
    if not 0 < n <= len(teacher):
        raise InputError(f"--pairs must be between 1 and {len(teacher)} for {m} models, got {n}")
    stratum = np.zeros(len(teacher), dtype=np.int64)
    for key in request.strata:
        codes, count = STRATUM_KEYS[key](teacher, student, models, request)
        stratum = stratum * count + codes
    _, stratum = np.unique(stratum, return_inverse=True)
    quotas = _equal_quotas(np.bincount(stratum), n)
    shuffled = np.random.default_rng(request.seed).permutation(len(teacher))
    order = shuffled[np.argsort(stratum[shuffled], kind="stable")]   # by stratum, random within
    sorted_strata = stratum[order]
    starts = np.searchsorted(sorted_strata, sorted_strata)
    chosen = order[np.arange(len(order)) - starts < quotas[sorted_strata]]
    names = _names(models)
    return np.stack([names[teacher[chosen]], names[student[chosen]]], axis=1)


@register_strategy("paper")
def paper_preset(models, request) -> np.ndarray:
    """The paper's main transfer study (docs/protocol.md#models): its 20 named students, each with every
    teacher. Teachers: the `teachers` list when given, else the three the paper names plus a
    seeded random draw from the catalog up to `n_teachers`."""
    names = _names(models)
    if missing := [s for s in PAPER_STUDENTS if s not in set(names)]:
        raise PlanError(f"the paper preset needs the paper's students, {len(missing)} missing "
                        f"from this catalog ({', '.join(missing[:3])}, ...); use --zoo timm "
                        "without filters that drop them")
    if request.teachers:
        teachers = _selected(models, request.teachers, "teacher")
    else:
        known = [t for t in PAPER_TEACHERS if t in set(names)]
        others = np.array([n for n in names if n not in set(known)], dtype=object)
        extra = max(0, min(request.n_teachers - len(known), len(others)))
        drawn = np.random.default_rng(request.seed).choice(others, size=extra, replace=False)
        teachers = np.concatenate([np.array(known, dtype=object), drawn])
    return _product(teachers, np.array(PAPER_STUDENTS, dtype=object))


@register_strategy("top-stats")
def top_pair_stats(models, request) -> np.ndarray:
    """The `n` pairs (all when `n` is None) with the highest `metric` in `pair_stats`, e.g.
    `pos_flips` (rho_pos, the most complementary knowledge), among the catalog's models."""
    stats = request.pair_measures
    if stats is None or stats.empty:
        raise PlanError("strategy 'top-stats' needs pair_stats rows: run a plan's stats stage "
                        "first and pass its --results folder")
    if request.metric not in stats.columns:
        raise InputError(f"pair_stats has no column {request.metric!r}")
    names = set(_names(models))
    stats = stats[stats["teacher"].isin(names) & stats["student"].isin(names)]
    best = (stats.sort_values(request.metric, ascending=False, kind="stable")
            .drop_duplicates(["teacher", "student"]))
    if request.n is not None:
        best = best.head(request.n)
    return best[["teacher", "student"]].to_numpy(dtype=object)
