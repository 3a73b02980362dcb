"""All predictors of many models and pairs: one streaming pass over the models, then matrix
products over pairs.

The model pass reads each model's arrays once (they may be memory-mapped or generated lazily)
and keeps a compact summary: its scores (TMI, LogME, H-score, LEEP, NCE, top-1), per-sample LEEP
and NCE terms and correctness, and what CKA needs (a packed centred Gram matrix of the first
`cka_samples` samples, or those centred features themselves). Models run on `threads` worker
threads with one BLAS thread each, and the pair stage's products use one BLAS thread too: on a
busy 2-core machine two OpenBLAS threads made the CKA product 40x slower (14 s against 0.3 s for
40 models), one thread per model is never slower. The pair stage is then vectorised:

- cka: linear CKA on the first `cka_samples` samples. Gram route: <Kt, Ks> for every pair from
  one product of the packed Gram matrices [M, n(n+1)/2]; feature route (cheaper when feature
  dimensions are small next to n): ||Xs^T Xt||_F^2 per unordered pair. Both exact, the cheaper
  (counted in multiply-adds) is taken.
- kappa: Cohen's kappa of correctness, from `benchmark.measures.stats.class_flip_counts` over one class
  (the flips rho_pos, rho_neg of the pair on this split).
- leep_err, nce_err: the teacher's per-sample LEEP / NCE terms (its transferability to the
  split's labels) averaged over the samples the student gets wrong: one [M, N] x [N, M] product.
"""
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from threadpoolctl import threadpool_limits

from benchmark.predictors import scores
from benchmark.measures.stats import class_flip_counts
from results.schema import TABLES

CKA_SAMPLES = 1024
_GRAM_BYTES = 4 * 2**30      # the most memory packed Gram matrices may take (else features)


@dataclass(frozen=True)
class PredictorOptions:
    tmi_k: int = scores.TMI_K
    tmi_norm: str = scores.TMI_NORM
    tmi_min_dist: float = scores.TMI_MIN_DIST
    cka_samples: int | None = CKA_SAMPLES      # None: every sample of the split
    cka_route: str = "auto"                    # auto, gram or features
    threads: int | None = None                 # default: min(2, cores)

    def key_fields(self) -> dict:
        """What changes the numbers (threads do not)."""
        return {"tmi_k": self.tmi_k, "tmi_norm": self.tmi_norm,
                "tmi_min_dist": self.tmi_min_dist, "cka_samples": self.cka_samples}


@dataclass
class PredictorResult:
    model_predictors: pd.DataFrame
    pair_predictors: pd.DataFrame
    correct: np.ndarray                  # bool [M, N]: each model right on each sample
    seconds: dict = field(default_factory=dict)


def _cka_route(dims, n, num_pairs, route):
    if route in ("gram", "features"):
        return route
    if route != "auto":
        raise ValueError(f"cka_route must be auto, gram or features, got {route!r}")
    dims = np.asarray(dims, np.float64)
    packed = n * (n + 1) / 2
    gram_cost = (n * n * dims).sum() + len(dims) ** 2 * packed
    feature_cost = num_pairs * n * float(np.mean(dims)) ** 2
    fits = len(dims) * packed * 4 <= _GRAM_BYTES
    return "gram" if fits and gram_cost < feature_cost else "features"


def _model_pass(features, logits, labels, slices, counts, cka_n, route, options):
    """One model's summary (see the module docstring)."""
    f = np.asarray(features, np.float32)
    n = len(f)
    mean = f.mean(0, dtype=np.float64)
    fc = f - mean.astype(np.float32)
    scatter = (fc.T @ fc).astype(np.float64)
    del fc
    sums = scores.class_sums(f, slices).astype(np.float64)
    logme, hscore = scores.logme_hscore_from_moments(scatter, mean, sums.T, counts, n)
    leep_i, nce_i, correct = scores.leep_nce_terms(logits, labels, slices)
    summary = {
        "dim": f.shape[1], "top1": 100.0 * correct.mean(),
        "tmi": scores.tmi(f, labels, k=options.tmi_k, norm=options.tmi_norm,
                          min_dist=options.tmi_min_dist, slices=slices),
        "logme": logme, "hscore": hscore,
        "leep": float(leep_i.mean()), "nce": float(nce_i.mean()),
        "leep_i": leep_i.astype(np.float32), "nce_i": nce_i.astype(np.float32),
        "correct": correct,
    }
    sub = f[:cka_n]
    if route == "gram":
        summary["cka_gram"] = scores.packed_gram(sub)
    else:
        sub = scores.centred(sub)
        summary["cka_x"] = sub
        summary["cka_self"] = float(np.linalg.norm((sub.T @ sub).astype(np.float64)))
    return summary


