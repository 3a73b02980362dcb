"""`ktbench similarity`: class-name embeddings and the similarity of every pair's top classes.

Per dataset of the results folder's `pair_stats`: the classes' readable names
(`benchmark.data.class_names`), embedded once by the text encoder (`class_embeddings`), then
for every pair statistics row (each compat mode) the top-p% class sets from `class_flips` and
their similarity (`pair_similarity`). One part per (dataset, encoder, weights), named by a key
over them, so a rerun over more pairs replaces it. Weights and class names are settled for
every dataset before anything is written.
"""
import time

import numpy as np
import pandas as pd

from benchmark import data
from benchmark.semantics.encoders import DEFAULT_ENCODER, embed_texts, resolve_text_weights
from benchmark.semantics.similarity import RandomSets, cosine_matrix, pair_similarity
from pairs.keys import unit_key
from results import connect, write_part
from results.errors import InputError
from results.schema import TOP_P_CLASSES

DRAWS = 1000
_PAIRS = 16384           # pairs read and scored at once


def _stats(con, dataset: str) -> pd.DataFrame:
    sizes = ", ".join(f"pos_classes_top{p}" for p in TOP_P_CLASSES)
    return con.execute(
        f"SELECT teacher, student, compat, {sizes} FROM pair_stats WHERE dataset = ? "
        "ORDER BY teacher, student, compat", [dataset]).df()


def _flips(con, dataset: str, pairs: pd.DataFrame, classes: int) -> np.ndarray:
    """[len(pairs), classes]: the positive flips per class of each (teacher, student)."""
    con.register("_wanted", pairs[["teacher", "student"]].assign(row=np.arange(len(pairs))))
    try:
        flips = con.execute(
            "SELECT w.row, f.class, f.pos FROM class_flips f JOIN _wanted w USING (teacher, student) "
            "WHERE f.dataset = ?", [dataset]).fetchnumpy()
    finally:
        con.unregister("_wanted")
    pos = np.zeros((len(pairs), classes), np.int64)
    inside = flips["class"] < classes
    pos[flips["row"][inside], flips["class"][inside]] = flips["pos"][inside]
    return pos


def run_similarity(results_dir, encoder: str = DEFAULT_ENCODER, weights=None,
                   datasets=None, draws: int = DRAWS, seed: int = 0, device: str = "cpu",
                   progress: bool = True) -> dict:
    """Embeddings and pair similarities of `datasets` (default: every dataset with pair
    statistics); returns {dataset: rows of pair_similarity written}, with "seconds"."""
    t0 = time.perf_counter()
    con = connect(results_dir)
    try:
        found = [d for (d,) in con.execute(
            "SELECT DISTINCT dataset FROM pair_stats ORDER BY dataset").fetchall()]
        datasets = list(datasets or found)
        missing = sorted(set(datasets) - set(found))
        if not datasets or missing:
            raise InputError(f"no pair statistics for {', '.join(missing) or 'any dataset'} in "
                             f"{results_dir}: launch a plan first (its stats stage)")
        source = resolve_text_weights(encoder, weights)
        names = {d: data.class_names(d) for d in datasets}
        for dataset in datasets:
            (classes,) = con.execute("SELECT max(num_classes) FROM models WHERE dataset = ?",
                                     [dataset]).fetchone()
            if classes is not None and classes != len(names[dataset]):
                raise InputError(f"dataset {dataset!r} has {classes} classes but "
                                 f"{len(names[dataset])} class names")
        label = source.describe()
        written = {}
        for dataset in datasets:
            written[dataset] = _dataset(con, results_dir, dataset, names[dataset], encoder,
                                        source, label, draws, seed, device)
            if progress:
                print(f"similarity {dataset}: {len(names[dataset])} classes, "
                      f"{written[dataset]} rows ({encoder}, {label})")
    finally:
        con.close()
    return {**written, "seconds": time.perf_counter() - t0}


def _dataset(con, results_dir, dataset, names, encoder, source, label, draws, seed,
             device) -> int:
    embeddings = embed_texts(encoder, source, names, device)
    part = unit_key("similarity", dataset=dataset, encoder=encoder, weights=label)
    write_part(results_dir, "class_embeddings", pd.DataFrame({
        "dataset": dataset, "encoder": encoder, "weights": label,
        "class": np.arange(len(names), dtype=np.int32), "name": list(names),
        "embedding": list(embeddings)}), part)
    g = cosine_matrix(embeddings)
    stats = _stats(con, dataset)
    size_columns = [f"pos_classes_top{p}" for p in TOP_P_CLASSES]
    random_sets = RandomSets(g, int(stats[size_columns].to_numpy().max(initial=0)), draws, seed)
    frames = []
    for (compat,), group in stats.groupby(["compat"], sort=True):
        for start in range(0, len(group), _PAIRS):
            rows = group.iloc[start:start + _PAIRS].reset_index(drop=True)
            keys = rows[["teacher", "student"]].assign(dataset=dataset, compat=compat,
                                                       encoder=encoder, weights=label)
            frames.append(pair_similarity(_flips(con, dataset, rows, len(names)),
                                          rows[size_columns].to_numpy(), g, keys, random_sets,
                                          compat or None))
    table = pd.concat(frames, ignore_index=True)
    write_part(results_dir, "pair_similarity", table, part)
    return len(table)
