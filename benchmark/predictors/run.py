"""Predictors of a zoo into a results folder: features units, then every score, then tables.

`run_predictors` is what `ktbench predictors` runs: it computes the features units still
missing (in this process, one model at a time), loads every model's arrays on one split,
computes `model_predictors`, `pair_predictors` (every ordered pair of the models) and
`teacher_sets`, and writes them as one part each, named by a key over the features units and
every option that changes a number.
"""
import dataclasses
import time
from pathlib import Path

import torch

from benchmark.models import microzoo
from benchmark.units.features import TRANSFER_SAMPLES, features_unit, load_split, run_features
from benchmark.units.unit import not_done
from benchmark.predictors.compute import PredictorOptions, compute_predictors
from benchmark.predictors.teachers import DRAWS, LAMBDA, teacher_set_table
from pairs.catalog import get_zoo
from pairs.keys import unit_key
from results import write_part
from results.errors import InputError


def ensure_features(zoo, names, results_dir, cache: Path, eval_samples=None,
                    transfer_samples: int = TRANSFER_SAMPLES, progress: bool = True,
                    threads: int = 1) -> list[str]:
    """Run the missing features units of `names` with `threads` torch threads (as a launcher
    task on a small machine: two threads on a busy 2-core machine measured 10-25x slower);
    returns every unit's key, in `names` order."""
    units = [features_unit(zoo, name, eval_samples, transfer_samples) for name in names]
    todo = not_done(units, results_dir)
    if todo:
        microzoo.ensure_zoo_weights(dataclasses.replace(
            zoo, models=tuple(m for m in zoo.models if m.name in {u.model for u in todo})),
            cache, progress=progress)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for i, unit in enumerate(todo, 1):
            t0 = time.perf_counter()
            run_features(unit, results_dir, cache)
            if progress:
                print(f"features {i}/{len(todo)}: {unit.model} "
                      f"({time.perf_counter() - t0:.1f} s)")
    finally:
        torch.set_num_threads(before)
    return [u.key for u in units]


def run_predictors(results_dir, cache: Path, zoo: str = "micro", models: list[str] | None = None,
                   split: str = "eval", samples: int | None = None,
                   eval_samples: int | None = None, transfer_samples: int = TRANSFER_SAMPLES,
                   options: PredictorOptions = PredictorOptions(), set_sizes=(2, 3),
                   lam: float = LAMBDA, draws: int = DRAWS, seed: int = 0,
                   progress: bool = True, torch_threads: int = 1) -> dict:
    """Features, predictors and teacher sets of `models` (default the whole zoo) on `split`;
    returns {"key", "models", "pairs", "samples", "seconds": {...}}."""
    zoo_ = get_zoo(zoo)
    names = list(models) if models else [m.name for m in zoo_.models]
    for name in names:
        zoo_.get(name)   # unknown names fail before any work
    if len(names) < 2:
        raise InputError("predictors need at least two models")
    t0 = time.perf_counter()
    keys = ensure_features(zoo_, names, results_dir, cache, eval_samples, transfer_samples,
                           progress, torch_threads)
    t_features = time.perf_counter() - t0
    arrays = load_split(results_dir, names, zoo_.dataset, split, samples, keys=keys)
    result = compute_predictors(arrays.features, arrays.logits, arrays.labels, names,
                                zoo_.dataset, split, options=options)
    t1 = time.perf_counter()
    sets = teacher_set_table(result.correct, names, zoo_.dataset, split, set_sizes, lam, draws,
                             seed)
    t_sets = time.perf_counter() - t1
    key = unit_key("predictors", features=sorted(keys), split=split, samples=arrays.samples,
                   options=options.key_fields(), set_sizes=list(set_sizes), lam=lam,
                   draws=draws, seed=seed)
    write_part(results_dir, "model_predictors", result.model_predictors, key)
    write_part(results_dir, "pair_predictors", result.pair_predictors, key)
    write_part(results_dir, "teacher_sets", sets, key)
    return {"key": key, "models": len(names), "pairs": len(result.pair_predictors),
            "samples": arrays.samples,
            "seconds": {"features": t_features, **result.seconds, "teacher_sets": t_sets}}
