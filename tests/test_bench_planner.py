"""Planner benchmark (pytest -m bench -s): 100,000 pairs from a 1,000-model catalog in < 5 s."""
import time

import pytest

from pairs.plan import make_plan
from pairs.strategies import PairRequest, plan_pairs
from tests.test_strategies import synthetic_catalog, synthetic_zoo

TARGET_S = 5.0


@pytest.mark.bench
@pytest.mark.parametrize("strategy", ["random", "stratified"])
def test_plan_100k_pairs_from_1000_models(strategy):
    table = synthetic_catalog(1000)
    zoo = synthetic_zoo(table)
    t0 = time.perf_counter()
    pairs = plan_pairs(strategy, table, PairRequest(n=100_000, seed=0))
    t_pairs = time.perf_counter() - t0
    plan = make_plan(zoo, pairs, {"kl": {"lr": 1e-4, "epochs": 20}}, seeds=[0])
    seconds = time.perf_counter() - t0
    print(f"\n{strategy}: 100,000 pairs from 1,000 models: pairs {t_pairs:.2f} s, "
          f"plan {seconds - t_pairs:.2f} s, total {seconds:.2f} s (target < {TARGET_S:.0f} s)")
    assert len(plan) == 100_000 and plan["key"].is_unique
    assert seconds < TARGET_S
