"""Run the SQL tables over a results folder and format them for a terminal or a file."""
import math
from pathlib import Path

import pandas as pd

from results import connect

SQL_DIR = Path(__file__).parent / "sql"
TABLE_NAMES = ("success_rate", "complementary_knowledge", "complementary_knowledge_by_ts_diff",
               "pair_deltas")


def sql_text(name: str) -> str:
    return (SQL_DIR / f"{name}.sql").read_text()


def run_tables(results_dir, names=TABLE_NAMES) -> dict[str, pd.DataFrame]:
    con = connect(results_dir)
    try:
        return {name: con.execute(sql_text(name)).df() for name in names}
    finally:
        con.close()


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def format_table(df: pd.DataFrame, fmt: str = "markdown") -> str:
    if fmt == "csv":
        return df.to_csv(index=False)
    if fmt != "markdown":
        raise ValueError(f"unknown format {fmt!r}; use markdown or csv")
    header = [str(c) for c in df.columns]
    rows = [[_cell(v) for v in row] for row in df.itertuples(index=False)]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(header)]
    line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
                     + [line(r) for r in rows])
