"""The stats unit: complementary knowledge of many pairs at once, from cached predictions only."""
from pathlib import Path

import numpy as np

from benchmark import data
from benchmark.measures.stats import ClassFlips, pair_statistics
from benchmark.units.unit import StatsUnit
from results import predict_keys, predictions_matrix, write_part
from results.superseded import drop_in_parts


def write_class_flips(results_dir, class_flips: ClassFlips, part: str) -> None:
    """The class_flips rows as parts `<part>.<i>`, one DataFrame at a time."""
    for i, frame in enumerate(class_flips.frames()):
        write_part(results_dir, "class_flips", frame, f"{part}.{i:04d}")


def run_stats(unit: StatsUnit, results_dir, cache: Path) -> str:
    pairs = unit.pairs
    names = sorted({name for pair in pairs for name in pair})
    index = {name: i for i, name in enumerate(names)}
    labels, preds, p_max = predictions_matrix(results_dir, unit.dataset, names)
    num_classes = data.num_classes_of(unit.dataset)     # without decoding any image
    pair_stats, class_flips = pair_statistics(
        preds, p_max, labels, num_classes,
        teachers=np.array([index[t] for t, _ in pairs]),
        students=np.array([index[s] for _, s in pairs]),
        models=names, dataset=unit.dataset, compat=unit.compat or None,
        model_keys=predict_keys(results_dir, unit.dataset, names))
    # the pairs' earlier statistics (from predictions since replaced) are dropped from other
    # parts, each table's after its new rows are in place: killed before the mark, the unit
    # reruns; after it, an earlier pair_stats row left either loses to the new one or makes
    # the pair rerun
    pair_keys = {"teacher": [t for t, _ in pairs], "student": [s for _, s in pairs],
                 "dataset": [unit.dataset] * len(pairs)}
    write_class_flips(results_dir, class_flips, unit.key)
    drop_in_parts(results_dir, "class_flips", pair_keys, unit.key)
    write_part(results_dir, "pair_stats", pair_stats, unit.key)   # the mark of completion
    drop_in_parts(results_dir, "pair_stats", {**pair_keys, "compat": [unit.compat] * len(pairs)},
                  unit.key)
    return "ok"
