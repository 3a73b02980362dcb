"""The strategy registry: a strategy is a function (catalog table, `PairRequest`) -> array
[n, 2] of model names, registered by name. `make_plan` then times the pairs with methods and seeds.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import numpy as np

from pairs.plan import PlanError
from results.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

PAPER_N_TEACHERS = 20


@dataclass(frozen=True)
class PairRequest:
    """What a strategy may read; each strategy uses the fields its docstring names."""
    n: int | None = None                    # number of pairs
    seed: int = 0
    teachers: tuple[str, ...] = ()          # wildcards on names or architectures
    students: tuple[str, ...] = ()
    strata: tuple[str, ...] = ("gap", "family", "size")
    gap_bins: tuple[float, ...] = (-10.0, -5.0, -2.0, 0.0, 2.0, 5.0, 10.0)   # top-1 points
    size_bins: tuple[float, ...] = (10.0, 30.0, 100.0)                        # M parameters
    n_teachers: int = PAPER_N_TEACHERS
    # measured pairs, one row per (teacher, student[, compat]): `pair_stats` rows, or those
    # beside the predictors' columns (analysis/sql/predictors_pairs.sql); ranked by `metric`
    pair_measures: pd.DataFrame | None = None
    metric: str = "pos_flips"


Strategy = Callable[["pd.DataFrame", PairRequest], np.ndarray]
STRATEGIES: dict[str, Strategy] = {}


def register_strategy(name: str):
    def wrap(fn: Strategy) -> Strategy:
        STRATEGIES[name] = fn
        return fn
    return wrap


def plan_pairs(strategy: str, models: pd.DataFrame, request: PairRequest) -> np.ndarray:
    """The pairs of `strategy` over the catalog rows `models`, as an [n, 2] array of names."""
    if strategy not in STRATEGIES:
        raise InputError(f"unknown strategy {strategy!r}; strategies: {', '.join(STRATEGIES)}")
    if len(models) < 2:
        raise PlanError(f"{len(models)} model(s) left after filtering; a pair needs two")
    pairs = STRATEGIES[strategy](models.reset_index(drop=True), request)
    if not len(pairs):
        raise PlanError(f"strategy {strategy!r} found no pair")
    return pairs
