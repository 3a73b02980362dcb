"""The benchmark harness itself (benchmark/perf), on tiny sizes: it measures nothing here.

The benchmarks proper are opt-in: `ktbench bench` or `pytest -m bench` (tests/test_bench.py).
"""
import numpy as np
import pandas as pd
import pytest

from benchmark.cli.main import main
from benchmark.perf import SCHEMA, BenchConfig, Record, read_benchmarks, run_benchmarks, write_rows
from benchmark.perf import sharing_bench, stats_bench, transfer_bench


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread, as the benchmarks use: quicker on a shared 2-core machine."""
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_reference_agrees_with_vectorised_statistics():
    m, n, k = 5, 400, 10
    preds, p_max, labels = stats_bench.synthetic_predictions(m, n, k, seed=3)
    teachers, students = stats_bench.all_ordered_pairs(m)
    assert len(teachers) == m * (m - 1)
    references = [stats_bench.reference_pair(preds[s], preds[t], labels, k)
                  for t, s in zip(teachers, students)]
    rows = np.arange(len(teachers))
    core = stats_bench.core_statistics(preds, labels, k, teachers, students)
    full = stats_bench.full_statistics(preds, p_max, labels, k, teachers, students)
    assert stats_bench.check_agreement(core, references, rows) <= 1e-9
    assert stats_bench.check_agreement(full, references, rows) <= 1e-9
    # the synthetic models disagree enough for flips to be there
    assert 0 < np.mean([r["pos_flips"] for r in references]) < 50


def test_agreement_check_catches_a_difference():
    ref = [{"pos_flips": 1.0}]
    with pytest.raises(AssertionError, match="pos_flips"):
        stats_bench.check_agreement({"pos_flips": np.array([1.5])}, ref, [0])


def test_synthetic_predictions_have_imagenet_shape_per_class():
    preds, p_max, labels = stats_bench.synthetic_predictions(4, 1000, 20)
    assert preds.shape == p_max.shape == (4, 1000) and labels.shape == (1000,)
    assert np.bincount(labels).tolist() == [50] * 20
    acc = (preds == labels).mean(axis=1)
    assert np.all((acc > 0.3) & (acc < 0.99))


def test_measurement_runs_in_a_subprocess_and_reports_memory():
    out = stats_bench.run_measurement(dict(m=6, n=300, k=6, variant="core", reps=1, ref_pairs=2))
    assert "error" not in out, out
    assert out["pairs"] == 30 and len(out["wall_s"]) == 1
    assert out["peak_rss_gib"] >= out["base_rss_gib"] > 0
    assert out["max_abs_diff"] <= 1e-9 and len(out["ref_s_per_pair"]) == 2


def test_records_are_appended_as_atomic_parquet_parts(tmp_path):
    record = Record("unit", "run1", echo=lambda line: None)
    record.add("case", "wall_s", 2.0, "s", "<= 10", m=3)
    record.add("case", "speedup", 10.0, "x", ">= 1000")
    record.add("case", "note", 1.0)
    assert [r["met"] for r in record.rows] == [True, False, None]
    assert len(record.missed()) == 1
    first = write_rows(tmp_path, record.rows, "unit", "run1")
    second = write_rows(tmp_path, record.rows[:1], "unit", "run2")
    assert first != second and first.parent == tmp_path / "benchmarks"
    assert not list((tmp_path / "benchmarks").glob(".*"))          # no temporary file left
    table = read_benchmarks(tmp_path)
    assert list(table.columns) == SCHEMA.names
    assert len(table) == 4 and sorted(table["run_id"].unique()) == ["run1", "run2"]
    row = table[(table["run_id"] == "run1") & (table["metric"] == "wall_s")].iloc[0]
    assert row["value"] == 2.0 and row["met"] and '"m": 3' in row["params"]
    assert pd.isna(table.loc[table["metric"] == "note", "met"]).all()


def test_runner_writes_a_part_per_benchmark_and_keeps_going_after_a_failure(tmp_path,
                                                                             monkeypatch):
    from benchmark import perf
    monkeypatch.setitem(perf.BENCHMARKS, "broken", "benchmark.perf.no_such_module")
    lines = []
    import torch
    code = run_benchmarks(["broken", "gpu"], tmp_path,
                          BenchConfig(cache=tmp_path, quick=True, threads=2), echo=lines.append)
    assert code == 1                                  # a benchmark failed
    assert torch.get_num_threads() == 1               # the caller's threads, restored
    table = read_benchmarks(tmp_path)
    assert set(table["name"]) == {"broken", "gpu"}    # gpu ran after the failure
    assert "failed" in set(table.loc[table["name"] == "broken", "metric"])
    with pytest.raises(ValueError, match="unknown benchmark"):
        run_benchmarks(["nope"], tmp_path, BenchConfig(cache=tmp_path))


def test_cli_bench_appends_to_the_benchmarks_table(tmp_path, capsys):
    # gpu: a dry run on CPU with timm's test models (a skip row where there is no CUDA)
    assert main(["bench", "gpu", "--quick", "--device", "cpu", "--threads", "1",
                 "--out", str(tmp_path)]) == 0
    assert main(["bench", "gpu", "--quick", "--out", str(tmp_path)]) == 0   # skipped: no CUDA
    table = read_benchmarks(tmp_path)
    assert table["run_id"].nunique() == 2
    measured = table[table["metric"] != "no_cuda"]
    assert {"plain_images_per_s", "kl_dp_online_over_plain"} <= set(measured["metric"])
    assert (measured["value"] > 0).all()
    assert main(["bench", "nope", "--out", str(tmp_path)]) == 2


def test_transfer_bench_bare_loop_is_the_harness_math(tiny_zoo, cache):
    """Same initial weights and batches: the bare loop's students end bit-identical to the
    harness's, so the two loops time the same work."""
    for method in transfer_bench.METHODS:
        times, n_steps, batch_size, drift = transfer_bench.compare(
            tiny_zoo, "resnet_tiny", "efficientnet_tiny", method, cache, steps=2, reps=1)
        assert drift == 0.0, method
        assert n_steps == 2 and len(times["epoch"]["harness"]) == len(times["epoch"]["bare"]) == 1
        assert all(len(v) in (0, 2) for v in times["step"].values())


