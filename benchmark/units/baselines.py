"""Baselines without training: the random-init flip baseline (docs/definitions.md#complementary-knowledge).

A randomly initialised network (timm `pretrained=False`, the official flip study's `Random
Baseline`) holds almost no complementary knowledge: the paper quotes about 0.03% for a random
ResNet50 on ImageNet against 2-25% for every pretrained pair. `random_init_baseline` records, in a
results folder, the eval predictions of each listed model's architecture randomly initialised
(model name `<model>@random`, `models.source` = `random-init:seed=<seed>`) and the pair
statistics of every (random -> trained) and (trained -> random) pair, in the ordinary tables.
Analysis that must not mix them with the zoo's pairs filters those names (they are never
written unless this function is called). The other training-free baseline, the confidence
ensemble oracle, is `pair_stats.ensemble_acc` for every pair.
"""
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark import data, models
from benchmark.data.feeding import load_for, models_columns
from benchmark.models.loading import random_init_model
from benchmark.measures.stats import pair_statistics
from benchmark.units.predict import run_predict, top1_percent
from benchmark.units.stats import write_class_flips
from pairs.catalog import get_zoo, preprocessing_fields
from pairs.keys import unit_key
from benchmark.units.unit import PredictUnit, not_done
from results import predict_keys, predictions_matrix, write_part

RANDOM_SUFFIX = "@random"


def random_init_baseline(zoo_name: str, results_dir, cache: Path, names: list[str] | None = None,
                         seed: int = 0, compat: str | None = None) -> pd.DataFrame:
    """Predict each model trained (if not yet recorded) and randomly initialised, then write
    pair_stats / class_flips of the random-vs-trained pairs; returns those pair_stats rows."""
    zoo = get_zoo(zoo_name)
    entries = [zoo.get(n) for n in (names or [m.name for m in zoo.models])]
    for unit in not_done([PredictUnit.of(zoo, entry) for entry in entries], results_dir):
        run_predict(unit, results_dir, cache)
    for entry in entries:
        _predict_random(entry, zoo.name, load_for(entry, zoo.dataset, cache), seed, results_dir)
    trained = [e.name for e in entries]
    random = [n + RANDOM_SUFFIX for n in trained]
    everything = trained + random
    labels, preds, p_max = predictions_matrix(results_dir, zoo.dataset, everything)
    n = len(trained)
    teachers = np.r_[np.repeat(np.arange(n, 2 * n), n), np.tile(np.arange(n), n)]
    students = np.r_[np.tile(np.arange(n), n), np.repeat(np.arange(n, 2 * n), n)]
    stats, class_flips = pair_statistics(
        preds, p_max, labels, data.num_classes_of(zoo.dataset), teachers, students,
        models=everything, dataset=zoo.dataset, compat=compat,
        model_keys=predict_keys(results_dir, zoo.dataset, everything))
    part = unit_key("random-baseline", models=everything, dataset=zoo.dataset, seed=seed,
                    compat=compat or "")
    write_class_flips(results_dir, class_flips, part)
    write_part(results_dir, "pair_stats", stats, part)
    return stats


def _predict_random(entry, zoo_name, dataset, seed, results_dir):
    t0 = time.perf_counter()
    model = random_init_model(entry, seed)
    probs = models.predict_logits(model, dataset.eval_x, entry.mean, entry.std).softmax(1)
    labels = dataset.eval_y
    p_max, pred = probs.max(1)
    name = entry.name + RANDOM_SUFFIX
    key = unit_key("predict-random", model=entry.fingerprint(), dataset=dataset.name, seed=seed,
                   **preprocessing_fields(entry, dataset.name))
    write_part(results_dir, "predictions", pd.DataFrame({
        "model": name, "dataset": dataset.name, "sample": np.arange(len(labels)),
        "label": labels.numpy(), "pred": pred.numpy(),
        "p_true": probs.gather(1, labels.view(-1, 1)).squeeze(1).numpy(),
        "p_max": p_max.numpy()}), key)
    write_part(results_dir, "models", pd.DataFrame([{
        "key": key, "model": name, "zoo": zoo_name, "family": entry.family, "arch": entry.arch,
        "params_m": models.count_params_m(model), "source": f"random-init:seed={seed}",
        "dataset": dataset.name, "num_classes": dataset.num_classes,
        "top1": top1_percent(pred, labels), "top1_reported": None,
        "n_eval": len(labels), "seconds": time.perf_counter() - t0,
        **models_columns(entry, dataset.preprocessing)}]), key)
