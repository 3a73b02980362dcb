"""The paper's figures (docs/analysis.md#figures) from the results tables alone: `ktbench figures`.

Each figure is drawn from the SQL tables of `analysis/sql` (or a small query over the views) with
matplotlib's object API on the Agg canvas: no pyplot state, no display, no model or GPU. When the
results hold several datasets, a figure shows the one with the most transfer runs (named in its
title). A figure without data says so instead of failing.
"""
import io
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from analysis.plotting import ORACLE, figure, method_colors, no_data
from analysis.predictors import fig_predictor_correlations
from analysis.tables import run_tables, tables_read
from results.store import copy_many_parts, read_views

FORMATS = ("png", "pdf")
# what the figures read beside the paper's tables (pairs, runs per dataset, class counts, flips)
_RAW_TABLES = ("pair_stats", "transfer_runs", "models", "class_flips", "predictions")


class FigureData:
    """The tables and the few raw queries the figures need, from one snapshot of the folder
    (binding only the tables they read)."""

    def __init__(self, results_dir):
        self.results_dir = results_dir
        tables = tables_read()

        def read(con):
            # the paper's tables run many statements: their parts, if not compacted yet, once
            copy_many_parts(con, tables)
            self._read(con)
        read_views(results_dir, read, [*tables, *_RAW_TABLES])     # connect drops repeats

    def _read(self, con) -> None:
        self.tables = run_tables(self.results_dir, con=con)
        self.pairs = con.execute(
            "SELECT * FROM pair_stats QUALIFY row_number() OVER "
            "(PARTITION BY teacher, student, dataset ORDER BY compat) = 1").df()
        self.runs_per_dataset = con.execute(
            "SELECT dataset, count(*) AS n FROM transfer_runs GROUP BY dataset").df()
        self.dataset = self._main_dataset()
        self.classes = con.execute(
            "SELECT max(num_classes) FROM models WHERE dataset = ?", [self.dataset]
        ).fetchone()[0]
        self.histograms = self._histograms(con)

    def _main_dataset(self):
        if len(self.runs_per_dataset):
            return self.runs_per_dataset.sort_values(["n", "dataset"], ascending=[False, True])[
                "dataset"].iloc[0]
        if len(self.pairs):
            return self.pairs["dataset"].value_counts().index[0]
        return None

    def table(self, name: str) -> pd.DataFrame:
        df = self.tables[name]
        return df[df["dataset"] == self.dataset] if "dataset" in df.columns else df

    def main_pairs(self) -> pd.DataFrame:
        return self.pairs[self.pairs["dataset"] == self.dataset]

    def _histograms(self, con):
        """Per-class positive flips (% of the class's eval samples) for a weaker, an equal and a
        stronger teacher: the pairs with the lowest, the nearest-zero and the highest ts_diff."""
        pairs = self.main_pairs().dropna(subset=["ts_diff"])
        if pairs.empty:
            return []
        chosen = [("weaker teacher", pairs.loc[pairs["ts_diff"].idxmin()]),
                  ("equal teacher", pairs.loc[pairs["ts_diff"].abs().idxmin()]),
                  ("stronger teacher", pairs.loc[pairs["ts_diff"].idxmax()])]
        out, seen = [], set()
        for label, row in chosen:
            key = (row["teacher"], row["student"])
            if key in seen:
                continue
            seen.add(key)
            flips = con.execute(
                "SELECT f.class, f.pos, c.n FROM class_flips f LEFT JOIN ("
                "  SELECT label AS class, count(*) AS n FROM predictions"
                "  WHERE model = ? AND dataset = ? GROUP BY label) c USING (class)"
                " WHERE f.teacher = ? AND f.student = ? AND f.dataset = ? ORDER BY f.class",
                [row["student"], self.dataset, row["teacher"], row["student"], self.dataset]).df()
            out.append((label, row, flips))
        return out


