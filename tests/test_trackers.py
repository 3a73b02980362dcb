"""Tracker logging (`--log wandb,tensorboard`): each transfer epoch mirrored to W&B (offline
mode) and TensorBoard under the unit key, a resumed unit continuing its runs; read back from the
files the trackers write. Off by default; bad names refused before any job."""
import json
import struct
import time

import numpy as np
import pytest

from benchmark.methods import resolve_params
from benchmark.units import transfer
from benchmark.units.predict import run_predict
from benchmark.units.unit import PredictUnit, RunOptions, TransferUnit
from pairs.plan import make_plan
from results import read_table

METRICS = ("student_acc", "dist_delta", "knowledge_gain", "loss")


@pytest.fixture
def offline_wandb(monkeypatch, tmp_path):
    """W&B in offline mode, its own files in this test's folder."""
    for variable in ("WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR"):
        monkeypatch.setenv(variable, str(tmp_path / "wandb-home"))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")


def wandb_history(path) -> list[dict]:
    """The history rows of an offline run's `.wandb` file: a LevelDB-style log (7-byte header,
    32 KiB blocks of records with a 7-byte header: CRC, length, type) of protobuf `Record`s."""
    from wandb.proto import wandb_internal_pb2 as pb
    raw, rows, pos, pending = path.read_bytes(), [], 7, b""
    assert raw[:4] == b":W&B"
    while pos + 7 <= len(raw):
        if 32768 - pos % 32768 < 7:                 # a block's tail too short for a header
            pos += 32768 - pos % 32768
            continue
        _, length, kind = struct.unpack("<IHB", raw[pos:pos + 7])
        if kind == 0:
            break
        pending += raw[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):                          # a full record, or the last piece of one
            record = pb.Record()
            record.ParseFromString(pending)
            pending = b""
            if record.WhichOneof("record_type") == "history":
                rows.append({i.key or "/".join(i.nested_key): json.loads(i.value_json)
                             for i in record.history.item})
    return rows


def test_a_resumed_unit_continues_its_tracker_runs(tiny_zoo, cache, tmp_path, offline_wandb,
                                                   killed_after_checkpoint):
    from benchmark.trackers import runs
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    params = resolve_params("kl", tiny_zoo.transfer_defaults,
                            {"epochs": 2, "train_samples": 256, "batch_size": 64})
    plan = make_plan(tiny_zoo, [("efficientnet_tiny", "resnet_tiny")], {"kl": params}, [0])
    logs = tmp_path / "trackers"
    unit = TransferUnit.from_row(plan.iloc[0])
    options = RunOptions(log=("wandb", "tensorboard"), log_dir=str(logs))
    for model in ("efficientnet_tiny", "resnet_tiny"):
        run_predict(PredictUnit(f"predict-{model}", tiny_zoo.name, tiny_zoo.dataset, model),
                    tmp_path, cache)
    killed_after_checkpoint(lambda: transfer.run_transfer(unit, tmp_path, cache, options=options))
    runs.finish_unit(unit, "killed")   # a killed process takes its open runs with it
    time.sleep(1.1)                    # W&B names a run's folder by its start, to the second
    assert transfer.run_transfer(unit, tmp_path, cache, options=options) == "ok"
    epochs = read_table(tmp_path, "transfer_epochs").sort_values("epoch")
    expected = {m: list(zip(epochs["epoch"], epochs[m])) for m in METRICS}
    # TensorBoard: one folder per unit, one event file per process that ran it
    folder = logs / "tensorboard" / unit.key
    assert len(list(folder.glob("events.out.tfevents.*"))) == 2
    events = EventAccumulator(str(folder))
    events.Reload()
    for metric in METRICS:
        got = [(e.step, e.value) for e in events.Scalars(metric)]
        assert [s for s, _ in got] == [0, 1]
        np.testing.assert_allclose([v for _, v in got], [v for _, v in expected[metric]],
                                   rtol=1e-6)
    # W&B: the unit key is the run id; the resumed part continues the history
    parts = sorted((logs / "wandb").glob(f"offline-run-*-{unit.key}"))
    assert len(parts) == 2
    history = [row for part in parts for row in wandb_history(part / f"run-{unit.key}.wandb")]
    assert [row["_step"] for row in history] == [0, 1]
    for metric in METRICS:
        np.testing.assert_allclose([row[metric] for row in history],
                                   [v for _, v in expected[metric]], rtol=1e-12)


def test_no_tracker_unless_asked_and_unknown_ones_refused(tmp_path, capsys):
    from benchmark.cli.main import main
    from benchmark.launch.launcher import LaunchOptions
    assert LaunchOptions().log == ()
    assert LaunchOptions(log="tensorboard,wandb,tensorboard").log == ("tensorboard", "wandb")
    with pytest.raises(ValueError, match="unknown tracker 'mlflow'; trackers: tensorboard, wandb"):
        LaunchOptions(log=["wandb", "mlflow"])
    main(["plan", "--zoo", "tiny", "--pairs", "1", "--out", str(tmp_path / "p.parquet")])
    capsys.readouterr()
    code = main(["launch", str(tmp_path / "p.parquet"), "--results", str(tmp_path / "r"),
                 "--executor", "debug", "--quiet", "--log", "wandb,nope"])
    err = capsys.readouterr().err
    assert code == 2 and err == "ktbench: error: unknown tracker 'nope'; trackers: " \
                                "tensorboard, wandb\n"
    assert not [f for f in (tmp_path / "r").rglob("*") if f.is_file()]
