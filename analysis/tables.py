"""Run the SQL tables over a results folder and format them for a terminal or a file.

Each table is one file in `analysis/sql/`, runnable with DuckDB alone after `results/views.sql`
(see README). The file's leading comment is the table's caption.
"""
import math
from pathlib import Path

import pandas as pd

from results.store import read_views
from results.views import tables_in

SQL_DIR = Path(__file__).parent / "sql"
# In the order of the report: the paper's transfer results, then complementary knowledge, then
# where transfer lands, then bookkeeping.
TABLE_NAMES = (
    "success_rate", "success_rate_by_family", "success_rate_per_student", "methods_vs_controls",
    "full_imagenet", "delta_by_ts_diff", "delta_by_ts_diff_curve", "correlations",
    "multi_teacher", "pair_deltas",
    "complementary_knowledge", "complementary_knowledge_by_ts_diff", "class_concentration",
    "transfer_rate_by_top_classes", "transfer_rate_by_student_params",
    "predictors_teacher_sets",
    "model_accuracy", "run_status", "runs_not_ok", "provenance",
)
FORMATS = {"markdown": "md", "csv": "csv", "latex": "tex"}


def sql_path(name: str) -> Path:
    path = SQL_DIR / f"{name}.sql"
    if not path.is_file():
        raise KeyError(f"no table {name!r}; tables: {', '.join(TABLE_NAMES)}")
    return path


def sql_text(name: str) -> str:
    return sql_path(name).read_text()


def sql_caption(name: str) -> str:
    """The leading `--` comment of the table's SQL file, as one paragraph."""
    lines = []
    for line in sql_text(name).splitlines():
        if not line.startswith("--"):
            break
        lines.append(line[2:].strip())
    return " ".join(lines)


def run_tables(results_dir, names=TABLE_NAMES, con=None) -> dict[str, pd.DataFrame]:
    """Every table (or those named) as pandas, from one snapshot of the results folder (binding
    only the views they read), or over the views of `con`."""
    def read(con):
        return {name: con.execute(sql_text(name)).df() for name in names}
    if con is not None:
        return read(con)
    return read_views(results_dir, read, tables_in(" ".join(sql_text(n) for n in names)))


def format_cell(value) -> str:
    if value is None or value is pd.NA or value is pd.NaT:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return ""
    return str(value)


_LATEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                  "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                  "^": r"\textasciicircum{}", "±": r"$\pm$"}


def _latex(text: str) -> str:
    return "".join(_LATEX_ESCAPES.get(ch, ch) for ch in text)


def format_table(df: pd.DataFrame, fmt: str = "markdown") -> str:
    """`df` as a markdown table, CSV or a LaTeX tabular (booktabs rules)."""
    if fmt == "csv":
        return df.to_csv(index=False).rstrip("\n")
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; use {', '.join(FORMATS)}")
    header = [str(c) for c in df.columns]
    rows = [[format_cell(v) for v in row] for row in df.itertuples(index=False)]
    if fmt == "latex":
        numeric = [pd.api.types.is_numeric_dtype(t) for t in df.dtypes]
        spec = "".join("r" if n else "l" for n in numeric)
        body = [" & ".join(_latex(c) for c in r) + r" \\" for r in rows]
        return "\n".join([rf"\begin{{tabular}}{{{spec}}}", r"\toprule",
                          " & ".join(_latex(h) for h in header) + r" \\", r"\midrule",
                          *body, r"\bottomrule", r"\end{tabular}"])
    cells = [[c.replace("|", r"\|") for c in r] for r in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(header)]
    line = lambda cs: "| " + " | ".join(c.ljust(w) for c, w in zip(cs, widths)) + " |"  # noqa: E731
    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
                     + [line(r) for r in cells])


def write_tables(results_dir, out_dir=None, fmt: str = "markdown", names=TABLE_NAMES):
    """Format every table; print them (out_dir None) or write one file per table.

    Returns the text printed, or the list of files written.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; use {', '.join(FORMATS)}")
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