def test_sharing_bench_computes_the_teacher_once_in_one_task(tiny_zoo, cache, tmp_path):
    units, base = sharing_bench.prepare(tiny_zoo, "resnet_tiny",
                                        ["efficientnet_tiny", "resmlp_tiny"],
                                        dict(epochs=1, train_samples=128), cache, tmp_path,
                                        method="kl")   # the teacher's outputs only
    assert len(units) == 2
    _, shared, acc_shared, _ = sharing_bench.run_mode("shared", units, base, tmp_path, cache,
                                                      1, 0)
    _, separate, acc_separate, _ = sharing_bench.run_mode("separate", units, base, tmp_path,
                                                          cache, 1, 0)
    assert shared["resnet_tiny"] == 1 and separate["resnet_tiny"] == 2
    assert (acc_shared.sort_index() == acc_separate.sort_index()).all()


def test_sharing_bench_lockstep_case_counts_one_forward_per_frozen_model(tiny_zoo, cache):
    from benchmark.perf import BenchConfig, Record
    record = Record("sharing", "test", echo=lambda line: None)
    with sharing_bench.on_the_cpu():
        sharing_bench.lockstep_case(BenchConfig(cache=cache, quick=True), record, tiny_zoo,
                                    "methods", 1)
    figures = {row["metric"]: row for row in record.rows}
    assert figures["frozen_forwards_per_batch_shared"]["value"] == 2      # teacher, frozen student
    assert figures["frozen_forwards_per_batch_separate"]["value"] == 5    # 1 + 2 + 2
    assert figures["max_student_acc_diff"]["value"] == 0
    assert figures["cpu_time_ratio"]["value"] > 0 and not record.missed()


def test_scale_bench_builds_a_sweep_folder_and_measures_every_command(tmp_path):
    """A small run of `ktbench bench scale`: the folder holds what a sweep of 60 units leaves,
    every command's output is checked inside the benchmark, each figure has its row (no timing
    is asserted)."""
    from benchmark.perf import scale_bench
    plan = scale_bench.make_scale_plan(60)
    folder = tmp_path / "built"
    plan_path = scale_bench.build_folder(folder, 60)
    from results import query
    runs = query(folder, "SELECT key, status FROM transfer_runs")
    assert sorted(runs["key"]) == sorted(plan["key"]) and len(list((folder / "transfer_runs")
                                                                   .iterdir())) == 60
    epochs = query(folder, "SELECT count(*) AS n FROM transfer_epochs")["n"][0]
    assert epochs == 20 * (runs["status"] != "failed").sum()
    assert query(folder, "SELECT count(*) AS n FROM predictions")["n"][0] == 10 * 500
    assert query(folder, "SELECT count(*) AS n FROM pair_stats")["n"][0] == 60
    probes = query(folder, "SELECT model, num_classes FROM probes ORDER BY model")
    assert probes["model"].tolist() == [f"m{i:04d}" for i in range(10)]       # one per model
    assert (probes["num_classes"] == 1000).all()
    assert plan_path.is_file()
    # its statistics are of the models' predictions as they are: no pair is left to compute
    from benchmark.launch.pending import pending_units
    scale_bench.register(scale_bench.n_models(60))
    assert pending_units(plan, folder)["stats"] == []

    lines = []
    assert run_benchmarks(["scale"], tmp_path, BenchConfig(cache=tmp_path, units=60, repeats=1),
                          echo=lines.append) in (0, 1)           # 1: a timing target missed
    rows = read_benchmarks(tmp_path)
    assert "failed" not in set(rows["metric"]), lines
    cases = set(rows["case"])
    for command in ("status", "query", "tables", "probe_tables", "relaunch", "dry_run"):
        assert {f"{command} (parts)", f"{command} (compacted)"} <= cases
    assert {"build", "compact", "compacted"} <= cases
    peaks = rows[rows["metric"] == "peak_rss"]
    assert (peaks["value"] > 0.01).all() and (peaks["value"] < 8).all()
    assert rows.loc[rows["case"] == "status (compacted)", "target"].tolist() == ["<= 3", "<= 1.5"]
