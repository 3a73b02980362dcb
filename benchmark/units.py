"""The predict and stats units, and one entry point that runs any unit by its stage.

predict: one model's eval predictions, cached forever under its key.
stats: complementary knowledge of many pairs at once, from cached predictions only.
"""
import socket
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
from benchmark import data, models
from benchmark.features import run_features
from benchmark.loading import load_model, resolve_weights
from benchmark.stats import ClassFlips, pair_statistics
from benchmark.transfer import run_transfer
from benchmark.version import code_version
from benchmark.weights import check_reported_top1
from pairs.catalog import get_zoo
from results import TABLES, predictions_matrix, write_part


def run_predict(unit: dict, results_dir, cache: Path) -> str:
    t0 = time.perf_counter()
    entry = get_zoo(unit["zoo"]).get(unit["model"])
    dataset = data.load_dataset(unit["dataset"], cache)
    model = load_model(entry, cache)
    probs = models.predict_logits(model, dataset.eval_x, entry.mean, entry.std).softmax(1)
    labels = dataset.eval_y
    p_max, pred = probs.max(1)
    predictions = pd.DataFrame({
        "model": entry.name, "dataset": dataset.name, "sample": np.arange(len(labels)),
        "label": labels.numpy(), "pred": pred.numpy(),
        "p_true": probs.gather(1, labels.view(-1, 1)).squeeze(1).numpy(), "p_max": p_max.numpy(),
    })
    top1 = 100.0 * float((pred == labels).float().mean())
    # paper.md 3.4: flagged in the job's log (and the model_accuracy table); strict: stop here
    warning = check_reported_top1(entry.name, top1, entry.top1_reported,
                                  strict=bool(unit.get("strict_top1")))
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    weights = resolve_weights(entry, cache)
    row = {
        "key": unit["key"], "model": entry.name, "zoo": unit["zoo"], "family": entry.family,
        "arch": entry.arch, "params_m": models.count_params_m(model),
        "source": str(weights) if weights else "hub", "dataset": dataset.name,
        "num_classes": dataset.num_classes,
        "top1": top1,
        "top1_reported": entry.top1_reported, "img_size": entry.input_size[-1],
        "n_eval": len(labels), "seconds": time.perf_counter() - t0,
    }
    # predictions first: a `models` row is the mark that the unit is complete
    write_part(results_dir, "predictions", predictions, unit["key"])
    write_part(results_dir, "models", pd.DataFrame([row]), unit["key"])
    return "ok"


def write_class_flips(results_dir, class_flips: ClassFlips, part: str) -> None:
    """The class_flips rows as parts `<part>.<i>`, one DataFrame at a time."""
    for i, frame in enumerate(class_flips.frames()):
        write_part(results_dir, "class_flips", frame, f"{part}.{i:04d}")


def run_stats(unit: dict, results_dir, cache: Path) -> str:
    pairs = unit["pairs"]
    names = sorted({name for pair in pairs for name in pair})
    index = {name: i for i, name in enumerate(names)}
    labels, preds, p_max = predictions_matrix(results_dir, unit["dataset"], names)
    num_classes = data.load_dataset(unit["dataset"], cache).num_classes
    pair_stats, class_flips = pair_statistics(
        preds, p_max, labels, num_classes,
        teachers=np.array([index[t] for t, _ in pairs]),
        students=np.array([index[s] for _, s in pairs]),
        models=names, dataset=unit["dataset"], compat=unit["compat"] or None)
    write_class_flips(results_dir, class_flips, unit["key"])
    write_part(results_dir, "pair_stats", pair_stats, unit["key"])   # the mark of completion
    return "ok"


_RUNNERS = {"predict": run_predict, "stats": run_stats, "features": run_features}


def run_unit(unit: dict, results_dir, cache: Path, job_id: str = "") -> str:
    if unit["stage"] == "transfer":
        return run_transfer(unit, results_dir, cache, job_id)
    return _RUNNERS[unit["stage"]](unit, results_dir, cache)


def record_failure(unit: dict, results_dir, error: BaseException, job_id: str = ""):
    """A failed transfer unit leaves a `failed` run row with its traceback (retried on request);
    a failed predict or stats unit leaves nothing, so the next launch simply runs it again."""
    if unit["stage"] != "transfer":
        return
    now = datetime.now(timezone.utc)
    row = dict.fromkeys(TABLES["transfer_runs"].names)
    row.update({k: unit[k] for k in ("key", "plan", "teacher", "student", "method", "params",
                                     "seed", "dataset")})
    row.update(teachers=unit.get("teachers") or unit["teacher"], mode=unit.get("mode") or "")
    row.update(compat=unit["compat"] or "", status="failed", epochs=0, job_id=job_id,
               error="".join(traceback.format_exception(error)), host=socket.gethostname(),
               code_version=code_version(), started_at=now, finished_at=now)
    write_part(results_dir, "transfer_runs", pd.DataFrame([row]), unit["key"])
