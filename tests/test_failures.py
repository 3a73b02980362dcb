"""A failed unit says why: its error in the results (every stage), each distinct error's first
line with a count and a log in launch's output, dependent stages not run when a stage's units
all failed, and a pre-flight in a fresh process before any job is submitted."""
from benchmark.cli.main import main
from benchmark.methods import resolve_params
from benchmark.units import dispatch
from pairs.catalog import Zoo, register_zoo
from pairs.plan import all_pairs, make_plan, write_plan
from results import query


def _plan_file(zoo, folder):
    methods = {"kl": resolve_params("kl", zoo.transfer_defaults, {"epochs": 1})}
    plan = make_plan(zoo, all_pairs([m.name for m in zoo.models])[:2], methods, seeds=[0])
    return write_plan(plan, folder / "plan.parquet")


def test_predict_units_that_all_fail_stop_the_launch(tiny_zoo, cache, tmp_path, monkeypatch,
                                                     capsys):
    def unreadable(unit, *args):
        raise RuntimeError(f"weights of {unit.model} unreadable\nsecond line")
    monkeypatch.setattr(dispatch, "run_predict", unreadable)
    plan = _plan_file(tiny_zoo, tmp_path)
    results = tmp_path / "results"
    assert main(["launch", str(plan), "--results", str(results), "--cache", str(cache),
                 "--executor", "debug", "--quiet"]) == 1
    out = capsys.readouterr().out
    # three models, three distinct first lines, each once; the second line is not printed
    for model in sorted(m.name for m in tiny_zoo.models):
        assert f"1 x RuntimeError: weights of {model} unreadable\n" in out
    assert "second line" not in out and out.count("log: ") == 3
    assert "predict: 3 submitted, 3 failed" in out
    assert "stats: not run: every predict unit it needs failed" in out
    assert "transfer: not run: every predict unit it needs failed" in out
    assert not (results / "pair_stats").exists() and not (results / "transfer_runs").exists()
    failures = query(results, "SELECT stage, unit, message, error FROM unit_failures "
                              "ORDER BY unit")
    assert failures["stage"].tolist() == ["predict"] * 3
    assert failures["unit"].tolist() == sorted(m.name for m in tiny_zoo.models)
    assert failures["message"][0] == f"RuntimeError: weights of {failures['unit'][0]} unreadable"
    assert "Traceback" in failures["error"][0] and "second line" in failures["error"][0]


def test_one_error_of_many_units_is_counted_once(tiny_zoo, cache, tmp_path, monkeypatch, capsys):
    def unreadable(unit, *args):
        raise OSError("disk gone")
    monkeypatch.setattr(dispatch, "run_predict", unreadable)
    plan = _plan_file(tiny_zoo, tmp_path)
    assert main(["launch", str(plan), "--results", str(tmp_path / "r"), "--cache", str(cache),
                 "--executor", "debug", "--quiet", "--tasks", "1"]) == 1
    assert "3 x OSError: disk gone\n" in capsys.readouterr().out


def test_a_zoo_job_processes_cannot_resolve_stops_before_any_job(tiny_zoo, cache, tmp_path,
                                                                 monkeypatch, capsys):
    # registered in this process only: a fresh job process never sees it
    register_zoo("only_here")(lambda: Zoo("only_here", tiny_zoo.dataset, tiny_zoo.models,
                                           tiny_zoo.transfer_defaults))
    plan = _plan_file(Zoo("only_here", tiny_zoo.dataset, tiny_zoo.models,
                          tiny_zoo.transfer_defaults), tmp_path)
    results = tmp_path / "results"
    assert main(["launch", str(plan), "--results", str(results), "--cache", str(cache),
                 "--executor", "local", "--quiet"]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and "unknown zoo 'only_here'" in err[0] and "--plugin" in err[0]
    assert captured.out == "" and not (results / "jobs").exists()