def fig_complementary_knowledge(data: FigureData) -> Figure:
    """Fig. 1: rho_pos against the teacher-student accuracy difference, the minimum marked."""
    fig, (ax,) = figure()
    pairs = data.main_pairs().dropna(subset=["ts_diff", "pos_flips"])
    if pairs.empty:
        no_data(ax, "pair statistics")
        return fig
    ax.scatter(pairs["ts_diff"], pairs["pos_flips"], s=28, alpha=0.75, color="C0",
               edgecolor="black", linewidth=0.4, label="teacher-student pair")
    low = pairs.loc[pairs["pos_flips"].idxmin()]
    ax.scatter([low["ts_diff"]], [low["pos_flips"]], marker="_", s=900, linewidth=3, color="red",
               label=f"minimum ρ_pos = {low['pos_flips']:.2f}%", zorder=3)
    ax.axvline(0, color="0.6", linestyle="--", linewidth=1)
    ax.set_xlabel("Teacher − student accuracy [points]")
    ax.set_ylabel("Complementary knowledge ρ_pos [%]")
    ax.set_ylim(bottom=0)
    ax.set_title(f"Complementary knowledge across {len(pairs)} pairs ({data.dataset})")
    ax.legend(loc="upper left")
    return fig


def fig_class_histograms(data: FigureData) -> Figure:
    """Per-class complementary knowledge for a weaker, an equal and a stronger teacher."""
    n = max(1, len(data.histograms))
    fig, axes = figure(width=4.2 * n, height=4.2, ncols=n)
    if not data.histograms:
        no_data(axes[0], "per-class flips")
        return fig
    top = 0.0
    for ax, (label, row, flips) in zip(axes, data.histograms):
        if flips.empty:
            no_data(ax, "per-class flips")
            continue
        per_class = flips["n"].where(flips["n"] > 0)
        share = (100 * flips["pos"] / per_class) if per_class.notna().any() else flips["pos"]
        values = np.sort(share.fillna(0).to_numpy())[::-1]
        ax.bar(np.arange(len(values)), values, width=0.9, color="C1", edgecolor="black",
               linewidth=0.3)
        top = max(top, float(values.max()) if len(values) else 0.0)
        ax.set_title(f"{label}: {row['teacher']} → {row['student']}\n"
                     f"ts_diff {row['ts_diff']:+.1f}, ρ_pos {row['pos_flips']:.1f}%", fontsize=10)
        ax.set_xlabel("Classes, by complementary knowledge")
        unit = "% of class samples" if per_class.notna().any() else "positive flips"
        ax.set_ylabel(f"Per-class complementary knowledge [{unit}]", fontsize=9)
    for ax in axes:
        if top > 0:
            ax.set_ylim(0, top * 1.08)
    return fig


def fig_entropy(data: FigureData) -> Figure:
    """Entropy of the per-class positive flips against rho_pos, with the uniform spread's value."""
    fig, (ax,) = figure()
    pairs = data.main_pairs().dropna(subset=["pos_entropy", "pos_flips"])
    if pairs.empty:
        no_data(ax, "pair statistics")
        return fig
    ax.scatter(pairs["pos_flips"], pairs["pos_entropy"], s=28, alpha=0.75, color="C2",
               edgecolor="black", linewidth=0.4)
    if data.classes:
        ax.axhline(np.log(data.classes), color="red", linestyle="--", linewidth=1.2,
                   label=f"uniform over {data.classes} classes (ln {data.classes} = "
                         f"{np.log(data.classes):.2f})")
        ax.legend(loc="lower right")
    ax.set_xlabel("Complementary knowledge ρ_pos [%]")
    ax.set_ylabel("Entropy of per-class positive flips [nats]")
    ax.set_title(f"How concentrated is complementary knowledge? ({data.dataset})")
    return fig


