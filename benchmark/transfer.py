"""The transfer unit: one (teacher, student, method, params, seed) training run.

SGD over the transfer split, evaluation after every epoch with the paper's metrics, a
checkpoint after every epoch (a restarted unit resumes from it and ends with the same numbers),
and the epoch and run rows written only when the run is complete.
"""
import json
import math
import os
import socket
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from benchmark import data, models
from benchmark.loading import load_model, train_logits
from benchmark.methods import get_method
from benchmark.metrics import transfer_metrics
from benchmark.version import code_version
from pairs.catalog import get_zoo
from results import TABLES, metric_column, predictions_matrix, write_part

COMPLETE = ("ok", "diverged")


def checkpoint_path(results_dir, key: str) -> Path:
    return Path(results_dir) / "checkpoints" / f"{key}.pt"


def _save_checkpoint(path: Path, state: dict):
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def _epoch_order(n: int, batch_size: int, seed: int, epoch: int) -> list[torch.Tensor]:
    """Shuffled full batches, a pure function of (seed, epoch) so a resumed run sees the same."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))
    usable = n - n % batch_size if n >= batch_size else n   # no 1-sample batch for BatchNorm
    return list(order[:usable].split(batch_size))


def run_transfer(unit: dict, results_dir, cache: Path, job_id: str = "") -> str:
    """Run (or resume) one transfer unit; returns its status (`ok` or `diverged`)."""
    started = datetime.now(timezone.utc)
    wall0 = time.perf_counter()
    zoo = get_zoo(unit["zoo"])
    teacher, student_entry = zoo.get(unit["teacher"]), zoo.get(unit["student"])
    params = json.loads(unit["params"])
    seed, compat = int(unit["seed"]), unit["compat"] or None
    dataset = data.load_dataset(unit["dataset"], cache)
    labels, preds, _ = predictions_matrix(results_dir, unit["dataset"],
                                          [student_entry.name, teacher.name])
    zero_preds, teacher_preds = preds
    acc_s, acc_t = (100.0 * float(np.mean(p == labels)) for p in preds)

    method = get_method(unit["method"])(params)
    frozen = {"teacher": teacher, "frozen": student_entry}
    refs = {name: train_logits(frozen[name], unit["dataset"], cache) for name in method.references}

    torch.manual_seed(seed)
    student = load_model(student_entry, cache)
    optimizer = torch.optim.SGD(student.parameters(), lr=params["lr"],
                                momentum=params["momentum"], weight_decay=params["weight_decay"])
    ckpt_file = checkpoint_path(results_dir, unit["key"])
    rows, status = [], "ok"
    if ckpt_file.is_file():
        state = torch.load(ckpt_file, weights_only=True)
        student.load_state_dict(state["student"])
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng"])
        rows, status = state["rows"], state["status"]

    while len(rows) < params["epochs"] and status == "ok":
        epoch = len(rows)
        row, status = _train_epoch(student, method, optimizer, dataset, refs, params, seed, epoch,
                                   student_entry)
        student.eval()
        dist_preds = models.predict_logits(student, dataset.eval_x, student_entry.mean,
                                           student_entry.std).argmax(1).numpy()
        student.train()
        metrics = transfer_metrics(zero_preds, dist_preds, teacher_preds, labels,
                                   dataset.num_classes, compat=compat)
        row.update({metric_column(k): v for k, v in metrics.items()})
        if status == "ok" and row["student_acc"] < acc_s - params["diverge_margin"]:
            status = "diverged"
        rows.append(row)
        _save_checkpoint(ckpt_file, {"student": student.state_dict(),
                                     "optimizer": optimizer.state_dict(),
                                     "rng": torch.get_rng_state(), "rows": rows, "status": status})

    epochs = pd.DataFrame(rows).assign(key=unit["key"])
    write_part(results_dir, "transfer_epochs", epochs[TABLES["transfer_epochs"].names], unit["key"])
    last = rows[-1]
    run = {
        **{k: unit[k] for k in ("key", "plan", "teacher", "student", "method", "params",
                                "seed", "dataset")},
        "compat": unit["compat"] or "", "status": status, "epochs": len(rows),
        "acc_t": acc_t, "acc_s": acc_s, "ts_diff": acc_t - acc_s,
        **{k: last[k] for k in ("student_acc", "dist_delta", "knowledge_gain", "knowledge_loss",
                                "transfer_rate")},
        "error": "", "wall_s": time.perf_counter() - wall0, "host": socket.gethostname(),
        "job_id": job_id, "code_version": code_version(),
        "started_at": started, "finished_at": datetime.now(timezone.utc),
    }
    write_part(results_dir, "transfer_runs", pd.DataFrame([run]), unit["key"])
    ckpt_file.unlink(missing_ok=True)
    return status


def _train_epoch(student, method, optimizer, dataset, refs, params, seed, epoch, entry):
    student.train()
    t0 = time.perf_counter()
    losses, teacher_inputs, seen, status = [], [], 0, "ok"
    n_train = params["train_samples"] or len(dataset.train_y)
    for idx in _epoch_order(min(n_train, len(dataset.train_y)), params["batch_size"], seed, epoch):
        x = data.normalize(dataset.train_x[idx], entry.mean, entry.std)
        _, named_losses, logs = method.forward_train(
            student, x, dataset.train_y[idx], {name: r[idx] for name, r in refs.items()})
        loss = sum(named_losses.values())
        if not torch.isfinite(loss):
            status = "diverged"
            break
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        seen += len(idx)
        if "teacher_input" in logs:
            teacher_inputs.append(logs["teacher_input"])
    seconds = time.perf_counter() - t0
    row = {"epoch": epoch, "loss": float(np.mean(losses)) if losses else math.nan,
           "teacher_input": float(np.mean(teacher_inputs)) if teacher_inputs else math.nan,
           "images_per_s": seen / seconds if seconds > 0 else math.nan, "seconds": seconds}
    return row, status
