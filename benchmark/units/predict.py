"""The predict unit: one model's eval predictions, cached forever under its key."""
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark import models
from benchmark.data.feeding import load_for, models_columns
from benchmark.models.loading import load_model, resolve_weights
from benchmark.models.weights import check_reported_top1
from benchmark.units.unit import PREDICT, PredictUnit
from pairs.catalog import get_zoo
from results import ResultsLayout, write_part


def top1_percent(pred, labels) -> float:
    """`models.top1`: the percentage of samples predicted right, in float64 (a float32 mean
    would round it: 7 of 12 is 58.333333333333336, not 58.33333206176758)."""
    return 100.0 * float(np.mean(np.asarray(pred) == np.asarray(labels)))


def run_predict(unit: PredictUnit, results_dir, cache: Path, strict_top1: bool = False) -> str:
    """`strict_top1`: a model more than 5 points off its reported top-1 fails here."""
    t0 = time.perf_counter()
    entry = get_zoo(unit.zoo).get(unit.model)
    dataset = load_for(entry, unit.dataset, cache)
    model = load_model(entry, cache, ResultsLayout(results_dir))
    probs = models.predict_logits(model, dataset.eval_x, entry.mean, entry.std).softmax(1)
    labels = dataset.eval_y
    p_max, pred = probs.max(1)
    predictions = pd.DataFrame({
        "model": entry.name, "dataset": dataset.name, "sample": np.arange(len(labels)),
        "label": labels.numpy(), "pred": pred.numpy(),
        "p_true": probs.gather(1, labels.view(-1, 1)).squeeze(1).numpy(), "p_max": p_max.numpy(),
    })
    top1 = top1_percent(pred, labels)
    # docs/protocol.md#evaluation: flagged in the job's log (and the model_accuracy table); strict: stop here
    warning = check_reported_top1(entry.name, top1, entry.top1_reported,
                                  strict=strict_top1)
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    weights = resolve_weights(entry, cache)
    row = {
        "key": unit.key, "model": entry.name, "zoo": unit.zoo, "family": entry.family,
        "arch": entry.arch, "params_m": models.count_params_m(model),
        "source": str(weights) if weights else "hub", "dataset": dataset.name,
        "num_classes": dataset.num_classes,
        "top1": top1,
        "top1_reported": entry.top1_reported, "n_eval": len(labels),
        "seconds": time.perf_counter() - t0, **models_columns(entry, dataset.preprocessing),
    }
    superseded = unit.superseded_keys(results_dir)
    # predictions first: a `models` row is the mark that the unit is complete
    write_part(results_dir, "predictions", predictions, unit.key)
    write_part(results_dir, "models", pd.DataFrame([row]), unit.key)
    for key in superseded:       # the model's earlier predictions (its catalog row edited)
        PREDICT.set_aside(results_dir, key)
    return "ok"

