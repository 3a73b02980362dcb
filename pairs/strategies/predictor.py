"""Pair strategies that spend a sweep's budget where a predictor expects gains.

Both rank candidate pairs by one predictor column of the `predictors_pairs` table (analysis/sql/
predictors_pairs.sql: pair_stats, pair_predictors and model_predictors side by side), handed in
as `PairRequest.pair_measures` (`ktbench plan` loads it from --results), the column named by
`PairRequest.metric` (`--stats-metric`): highest first, or lowest first when the name starts with
'-' or ends with ':asc' (`--stats-metric=-cka`, `--stats-metric cka:asc`). Pairs whose predictor
is unknown rank last; ties keep the table's order (teacher, student).

- `top-predictor`: the `n` best pairs (`--pairs N`) among the catalog's models.
- `top-teachers`: for each student (those matching `--students`, else every model), its `n`
  best teachers (`--pairs N` per student).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from pairs.catalog_table import matches
from pairs.plan import PlanError
from pairs.strategies.base import PairRequest, register_strategy
from results.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

PREDICTOR_STRATEGIES = ("top-predictor", "top-teachers")


def parse_metric(metric: str) -> tuple[str, bool]:
    """'name', '-name' or 'name:asc' / 'name:desc' -> (column, ascending)."""
    if metric.startswith("-"):
        return metric[1:], True
    name, _, order = metric.partition(":")
    if order not in ("", "asc", "desc"):
        raise InputError(f"metric order must be asc or desc, got {metric!r}")
    return name, order == "asc"


def rank_pairs(candidates: pd.DataFrame, metric: str) -> pd.DataFrame:
    """`candidates` (teacher, student, predictor columns) best first by `metric`, one row per
    (teacher, student)."""
    column, ascending = parse_metric(metric)
    if column not in candidates.columns:
        numeric = [c for c in candidates.columns
                   if c not in ("teacher", "student", "dataset", "split", "compat")]
        raise InputError(f"no predictor {column!r}; predictors: {', '.join(numeric)}")
    ranked = candidates.sort_values(column, ascending=ascending, kind="stable",
                                    na_position="last")
    return ranked.drop_duplicates(["teacher", "student"])


def _candidates(models: pd.DataFrame, request: PairRequest, strategy: str) -> pd.DataFrame:
    table = request.pair_measures
    if table is None or table.empty:
        raise PlanError(f"strategy {strategy!r} needs predictors: run `ktbench predictors` "
                        "and pass its --results folder")
    names = set(models["name"])
    return table[table["teacher"].isin(names) & table["student"].isin(names)
                 & (table["teacher"] != table["student"])]


@register_strategy("top-predictor")
def top_predictor(models, request) -> np.ndarray:
    """The `n` pairs (all when `n` is None) ranked best by the predictor `metric`."""
    ranked = rank_pairs(_candidates(models, request, "top-predictor"), request.metric)
    if request.n is not None:
        ranked = ranked.head(request.n)
    return ranked[["teacher", "student"]].to_numpy(dtype=object)


@register_strategy("top-teachers")
def top_teachers(models, request) -> np.ndarray:
    """Each student's `n` best teachers by the predictor `metric` (students: those matching
    `students`, else every model)."""
    if request.n is None:
        raise InputError("strategy 'top-teachers' needs --pairs N (teachers per student)")
    candidates = _candidates(models, request, "top-teachers")
    if request.students:
        chosen = set(models.loc[matches(models, request.students).to_numpy(), "name"])
        if not chosen:
            raise PlanError(f"no model matches the student list {', '.join(request.students)}")
        candidates = candidates[candidates["student"].isin(chosen)]
    ranked = rank_pairs(candidates, request.metric)
    best = ranked.groupby("student", sort=False).head(request.n)
    return best.sort_values("student", kind="stable")[["teacher", "student"]].to_numpy(
        dtype=object)
