"""Plans: pair sampling, deterministic unit keys, and plan files that are checked on read."""
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pairs.catalog import ModelEntry, Zoo
from pairs.plan import PlanError, all_pairs, make_plan, random_pairs, read_plan, write_plan
from results.errors import InputError

NAMES = ["a", "b", "c", "d"]
ZOO = Zoo("toy", "digits16", tuple(ModelEntry(n, "test_resnet", "cnn", 10) for n in NAMES))
KL = {"kl": {"lr": 0.1, "epochs": 1}}


def test_all_pairs_are_ordered_and_skip_self():
    pairs = all_pairs(NAMES)
    assert len(pairs) == 12 and len(set(pairs)) == 12
    assert ("a", "b") in pairs and ("b", "a") in pairs and ("a", "a") not in pairs


def test_random_pairs_are_distinct_reproducible_and_bounded():
    pairs = random_pairs(NAMES, 12, seed=3)
    assert sorted(pairs) == sorted(all_pairs(NAMES))      # all 12 when asked for all 12
    assert random_pairs(NAMES, 5, seed=1) == random_pairs(NAMES, 5, seed=1)
    assert random_pairs(NAMES, 5, seed=1) != random_pairs(NAMES, 5, seed=2)
    with pytest.raises(ValueError, match="between 1 and 12"):
        random_pairs(NAMES, 13, seed=0)


def test_keys_are_deterministic_and_change_with_what_changes_results():
    plan = make_plan(ZOO, [("a", "b")], KL, seeds=[0, 1])
    again = make_plan(ZOO, [("a", "b")], KL, seeds=[0, 1])
    assert plan["key"].tolist() == again["key"].tolist() and plan["key"].nunique() == 2
    other_lr = make_plan(ZOO, [("a", "b")], {"kl": {"lr": 0.2, "epochs": 1}}, seeds=[0])
    compat = make_plan(ZOO, [("a", "b")], KL, seeds=[0], compat="fantasticgains")
    assert len({plan["key"][0], other_lr["key"][0], compat["key"][0]}) == 3
    assert plan["plan"].nunique() == 1


def test_unknown_model_is_rejected():
    with pytest.raises(InputError, match="unknown model 'z'"):
        make_plan(ZOO, [("a", "z")], KL, seeds=[0])


def test_plan_round_trip_and_bad_files(tmp_path):
    plan = make_plan(ZOO, all_pairs(NAMES), KL, seeds=[0])
    path = write_plan(plan, tmp_path / "p.parquet")
    pd.testing.assert_frame_equal(read_plan(path), plan)
    with pytest.raises(PlanError, match="does not exist"):
        read_plan(tmp_path / "missing.parquet")
    (tmp_path / "junk.parquet").write_bytes(b"not parquet")
    with pytest.raises(PlanError, match="not a readable Parquet"):
        read_plan(tmp_path / "junk.parquet")
    pq.write_table(pa.Table.from_pandas(plan), tmp_path / "old.parquet")   # no version mark
    with pytest.raises(PlanError, match="schema version none"):
        read_plan(tmp_path / "old.parquet")
    write_plan(plan.iloc[:0], tmp_path / "empty.parquet")
    with pytest.raises(PlanError, match="is empty"):
        read_plan(tmp_path / "empty.parquet")
