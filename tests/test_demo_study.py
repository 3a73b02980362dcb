"""`ktbench demo` and `demo --study`: which zoo, pairs, methods and seeds each runs, and that the
output says which zoo it used and what its controls mean (the launch itself is replaced)."""
import itertools

import pytest

from benchmark.cli.main import main
from pairs import get_zoo

STUDY_METHODS = {"kl", "kl_dp", "kl_dp_unsup", "xe_finetune", "random_teacher"}


@pytest.fixture
def launched(monkeypatch):
    """The plan each launch got; every unit reported held, so no tables are read."""
    from benchmark.launch import launcher
    plans = []

    def fake_launch(plan, *args, **kwargs):
        plans.append(plan)
        return {stage: {"submitted": 0, "failed": 0, "held": 1, "held_by": ["1"], "errors": []}
                for stage in ("predict", "stats", "transfer")}
    monkeypatch.setattr(launcher, "launch", fake_launch)
    return plans


def test_study_runs_every_ordered_pair_of_the_converged_zoo(launched, tmp_path, capsys):
    assert main(["demo", "--study", "--results", str(tmp_path), "--quiet"]) == 0
    plan = launched[0]
    names = [m.name for m in get_zoo("micro_converged").models]
    expected_pairs = set(itertools.permutations(names, 2))
    assert len(expected_pairs) >= 30
    assert set(zip(plan["teacher"], plan["student"])) == expected_pairs
    assert set(plan["method"]) == STUDY_METHODS
    assert set(plan["seed"]) == {0, 1}
    assert len(plan) == len(expected_pairs) * len(STUDY_METHODS) * 2
    assert (tmp_path / "plans" / "study.parquet").is_file()
    out = capsys.readouterr().out
    assert "micro_converged zoo" in out and "convergence" in out


def test_fast_demo_keeps_the_fast_zoo_and_says_what_its_control_means(launched, tmp_path, capsys):
    assert main(["demo", "--results", str(tmp_path), "--quiet"]) == 0
    plan = launched[0]
    assert len(set(zip(plan["teacher"], plan["student"]))) == 6
    assert set(plan["method"]) == {"kl", "kl_dp", "xe_finetune"} and set(plan["seed"]) == {0}
    out = capsys.readouterr().out
    assert "micro zoo" in out and "xe_finetune control" in out


def test_study_takes_a_pair_sample_and_methods_when_given(launched, tmp_path):
    assert main(["demo", "--study", "--pairs", "4", "--methods", "kl_dp", "--results",
                 str(tmp_path), "--quiet"]) == 0
    plan = launched[0]
    assert len(plan) == 4 * 2 and set(plan["method"]) == {"kl_dp"}


def test_converged_zoo_trains_longer_than_the_fast_one():
    """Its diversity comes from architecture, width, augmentation and seed, not from stopping
    early: every recipe runs at least twice the fast zoo's longest."""
    fast = max(m.recipe["epochs"] for m in get_zoo("micro").models)
    converged = get_zoo("micro_converged").models
    assert min(m.recipe["epochs"] for m in converged) >= 2 * fast
    assert len({m.arch for m in converged}) >= 3
    assert len({m.family for m in converged}) >= 3