def fig_success_rate(data: FigureData) -> Figure:
    """Success rate per method: per student the share of teachers that improve it, as boxes."""
    fig, (ax,) = figure()
    per_student = data.table("success_rate_per_student").dropna(subset=["success"])
    if per_student.empty:
        no_data(ax, "transfer runs")
        return fig
    order = (per_student.groupby("method")["success"].median()
             .sort_values(ascending=False, kind="stable").index.tolist())
    values = [per_student.loc[per_student["method"] == m, "success"].to_numpy() for m in order]
    colors = method_colors(order)
    boxes = ax.boxplot(values, tick_labels=order, patch_artist=True, widths=0.55,
                       medianprops=dict(color="black", linewidth=2))
    for patch, method in zip(boxes["boxes"], order):
        patch.set_facecolor(colors[method])
        patch.set_alpha(0.75)
    for i, v in enumerate(values, start=1):
        ax.scatter(np.full(len(v), i), v, s=12, color="black", alpha=0.5, zorder=3)
    ax.set_ylabel("Knowledge transfer success rate [%]")
    ax.set_ylim(-5, 105)
    ax.set_title(f"Share of teachers that improve the student ({data.dataset})")
    ax.tick_params(axis="x", labelrotation=20)
    return fig


def fig_delta_by_ts_diff(data: FigureData) -> Figure:
    """dist_delta against ts_diff: 8 equal-width bins, mean of each bin's upper quartile."""
    fig, (ax,) = figure()
    curve = data.table("delta_by_ts_diff_curve").dropna(subset=["upper_quartile_mean"])
    if curve.empty:
        no_data(ax, "transfer runs")
        return fig
    colors = method_colors(curve["method"])
    for method, rows in curve.groupby("method", sort=True):
        rows = rows.sort_values("ts_diff_mid")
        oracle = method == ORACLE
        ax.plot(rows["ts_diff_mid"], rows["upper_quartile_mean"], "--s" if oracle else "-o",
                color=colors[method], label=method, linewidth=2, markersize=6,
                alpha=0.8 if oracle else 1.0)
    ax.axhline(0, color="0.6", linestyle="--", linewidth=1)
    ax.axvline(0, color="0.6", linestyle="--", linewidth=1)
    ax.set_xlabel("Teacher − student accuracy [points] (bin centre)")
    ax.set_ylabel("Transfer delta, mean of upper quartile [points]")
    ax.set_title(f"Transfer delta by performance difference ({data.dataset})")
    ax.legend(fontsize=9)
    return fig


def fig_transfer_rate_top_classes(data: FigureData) -> Figure:
    """The authors' transfer rate TR_p against the top-X% classes (`transfer_rate_top{p}`:
    100 - p + 100 x gains in those classes / complementary knowledge left)."""
    fig, (ax,) = figure()
    rates = data.table("transfer_rate_by_top_classes")
    columns = [f"transfer_rate_top{p}" for p in (2, 5, 20, 50, 100)]
    rates = rates[rates["family"] == "all"].dropna(subset=columns, how="all")
    if rates.empty:
        no_data(ax, "transfer rates (transfer_rate_top{p})")
        return fig
    colors = method_colors(rates["method"])
    x = np.arange(len(columns))
    for _, row in rates.sort_values("method").iterrows():
        ax.plot(x, row[columns].to_numpy(dtype=float), "-o", color=colors[row["method"]],
                label=f"{row['method']} ({row['runs']} runs)", linewidth=2)
    ax.set_xticks(x, [f"Top-{c.removeprefix('transfer_rate_top')}%" for c in columns])
    ax.set_xlabel("Classes holding the top-X% of the complementary knowledge")
    ax.set_ylabel("Transfer rate TR_p = 100 − p + 100·gains in them / CK left [%]")
    ax.set_title(f"Transfer rate by top-X% classes ({data.dataset})")
    ax.legend(fontsize=9)
    return fig


