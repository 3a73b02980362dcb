"""plan -> launch -> tables on the tiny zoo, through submitit; relaunch and resume behaviour."""
import dataclasses
import json

import pandas as pd
import pytest

from analysis import run_tables
from benchmark.units import transfer
from benchmark.launch.launcher import LaunchOptions, launch
from benchmark.launch.pending import pending_units
from benchmark.methods import resolve_params
from benchmark.units.predict import run_predict
from benchmark.units.unit import PredictUnit, TransferUnit
from pairs.plan import all_pairs, make_plan
from results import query, read_table

DEBUG = LaunchOptions(executor="debug", progress=False)


def _plan(zoo, methods=("kl", "kl_dp"), epochs=1, pairs=None):
    names = [m.name for m in zoo.models]
    resolved = {m: resolve_params(m, zoo.transfer_defaults, {"epochs": epochs}) for m in methods}
    return make_plan(zoo, pairs or all_pairs(names)[:2], resolved, seeds=[0])


def test_plan_launch_tables_then_relaunch_does_nothing(tiny_zoo, cache, tmp_path):
    plan = _plan(tiny_zoo)
    summary = launch(plan, tmp_path, cache, DEBUG)
    assert summary == {"predict": {"submitted": 3, "failed": 0, "held": 0,
                                   "held_by": [], "errors": []},
                       "stats": {"submitted": 1, "failed": 0, "held": 0,
                                 "held_by": [], "errors": []},
                       "transfer": {"submitted": 4, "failed": 0, "held": 0,
                                    "held_by": [], "errors": []}}
    runs = read_table(tmp_path, "transfer_runs")
    assert sorted(runs["key"]) == sorted(plan["key"]) and set(runs["status"]) == {"ok"}
    # no soup in the plan: no unit keeps its student (kl_dp included)
    assert not (tmp_path / "students").exists() and (runs["disk_bytes"] == 0).all()
    epochs = read_table(tmp_path, "transfer_epochs")
    assert len(epochs) == 4 and set(epochs["epoch"]) == {0}
    # dist_delta is the change of the student's accuracy from its measured start
    merged = runs.merge(epochs, on="key", suffixes=("", "_epoch"))
    assert (merged["student_acc"] - merged["acc_s"]).round(6).tolist() == \
        merged["dist_delta"].round(6).tolist()
    # rho_pos of the pair stats equals what the cached predictions say, sample by sample
    preds = read_table(tmp_path, "predictions").pivot(index="sample", columns="model",
                                                      values="pred")
    labels = read_table(tmp_path, "predictions").groupby("sample")["label"].first()
    stats = read_table(tmp_path, "pair_stats")
    for row in stats.itertuples():
        expected = 100 * ((preds[row.teacher] == labels) & (preds[row.student] != labels)).mean()
        assert row.pos_flips == pytest.approx(expected)

    tables = run_tables(tmp_path)
    assert sorted(tables["success_rate"]["method"]) == ["kl", "kl_dp"]
    assert len(tables["pair_deltas"]) == 2 and {"kl", "kl_dp"} <= set(tables["pair_deltas"].columns)
    assert tables["complementary_knowledge"]["pairs"][0] == 2

    files_before = sorted(p.name for p in tmp_path.rglob("*.parquet"))
    again = launch(plan, tmp_path, cache, DEBUG)
    assert all(stage["submitted"] == 0 for stage in again.values())
    assert sorted(p.name for p in tmp_path.rglob("*.parquet")) == files_before