def compute_predictors(features, logits, labels, models: list[str], dataset: str,
                       split: str = "eval", teachers=None, students=None,
                       options: PredictorOptions = PredictorOptions()) -> PredictorResult:
    """The `model_predictors` and `pair_predictors` tables of `models` (results/schema.py).

    features[m] [N, D_m], logits[m] [N, C_m]: any sequences of arrays (lists, memory maps, a
    lazy sequence), read once each; labels [N]. Pairs (models[teachers[p]], models[students[p]]),
    default every ordered pair.
    """
    labels = np.asarray(labels)
    m, n = len(models), len(labels)
    if len(features) != m or len(logits) != m:
        raise ValueError(f"{len(models)} models, {len(features)} feature and {len(logits)} "
                         "logit arrays")
    if teachers is None:
        teachers, students = np.divmod(np.arange(m * m), m)
        keep = teachers != students
        teachers, students = teachers[keep], students[keep]
    teachers, students = np.asarray(teachers, np.intp), np.asarray(students, np.intp)
    slices = scores.class_slices(labels)
    counts = np.diff(slices[1])
    cka_n = n if options.cka_samples is None else min(n, options.cka_samples)
    dims = [features[i].shape[1] for i in range(m)]
    num_unordered = len(np.unique(np.minimum(teachers, students) * m
                                  + np.maximum(teachers, students)))
    route = _cka_route(dims, cka_n, num_unordered, options.cka_route)
    threads = options.threads or min(2, os.cpu_count() or 1)
    seconds = {}
    t0 = time.perf_counter()
    torch_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            summaries = _map(lambda i: _model_pass(features[i], logits[i], labels, slices,
                                                   counts, cka_n, route, options),
                             range(m), threads)
            seconds["models"] = time.perf_counter() - t0
            t1 = time.perf_counter()
            pair_table = _pair_table(summaries, teachers, students, models, route, threads)
            seconds["pairs"] = time.perf_counter() - t1
    finally:
        torch.set_num_threads(torch_threads)
    model_table = table_frame("model_predictors", {
        "model": models, "dataset": [dataset] * m, "split": [split] * m, "samples": [n] * m,
        **{k: [s[k] for s in summaries] for k in ("dim", "top1", "tmi", "logme", "hscore",
                                                  "leep", "nce")}})
    pair_table.update({"teacher": np.asarray(models, object)[teachers],
                       "student": np.asarray(models, object)[students],
                       "dataset": dataset, "split": split, "samples": n, "cka_samples": cka_n})
    correct = np.stack([s["correct"] for s in summaries])
    return PredictorResult(model_table, table_frame("pair_predictors", pair_table), correct,
                           seconds)


def _map(fn, items, threads):
    if threads <= 1:
        return [fn(i) for i in items]
    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(fn, items))


def _pair_table(summaries, teachers, students, models, route, threads) -> dict:
    m = len(summaries)
    n = len(summaries[0]["correct"]) if m else 0
    correct = np.stack([s["correct"] for s in summaries])
    # kappa: flips over one class (the whole split) through the shared flip counter
    pos, neg = class_flip_counts(correct, np.zeros(n, np.int64), 1, teachers, students)
    accuracy = correct.mean(1)
    kappa = scores.kappa_from_flips(pos[:, 0], neg[:, 0], accuracy[teachers],
                                    accuracy[students], n)
    wrong = ~correct
    leep_err = scores.masked_means(np.stack([s["leep_i"] for s in summaries]), wrong)
    nce_err = scores.masked_means(np.stack([s["nce_i"] for s in summaries]), wrong)
    return {"cka": _cka(summaries, teachers, students, route, threads), "kappa": kappa,
            "leep_err": leep_err[teachers, students], "nce_err": nce_err[teachers, students]}


def _cka(summaries, teachers, students, route, threads):
    m = len(summaries)
    if route == "gram":
        grams = np.empty((m, len(summaries[0]["cka_gram"])), np.float32)
        for i, s in enumerate(summaries):
            grams[i] = s.pop("cka_gram")
        matrix = grams @ grams.T      # one BLAS thread, as everywhere here (see the docstring)
        return np.clip(matrix[teachers, students].astype(np.float64), 0.0, 1.0)
    low, high = np.minimum(teachers, students), np.maximum(teachers, students)
    distinct, inverse = np.unique(low * m + high, return_inverse=True)
    a, b = np.divmod(distinct, m)

    def one(p):
        xa, xb = summaries[a[p]]["cka_x"], summaries[b[p]]["cka_x"]
        cross = np.linalg.norm((xb.T @ xa).astype(np.float64)) ** 2
        return cross / (summaries[a[p]]["cka_self"] * summaries[b[p]]["cka_self"])

    values = np.asarray(_map(one, range(len(distinct)), threads), np.float64)
    with np.errstate(invalid="ignore"):
        return np.clip(values, 0.0, 1.0)[inverse]


def table_frame(name: str, columns) -> pd.DataFrame:
    """A DataFrame with the table's columns in its order and types, from a dict of columns
    (scalars are repeated) or a list of row dicts."""
    schema = TABLES[name]
    if isinstance(columns, list):
        if not columns:
            return schema.empty_table().to_pandas()
        columns = {f.name: [row[f.name] for row in columns] for f in schema}
    n = max(len(v) for v in columns.values() if np.ndim(v) > 0)
    frame = {}
    for fld in schema:
        value = columns[fld.name]
        if np.ndim(value) == 0:
            value = [value] * n
        dtype = fld.type.to_pandas_dtype()
        frame[fld.name] = (np.asarray(value, dtype=object) if dtype is np.object_
                           else np.asarray(value).astype(dtype))
    return pd.DataFrame(frame)
