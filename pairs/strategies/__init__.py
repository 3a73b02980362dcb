"""Pair strategies: which (teacher, student) pairs a plan holds, chosen from a catalog table.

`base` holds the registry and `PairRequest`; `builtin` the catalog strategies (all, random,
cross, stratified, paper, top-stats); `predictor` those that rank pairs by a predictor
(top-predictor, top-teachers). Importing this package registers them all.
"""
from pairs.strategies import builtin, predictor  # noqa: F401  (registers the strategies)
from pairs.strategies.base import (PAPER_N_TEACHERS, STRATEGIES, PairRequest, plan_pairs,
                                   register_strategy)
from pairs.strategies.builtin import PAPER_STUDENTS, PAPER_TEACHERS, STRATUM_KEYS
from pairs.strategies.predictor import PREDICTOR_STRATEGIES

__all__ = ["PAPER_N_TEACHERS", "PAPER_STUDENTS", "PAPER_TEACHERS", "PREDICTOR_STRATEGIES",
           "STRATEGIES", "STRATUM_KEYS", "PairRequest", "plan_pairs", "register_strategy"]