def fig_transfer_rate_student_params(data: FigureData) -> Figure:
    """The authors' transfer rate against student size (log-log; `transfer_rate_top100`: 100 x
    gains in the classes with complementary knowledge / complementary knowledge left),
    interquartile band per method."""
    fig, (ax,) = figure()
    rate, q25, q75 = (f"{q}transfer_rate_top100" for q in ("", "q25_", "q75_"))
    rates = data.table("transfer_rate_by_student_params").dropna(subset=["params_m", rate])
    rates = rates[(rates["params_m"] > 0) & (rates[rate] > 0)]
    if rates.empty:
        no_data(ax, "transfer rates (transfer_rate_top100)")
        return fig
    colors = method_colors(rates["method"])
    for method, rows in rates.groupby("method", sort=True):
        rows = rows.groupby("params_m", as_index=False)[[rate, q25, q75]].mean()
        ax.plot(rows["params_m"], rows[rate], "-o", color=colors[method], label=method,
                linewidth=2)
        ax.fill_between(rows["params_m"], rows[q25].clip(lower=1e-3),
                        rows[q75].clip(lower=1e-3), color=colors[method], alpha=0.12)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("Student parameters [M]")
    ax.set_ylabel("Transfer rate TR = 100·gains / CK left [%]")
    ax.set_title(f"Transfer rate by student size ({data.dataset})")
    ax.legend(fontsize=9)
    return fig


def fig_correlations(data: FigureData) -> Figure:
    """Pearson correlation of dist_delta with teacher and student properties, per method."""
    fig, (ax,) = figure(width=9)
    corr = data.table("correlations")
    props = ["teacher_params", "teacher_acc", "teacher_family",
             "student_params", "student_acc", "student_family"]
    if corr.empty:
        no_data(ax, "transfer runs")
        return fig
    corr = corr.sort_values("method")
    x = np.arange(len(corr))
    width = 0.8 / len(props)
    hatches = ["", "//", "xx", "", "//", "xx"]
    for i, prop in enumerate(props):
        values = corr[prop].astype(float).fillna(0).to_numpy()
        ax.bar(x - 0.4 + (i + 0.5) * width, values, width, label=prop.replace("_", " "),
               color="0.82" if prop.startswith("teacher") else "C0", hatch=hatches[i],
               edgecolor="black", linewidth=0.5)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(x, corr["method"], rotation=15)
    ax.set_ylim(-1.05, 1.05)
    ax.set_ylabel("Pearson correlation with the transfer delta")
    ax.set_title(f"What predicts transfer? ({data.dataset}; family: transformer 0, cnn 1, mlp 2)")
    ax.legend(fontsize=8, ncols=2)
    return fig


def fig_class_similarity(data: FigureData) -> Figure:
    """How related the classes holding the top-X% of a pair's complementary knowledge are: the
    uplift of their names' mean (and max) pairwise cosine similarity over random class sets of
    the same size, mean over pairs with its 95% bootstrap interval (the authors' figure)."""
    fig, (ax,) = figure()
    sims = data.table("class_similarity")
    if sims.empty:
        no_data(ax, "class-name similarities (run ktbench similarity)")
        return fig
    # one encoder and weights (the most pairs), default definitions where computed
    first = sims.assign(_default=sims["compat"] != "").sort_values(
        ["_default", "pairs"], ascending=[True, False]).iloc[0]
    sims = _rows_like(sims, first, ("compat", "encoder", "weights")).sort_values("p")
    x = np.arange(len(sims))
    for offset, column, label, color in ((-0.2, "uplift_pct", "mean similarity", "C0"),
                                         (0.2, "max_uplift_pct", "max similarity", "C1")):
        values = sims[column].astype(float)
        errors = np.vstack([values - sims[f"{column}_lo"], sims[f"{column}_hi"] - values])
        ax.bar(x + offset, values, 0.4, yerr=np.nan_to_num(errors.astype(float)), capsize=4,
               color=color, alpha=0.85, edgecolor="black", label=label)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(x, [f"Top-{p}%\n({n} pairs)" for p, n in zip(sims["p"], sims["pairs"])])
    ax.set_xlabel("Classes holding the top-X% of the positive flips")
    baseline = "the authors' 0.61" if first["compat"] else "random class sets of the same size"
    ax.set_ylabel(f"Uplift over {baseline} [%]")
    note = " (plumbing only)" if first["weights"] == "random-init" else ""
    ax.set_title(f"Class-name similarity of the top classes ({data.dataset})\n"
                 f"{first['encoder']}, weights {first['weights']}{note}", fontsize=11)
    ax.legend(fontsize=9)
    return fig


