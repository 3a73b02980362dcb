"""Which predictor says beforehand where transfer will gain? Correlations with 95% intervals,
the best predictors for a method beside a size-only baseline, and a figure (issue 10).

Data: every pair's predictors (`sql/predictors_pairs.sql`: pair_stats, pair_predictors,
model_predictors and the models' sizes, then the `DERIVED_PREDICTORS` computed from those
columns) beside the final dist_delta of its ok single-teacher runs, averaged over seeds, one row
per (dataset, method, teacher, student). Per dataset and method, for every predictor: Spearman's
and Pearson's correlation with dist_delta over the pairs where both are known, with intervals
over pairs (`analysis.correlation`: the percentile bootstrap, `boot` seeded resamples, up to
500 pairs; a delta-method interval above). Needs only the results folder (never `benchmark`).
"""
from collections.abc import Callable

import numpy as np
import pandas as pd

from analysis.correlation import BOOT, CONFIDENCE, correlations
from analysis.plotting import figure, method_colors, no_data
from analysis.table_names import sql_text
from analysis.views import bind_views
from results import connect

# the predictor columns of predictors_pairs.sql, in the order tables list them
PAIR_STATS_PREDICTORS = ("ts_diff", "acc_t", "acc_s", "pos_flips", "neg_flips", "pos_entropy",
                         "neg_entropy", "pos_classes_top2", "pos_classes_top5",
                         "pos_classes_top20", "pos_classes_top50", "ensemble_acc")
SIZE_PREDICTORS = ("params_t", "params_s")
PAIR_PREDICTORS = ("cka", "kappa", "leep_err", "nce_err")
MODEL_SCORES = ("tmi", "logme", "hscore", "leep", "nce")
MODEL_PREDICTORS = tuple(f"{s}_{side}" for s in MODEL_SCORES for side in ("t", "s", "diff"))

# predictors computed from other columns of `predictors_pairs` (all datasets at once, each
# dataset on its own): name -> function of the table giving one value per row
DERIVED_PREDICTORS: dict[str, Callable[[pd.DataFrame], pd.Series]] = {}
SIZE_ONLY = "size_only"       # the static baseline every predictor is shown beside


def derived_predictor(name: str):
    """Register a function of the pair table as the predictor `name`."""
    def register(fn):
        DERIVED_PREDICTORS[name] = fn
        return fn
    return register


@derived_predictor(SIZE_ONLY)
def size_only(pairs: pd.DataFrame) -> pd.Series:
    """The size-only baseline: what a planner knows from the zoo's table alone, no features and
    no predictions beyond top-1. The mean of two percentile ranks over the dataset's pairs,
        size_only = (rank%(acc_t - acc_s) + rank%(params_t / params_s)) / 2,
    each rank average-tied and taken over the pairs where both are known (else nan), so
    higher = a teacher further ahead of its student in accuracy and in size. Why this form:
    static rankings of source models by size or ImageNet accuracy, larger first, rank them as
    well as LogME and its kin or better (Singh et al., ICLR 2026, arXiv 2510.06448: a list by
    size, 0.91 against LogME's 0.57; Chaves et al., arXiv 2405.20420: few scores match ImageNet
    accuracy); for a pair, what the student can still take is the teacher's lead over it, and the
    paper's gains rise with the accuracy lead (ts_diff), most clearly for plain KL. Ranks,
    because Spearman reads only ranks: the two leads count equally on the scale the correlation
    sees, with no weight fitted to dist_delta, so the baseline's correlation is not in-sample
    (unlike a regression on the same columns)."""
    leads = pd.DataFrame({"accuracy": pairs["ts_diff"],
                          "size": pairs["params_t"] / pairs["params_s"]})
    known = (leads.notna().all(axis=1) & (pairs["params_t"] > 0) & (pairs["params_s"] > 0))
    by_dataset = leads[known].groupby(pairs.loc[known, "dataset"])
    # half-integer ranks summed before the one division: equal sums stay exactly equal (ties)
    total = by_dataset.rank().sum(axis=1) / (2 * by_dataset["size"].transform("count"))
    return total.reindex(pairs.index)