def test_local_executor_runs_jobs_in_subprocesses(tiny_zoo, cache, tmp_path):
    launch(_plan(tiny_zoo, methods=("kl",)), tmp_path, cache, DEBUG)   # predict + stats in-process
    plan = _plan(tiny_zoo, methods=("kl_dp_unsup",))
    options = LaunchOptions(executor="local", tasks=1, threads=2, progress=False)
    summary = launch(plan, tmp_path, cache, options)
    assert summary == {"predict": {"submitted": 0, "failed": 0, "held": 0,
                                   "held_by": [], "errors": []},
                       "stats": {"submitted": 0, "failed": 0, "held": 0,
                                 "held_by": [], "errors": []},
                       "transfer": {"submitted": 2, "failed": 0, "held": 0,
                                    "held_by": [], "errors": []}}
    runs = read_table(tmp_path, "transfer_runs").query("method == 'kl_dp_unsup'")
    assert len(runs) == 2 and set(runs["status"]) == {"ok"}
    assert set(runs["job_id"]) == {summary_job_id(tmp_path)}
    # job folders and the manifests, no stray `%j` folder of submitit's local controller
    assert "%j" not in {p.name for p in (tmp_path / "jobs").iterdir()}


def summary_job_id(results_dir) -> str:
    """The one submitit job folder the local launch left (jobs/<job id>/)."""
    (job,) = [p.name for p in (results_dir / "jobs").iterdir()
              if any(p.glob("*_result.pkl"))]
    return job


def test_resumed_transfer_matches_uninterrupted(tiny_zoo, cache, tmp_path,
                                                killed_after_checkpoint):
    plan = _plan(tiny_zoo, methods=("kl_dp",), epochs=2, pairs=[all_pairs(
        [m.name for m in tiny_zoo.models])[0]])
    unit = TransferUnit.from_row(plan.iloc[0])
    for folder in ("straight", "resumed"):
        for model in (unit.teacher, unit.student):
            run_predict(PredictUnit(f"predict-{model}", tiny_zoo.name, tiny_zoo.dataset, model),
                        tmp_path / folder, cache)
    transfer.run_transfer(unit, tmp_path / "straight", cache)

    # the process dies right after the first checkpoint
    killed_after_checkpoint(lambda: transfer.run_transfer(unit, tmp_path / "resumed",
                                                                    cache))
    assert transfer.checkpoint_path(tmp_path / "resumed", unit.key).is_file()
    assert read_table(tmp_path / "resumed", "transfer_runs").empty
    transfer.run_transfer(unit, tmp_path / "resumed", cache)

    timing = ["images_per_s", "seconds"]
    straight, resumed = (read_table(tmp_path / f, "transfer_epochs").sort_values("epoch")
                         .drop(columns=timing).reset_index(drop=True)
                         for f in ("straight", "resumed"))
    assert len(straight) == 2
    pd.testing.assert_frame_equal(straight, resumed)
    assert not transfer.checkpoint_path(tmp_path / "resumed", unit.key).exists()


def test_failed_unit_is_recorded_and_retried_on_request(tiny_zoo, cache, tmp_path):
    plan = _plan(tiny_zoo, methods=("kl",))
    broken = plan.copy()
    broken.loc[0, "params"] = json.dumps({**json.loads(plan.loc[0, "params"]), "lr": None})
    summary = launch(broken, tmp_path, cache, dataclasses.replace(DEBUG, keep_students="all"))
    assert {k: summary["transfer"][k] for k in ("submitted", "failed")} == {"submitted": 2,
                                                                            "failed": 1}
    (error,) = summary["transfer"]["errors"]      # one unit failed: its error, counted once
    assert error.count == 1 and error.message == query(
        tmp_path, "SELECT message FROM unit_failures WHERE stage = 'transfer'")["message"][0]
    runs = read_table(tmp_path, "transfer_runs").set_index("key")
    assert runs.loc[broken.loc[0, "key"], "status"] == "failed"
    # --keep-students all: the unit that ran kept its student, and says how many bytes
    ok = broken.loc[1, "key"]
    assert runs.loc[ok, "disk_bytes"] == transfer.student_path(tmp_path, ok).stat().st_size > 0
    assert runs.loc[broken.loc[0, "key"], "disk_bytes"] == 0
    assert "Traceback" in runs.loc[broken.loc[0, "key"], "error"]
    assert len(pending_units(broken, tmp_path)["transfer"]) == 0
    assert len(pending_units(broken, tmp_path, retry_failed=True)["transfer"]) == 1
