"""Run the SQL tables over a results folder and format them for a terminal or a file.

Each table is one file in `analysis/sql/`, runnable with DuckDB alone after `results/views.sql`
and `analysis/views.sql` (the one definition of a transfer run: `analysis.views`; see README).
The file's leading comment is the table's caption. Python then adds what SQL cannot: bootstrap
intervals from the `boot_*` unit lists a file returns (`INTERVALS`), paired tests and the
columns and tables that read another table (`FINISH`: `matched_students_by_property` sums up
`matched_students`), and `paper_reference`, the paper's numbers beside the run's
(`analysis.paper`).
"""
from pathlib import Path

import pandas as pd

from analysis import paper
from analysis.formatting import FORMATS, cell_text, format_table
from analysis.table_names import TABLE_NAMES, sql_path, sql_text
from analysis.uncertainty import BOOT, Interval, add_intervals, paired_tests, verdict
from analysis.views import bind_views, tables_in
from results.errors import InputError
from results.store import copy_many_parts, read_views

_SUCCESS = dict(unit="students", digits=1)
# table -> its 95% bootstrap intervals, from the `boot_*` unit lists its SQL returns
INTERVALS: dict[str, tuple[Interval, ...]] = {
    "success_rate": (Interval("median_success", "boot_success", stat="median", **_SUCCESS),
                     Interval("mean_success", "boot_success", **_SUCCESS),
                     Interval("mean_delta", "boot_delta", unit="students")),
    "success_rate_by_dataset": (Interval("mean_success", "boot_success", **_SUCCESS),
                                Interval("mean_delta", "boot_delta", unit="students")),
    "success_rate_by_family": (
        Interval("median_success", "boot_success", stat="median", **_SUCCESS),
        Interval("mean_success", "boot_success", **_SUCCESS)),
    "methods_vs_controls": (
        Interval("mean_delta", "boot_delta_sum", unit="pairs", stat="ratio",
                 weights="boot_delta_runs"),
        Interval("success", "boot_successes", stat="ratio", weights="boot_finished", scale=100,
                 **_SUCCESS)),
    "gain_over_controls": (Interval("mean_gain", "boot_gain", unit="pairs"),),
    "delta_by_ts_diff": (Interval("mean_delta", "boot_delta_sum", unit="pairs", stat="ratio",
                                  weights="boot_delta_runs"),),
    "knowledge_gain_loss": (Interval("mean_gain", "boot_gain", unit="students"),
                            Interval("mean_loss", "boot_loss", unit="students"),
                            Interval("mean_net", "boot_net", unit="students")),
    "dp_supervision": (Interval("mean_gain", "boot_gain", unit="pairs"),),
    "gain_size": (Interval("under_1_pct", "boot_under_1", stat="ratio", weights="boot_gaining",
                           scale=100, **_SUCCESS),),
    "matched_students_by_property": (
        Interval("mean_diff", "boot_diff", unit="pairs"),
        Interval("b_better_pct", "boot_better", stat="ratio", weights="boot_pairs", scale=100,
                 unit="pairs", digits=1)),
    "random_init_flips": (Interval("mean_rho_pos", "boot_rho_pos", unit="pairs", digits=3),),
    "class_similarity": (Interval("mean_sim", "boot_mean_sim", unit="pairs", digits=3),
                         Interval("uplift_pct", "boot_uplift", unit="pairs", scale=100,
                                  digits=1),
                         Interval("max_uplift_pct", "boot_max_uplift", unit="pairs", scale=100,
                                  digits=1)),
}


def _paired_tests(df: pd.DataFrame, tables: dict) -> pd.DataFrame:
    """gain_over_controls, dp_supervision: the sign and signed-rank tests over each row's
    per-pair gains."""
    tests = pd.DataFrame([paired_tests(gains) for gains in df["boot_gain"]],
                         columns=["wins", "losses", "ties", "sign_p", "wilcoxon_p"])
    tests["verdict"] = [verdict(m, p, w + lo) for m, p, w, lo in
                        zip(df["mean_gain"], tests["wilcoxon_p"], tests["wins"], tests["losses"])]
    return pd.concat([df.reset_index(drop=True), tests.round({"sign_p": 4, "wilcoxon_p": 4})],
                     axis=1)


def _beyond_controls(df: pd.DataFrame, tables: dict) -> pd.DataFrame:
    """methods_vs_controls: one cell per method row summing up gain_over_controls."""
    gains = tables["gain_over_controls"]
    cells = {}
    for row in gains.itertuples(index=False):
        interval = ("" if pd.isna(row.mean_gain_lo) else
                    f" [{row.mean_gain_lo:+.2f}, {row.mean_gain_hi:+.2f}]")
        p = "" if pd.isna(row.wilcoxon_p) else f", p {row.wilcoxon_p:.3g}"
        cells.setdefault((row.dataset, row.method), []).append(
            f"{row.control} {row.mean_gain:+.2f}{interval}{p} ({row.pairs} pairs): {row.verdict}")
    out = df.copy()
    out["beyond_controls"] = ["; ".join(cells.get((d, m), [])) or None
                              for d, m in zip(df["dataset"], df["method"])]
    return out