PREDICTORS = (tuple(DERIVED_PREDICTORS) + PAIR_STATS_PREDICTORS + SIZE_PREDICTORS
              + PAIR_PREDICTORS + MODEL_PREDICTORS)

_RUNS_SQL = """
SELECT dataset, method, teacher, student, avg(dist_delta) AS dist_delta, count(*) AS runs
FROM single_runs
WHERE status = 'ok' AND dist_delta IS NOT NULL
GROUP BY ALL
"""


def pair_predictor_table(results_dir=None, con=None) -> pd.DataFrame:
    """`predictors_pairs.sql`: one row per (dataset, teacher, student) with every predictor,
    the derived ones included."""
    own = con is None
    con = connect(results_dir) if own else con
    try:
        table = con.execute(sql_text("predictors_pairs")).df()
    finally:
        if own:
            con.close()
    return table.assign(**{name: fn(table) for name, fn in DERIVED_PREDICTORS.items()})


def predictor_runs(results_dir=None, con=None) -> pd.DataFrame:
    """Every pair with a transfer result: dist_delta (mean over seeds) and every predictor."""
    own = con is None
    con = connect(results_dir) if own else con
    try:
        bind_views(con)
        runs = con.execute(_RUNS_SQL).df()
        pairs = pair_predictor_table(con=con)
    finally:
        if own:
            con.close()
    return runs.merge(pairs, on=["dataset", "teacher", "student"], how="left")


def correlation_table(data: pd.DataFrame, boot: int = BOOT, confidence: float = CONFIDENCE,
                      seed: int = 0) -> pd.DataFrame:
    """Per dataset, method and predictor: pairs, Spearman and Pearson with intervals, from
    `predictor_runs` rows. Predictors with no value at all are left out."""
    rows = []
    rng = np.random.default_rng(seed)
    for (dataset, method), group in data.groupby(["dataset", "method"], sort=True):
        split = group["split"].dropna().mode()
        for predictor in PREDICTORS:
            if predictor not in group or group[predictor].isna().all():
                continue
            known = group[[predictor, "dist_delta"]].dropna()
            rows.append({"dataset": dataset, "split": split.iloc[0] if len(split) else None,
                         "method": method, "predictor": predictor,
                         **correlations(known[predictor], known["dist_delta"], boot, confidence,
                                        rng)})
    columns = ["dataset", "split", "method", "predictor", "pairs", "spearman", "spearman_lo",
               "spearman_hi", "pearson", "pearson_lo", "pearson_hi"]
    return pd.DataFrame(rows, columns=columns)


def best_predictors(table: pd.DataFrame, data: pd.DataFrame, method: str = "kl_dp",
                    dataset: str | None = None, quantile: float = 0.25) -> pd.DataFrame:
    """Which predictor best ranks pairs for `method`: its predictors by |Spearman|, each with
    the direction that ranks gains first, whether the interval excludes 0, and what a planner
    keeping the top `quantile` of pairs by it would get: the share of those pairs with
    dist_delta > 0 (beside the share over all pairs) and their mean dist_delta. The direction
    comes from the same data, so the top-quantile columns are in-sample. `vs_size_only`:
    |Spearman| minus the size-only baseline's (`size_only`) on the same dataset, positive where
    the predictor ranks pairs better than sizes and the accuracy gap alone."""
    rows = table[table["method"] == method]
    if dataset is not None:
        rows = rows[rows["dataset"] == dataset]
    baseline = rows[rows["predictor"] == SIZE_ONLY].set_index("dataset")["spearman"].abs()
    out = []
    for r in rows.itertuples(index=False):
        group = data[(data["dataset"] == r.dataset) & (data["method"] == method)]
        known = group[[r.predictor, "dist_delta"]].dropna()
        sign = 1.0 if not np.isfinite(r.spearman) or r.spearman >= 0 else -1.0
        keep = max(1, int(round(quantile * len(known))))
        top = known.iloc[np.argsort(-sign * known[r.predictor].to_numpy(), kind="stable")[:keep]]
        out.append({
            "dataset": r.dataset, "predictor": r.predictor,
            "direction": "higher" if sign > 0 else "lower", "pairs": r.pairs,
            "spearman": r.spearman, "spearman_ci": _interval(r.spearman_lo, r.spearman_hi),
            "pearson": r.pearson, "pearson_ci": _interval(r.pearson_lo, r.pearson_hi),
            "ci_excludes_0": bool(r.spearman_lo > 0 or r.spearman_hi < 0),
            "vs_size_only": abs(r.spearman) - baseline.get(r.dataset, np.nan),
            f"top{int(quantile * 100)}_success": 100 * (top["dist_delta"] > 0).mean(),
            f"top{int(quantile * 100)}_delta": top["dist_delta"].mean(),
            "all_success": 100 * (known["dist_delta"] > 0).mean(),
        })
    result = pd.DataFrame(out)
    if result.empty:
        return result
    result = result.assign(_abs=result["spearman"].abs()).sort_values(
        ["dataset", "_abs"], ascending=[True, False], na_position="last").drop(columns="_abs")
    return result.reset_index(drop=True)