def _rows_like(df: pd.DataFrame, row, columns) -> pd.DataFrame:
    for column in columns:
        df = df[df[column] == row[column]]
    return df


def fig_methods_vs_controls(data: FigureData) -> Figure:
    """Mean transfer delta of each method beside the control arms and the ensemble oracle, with
    its 95% bootstrap interval over pairs (none with fewer than two pairs)."""
    fig, (ax,) = figure()
    arms = data.table("methods_vs_controls").dropna(subset=["mean_delta"])
    if arms.empty:
        no_data(ax, "transfer runs")
        return fig
    shade = {"method": "C0", "control": "C7", "oracle": "black"}
    x = np.arange(len(arms))
    errors = np.vstack([arms["mean_delta"] - arms["mean_delta_lo"],
                        arms["mean_delta_hi"] - arms["mean_delta"]]).astype(float)
    ax.bar(x, arms["mean_delta"], yerr=np.nan_to_num(errors), capsize=4,
           color=[shade.get(k, "C0") for k in arms["kind"]], alpha=0.8, edgecolor="black")
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(x, [f"{m}\n({k}, {n} pairs)" for m, k, n in
                      zip(arms["method"], arms["kind"], arms["pairs"])], fontsize=9)
    ax.set_ylabel("Mean transfer delta, 95% interval over pairs [points]")
    ax.set_title(f"Methods beside controls and the ensemble oracle ({data.dataset})")
    return fig


def fig_knowledge_gain_loss(data: FigureData) -> Figure:
    """Knowledge gain against knowledge loss per student family (mean over students, 95%
    intervals): KL beside KL + DP where the run has them, else every method."""
    fig, (ax,) = figure(width=9)
    table = data.table("knowledge_gain_loss")
    methods = [m for m in ("kl", "kl_dp") if m in set(table["method"])] or sorted(
        table["method"].unique())
    table = table[table["method"].isin(methods)]
    if table.empty:
        no_data(ax, "knowledge gain and loss")
        return fig
    families = sorted(f for f in table["family"].unique() if f != "all") + ["all"]
    colors = method_colors(methods)
    bars = [(m, side) for m in methods for side in ("gain", "loss")]
    width = 0.8 / len(bars)
    x = np.arange(len(families))
    for i, (method, side) in enumerate(bars):
        rows = table[table["method"] == method].set_index("family").reindex(families)
        values = rows[f"mean_{side}"].to_numpy(float)
        errors = np.abs(np.vstack([values - rows[f"mean_{side}_lo"].to_numpy(float),
                                   rows[f"mean_{side}_hi"].to_numpy(float) - values]))
        ax.bar(x - 0.4 + (i + 0.5) * width, values, width, yerr=np.nan_to_num(errors), capsize=3,
               color=colors[method], hatch="" if side == "gain" else "//", edgecolor="black",
               linewidth=0.5, label=f"{method} {side}")
    ax.set_xticks(x, families)
    ax.set_xlabel("Student family")
    ax.set_ylabel("Mean over students [% of eval samples]")
    ax.set_title(f"Knowledge gain (plain) and loss (hatched) ({data.dataset})")
    ax.legend(fontsize=9, ncols=2)
    return fig