_BY_PROPERTY = ["dataset", "method", "property", "family_a", "family_b"]
BY_PROPERTY_CAPTION = (
    "The matched students summed up (matched_students: each student beside its nearest match "
    "that differs in one property): per method, property and the two families (a's, b's), the "
    "matched pairs, the mean over pairs of mean_diff (student b's mean delta over shared teachers "
    "minus a's: b is the more accurate for weights, the larger for size, the later family in "
    "name order for family), and b_better_pct, the % of pairs where b gains more. 95% bootstrap "
    "intervals resample pairs.")


def _by_property(df: pd.DataFrame, tables: dict) -> pd.DataFrame:
    """matched_students_by_property: matched_students' pairs grouped, with their unit lists."""
    pairs = tables["matched_students"].dropna(subset=["mean_diff"])
    better = (pairs["mean_diff"] > 0).astype(float)
    groups = pairs.assign(better=better, one=1.0).groupby(_BY_PROPERTY, sort=True)
    out = groups.agg(pairs=("mean_diff", "size"), mean_diff=("mean_diff", "mean"),
                     b_better_pct=("better", "mean"), boot_diff=("mean_diff", list),
                     boot_better=("better", list), boot_pairs=("one", list)).reset_index()
    return out.assign(mean_diff=out["mean_diff"].round(2),
                      b_better_pct=(100 * out["b_better_pct"]).round(1))


# table -> (the finished tables it reads, the step that completes it: (df, tables) -> df).
# The step runs before the intervals, so it may read the `boot_*` lists. A table without a SQL
# file gets df None.
FINISH = {
    "gain_over_controls": ((), _paired_tests),
    "dp_supervision": ((), _paired_tests),
    "methods_vs_controls": (("gain_over_controls",), _beyond_controls),
    "paper_reference": (paper.RUN_TABLES, lambda df, tables: paper.paper_reference(tables)),
    "matched_students_by_property": (("matched_students",), _by_property),
}
CAPTIONS = {"paper_reference": paper.CAPTION,      # tables without a SQL file
            "matched_students_by_property": BY_PROPERTY_CAPTION}
_PYTHON_SOURCES = {"paper_reference": "analysis/paper.py"}


def table_source(name: str) -> str:
    """Where a table is defined: its SQL file, or the module of a table computed in Python."""
    if name in CAPTIONS:
        return _PYTHON_SOURCES.get(name, "analysis/tables.py")
    return f"analysis/sql/{sql_path(name).name}"


def sql_caption(name: str) -> str:
    """The leading `--` comment of the table's SQL file, as one paragraph (or the caption of a
    table computed in Python)."""
    if name in CAPTIONS:
        return CAPTIONS[name]
    lines = []
    for line in sql_text(name).splitlines():
        if not line.startswith("--"):
            break
        lines.append(line[2:].strip())
    return " ".join(lines)


def _with_inputs(names) -> list[str]:
    """`names` and every table their Python-computed columns read, recursively."""
    found: list[str] = []

    def visit(name):
        if name not in found:
            for need in FINISH.get(name, ((), None))[0]:
                visit(need)
            found.append(name)
    for name in names:
        visit(name)
    return found


def run_tables(results_dir, names=TABLE_NAMES, con=None,
               boot: int = BOOT) -> dict[str, pd.DataFrame]:
    """Every table (or those named) as pandas, from one snapshot of the results folder (binding
    only the views they read), or over the views of `con`, with its intervals (`boot` bootstrap
    resamples) and Python-computed columns."""
    def read(con):
        bind_views(con)
        done: dict[str, pd.DataFrame] = {}

        def table(name: str) -> pd.DataFrame:
            if name not in done:
                needs, finish = FINISH.get(name, ((), None))
                inputs = {n: table(n) for n in needs}
                df = con.execute(sql_text(name)).df() if name not in CAPTIONS else None
                if finish is not None:
                    df = finish(df, inputs)
                done[name] = (add_intervals(df, INTERVALS[name], boot) if name in INTERVALS
                              else df)
            return done[name]
        return {name: table(name) for name in names}

    if con is not None:
        return read(con)
    tables = tables_read(names)

    def read_once(con):         # parts not compacted yet: read once, not once per statement
        copy_many_parts(con, tables)
        return read(con)
    return read_views(results_dir, read_once, tables)


def tables_read(names=TABLE_NAMES) -> list[str]:
    """The results tables that `run_tables(names)` reads."""
    return tables_in(" ".join(sql_text(n) for n in _with_inputs(names) if n not in CAPTIONS))


def format_cell(value) -> str:
    """`cell_text`, with pandas' own missing values (NA, NaT) empty too."""
    return "" if value is pd.NA or value is pd.NaT else cell_text(value)


def write_tables(results_dir, out_dir=None, fmt: str = "markdown", names=TABLE_NAMES):
    """Format every table; print them (out_dir None) or write one file per table.

    Returns the text printed, or the list of files written.
    """
    if fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r}; use {', '.join(FORMATS)}")
    tables = run_tables(results_dir, names)
    if out_dir is None:
        parts = []
        for name, df in tables.items():
            text = format_table(df, fmt)
            parts.append(f"## {name}\n\n{text}" if fmt == "markdown" else f"# {name}\n{text}")
        return "\n\n".join(parts)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, df in tables.items():
        path = out / f"{name}.{FORMATS[fmt]}"
        path.write_text(format_table(df, fmt) + "\n")
        written.append(path)
    return written