def _interval(lo, hi) -> str:
    return "" if not (np.isfinite(lo) and np.isfinite(hi)) else f"[{lo:+.2f}, {hi:+.2f}]"


def fig_predictor_correlations(data):
    """Spearman correlation of each predictor with the transfer delta, per method, with 95%
    intervals over pairs (predictors sorted by |Spearman| for the first method); the size-only
    baseline's row is shaded and its |Spearman| for the first method marked on both sides of 0,
    so every predictor reads beside it."""
    runs = predictor_runs(data.results_dir)
    runs = runs[runs["dataset"] == data.dataset] if data.dataset is not None else runs.iloc[:0]
    table = correlation_table(runs, boot=1000) if len(runs) else pd.DataFrame()
    if table.empty or table["spearman"].isna().all():
        fig, (ax,) = figure()
        no_data(ax, "transfer runs with predictors")
        return fig
    table = table[table.groupby("predictor")["spearman"].transform("count") > 0]
    methods = sorted(table["method"].unique())
    first = table[table["method"] == ("kl_dp" if "kl_dp" in methods else methods[0])]
    order = first.assign(a=first["spearman"].abs()).sort_values("a", na_position="first")
    predictors = list(order["predictor"])
    fig, (ax,) = figure(width=8.5, height=max(4.0, 0.24 * len(predictors) + 1.5))
    colors = method_colors(methods)
    y = np.arange(len(predictors))
    step = 0.8 / max(len(methods), 1)
    for j, method in enumerate(methods):
        rows = table[table["method"] == method].set_index("predictor").reindex(predictors)
        pos = y - 0.4 + (j + 0.5) * step
        rho = rows["spearman"].to_numpy(float)
        err = np.abs(np.stack([rho - rows["spearman_lo"].to_numpy(float),
                               rows["spearman_hi"].to_numpy(float) - rho]))
        ax.errorbar(rho, pos, xerr=np.nan_to_num(err), fmt="o", color=colors[method],
                    label=f"{method} ({int(rows['pairs'].max())} pairs)", markersize=4,
                    capsize=2, linewidth=1)
    ax.axvline(0, color="0.5", linewidth=0.8)
    if SIZE_ONLY in predictors:
        row = predictors.index(SIZE_ONLY)
        ax.axhspan(row - 0.5, row + 0.5, color="0.9", zorder=0)
    base = abs(first.set_index("predictor")["spearman"].get(SIZE_ONLY, np.nan))
    if np.isfinite(base):
        for x in (-base, base):
            ax.axvline(x, color="0.4", linestyle=":", linewidth=1,
                       label="size-only baseline |rho|" if x < 0 else None)
    ax.set_yticks(y, [p.replace("_", " ") for p in predictors], fontsize=8)
    ax.set_xlim(-1.05, 1.05)
    ax.set_xlabel("Spearman correlation with the transfer delta (95% interval over pairs)")
    ax.set_title(f"Which predictor ranks pairs by transfer gain? ({data.dataset})")
    ax.legend(fontsize=8, loc="lower right")
    return fig