def fig_multi_teacher_epochs(data: FigureData) -> Figure:
    """Multi-teacher transfer epoch by epoch: knowledge gain, knowledge loss and delta against
    the initial student, one line per run (the first six), a dotted line where the next
    teacher of a sequence takes over."""
    fig, axes = figure(width=13, height=4.2, ncols=3)
    epochs = data.table("multi_teacher_epochs")
    if epochs.empty:
        no_data(axes[0], "multi-teacher runs")
        return fig
    runs = epochs.groupby(["student", "mode", "teachers", "method"], sort=True)
    for (student, mode, teachers, method), rows in list(runs)[:6]:
        label = f"{student} ← {teachers} ({mode}, {method})"
        for ax, column in zip(axes, ("knowledge_gain", "knowledge_loss", "dist_delta")):
            line, = ax.plot(rows["epoch"], rows[column], "-o", markersize=3, label=label)
            for epoch in rows["epoch"][rows["step"].diff() > 0]:
                ax.axvline(epoch - 0.5, color=line.get_color(), linestyle=":", linewidth=1)
    titles = ("Knowledge gain [%]", "Knowledge loss [%]", "Transfer delta [points]")
    for ax, title in zip(axes, titles):
        ax.set_xlabel("Epoch")
        ax.set_title(title)
    axes[0].legend(fontsize=7)
    return fig


def fig_matched_students(data: FigureData) -> Figure:
    """Students that differ in one property (weights, size, family), each beside its nearest
    match: the mean over pairs of student b's mean transfer delta minus a's, with its 95%
    interval over pairs, for KL + DP where the run has it."""
    fig, (ax,) = figure()
    groups = data.table("matched_students_by_property")
    method = "kl_dp" if "kl_dp" in set(groups["method"]) else (
        sorted(groups["method"].unique())[0] if len(groups) else None)
    groups = groups[groups["method"] == method]
    if groups.empty:
        no_data(ax, "matched students")
        return fig
    y = np.arange(len(groups))
    shade = {"weights": "C0", "size": "C1", "family": "C2"}
    values = groups["mean_diff"].to_numpy(float)
    errors = np.abs(np.vstack([values - groups["mean_diff_lo"].to_numpy(float),
                               groups["mean_diff_hi"].to_numpy(float) - values]))
    ax.barh(y, values, xerr=np.nan_to_num(errors), capsize=3, edgecolor="black",
            color=[shade[p] for p in groups["property"]])
    ax.axvline(0, color="black", linewidth=0.8)
    labels = {"weights": "{a}: more accurate weights", "size": "{a}: larger",
              "family": "{b} − {a}"}
    ax.set_yticks(y, [f"{labels[p].format(a=a, b=b)} ({n} pairs)" for p, a, b, n in
                      zip(groups["property"], groups["family_a"], groups["family_b"],
                          groups["pairs"])], fontsize=8)
    ax.set_xlabel("Mean transfer delta, student b − matched student a [points]")
    ax.set_title(f"Students differing in one property ({method}, {data.dataset})")
    return fig


FIGURES = {
    "complementary_knowledge": fig_complementary_knowledge,
    "class_histograms": fig_class_histograms,
    "entropy": fig_entropy,
    "success_rate": fig_success_rate,
    "delta_by_ts_diff": fig_delta_by_ts_diff,
    "transfer_rate_top_classes": fig_transfer_rate_top_classes,
    "transfer_rate_student_params": fig_transfer_rate_student_params,
    "correlations": fig_correlations,
    "class_similarity": fig_class_similarity,
    "methods_vs_controls": fig_methods_vs_controls,
    "predictor_correlations": fig_predictor_correlations,
    "knowledge_gain_loss": fig_knowledge_gain_loss,
    "multi_teacher_epochs": fig_multi_teacher_epochs,
    "matched_students": fig_matched_students,
}


def render_figures(results_dir, names=None) -> dict[str, Figure]:
    """Every figure (or those named) as a matplotlib Figure, from one snapshot of the folder."""
    data = FigureData(results_dir)
    return {name: FIGURES[name](data) for name in (names or FIGURES)}


def png_bytes(fig: Figure, dpi: int = 110) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def make_figures(results_dir, out_dir, formats=FORMATS, names=None) -> list[Path]:
    """Write every figure as `<out_dir>/<name>.<format>`; returns the files written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, fig in render_figures(results_dir, names).items():
        for fmt in formats:
            path = out / f"{name}.{fmt}"
            fig.savefig(path, format=fmt, dpi=150 if fmt == "png" else None)
            written.append(path)
    return written
