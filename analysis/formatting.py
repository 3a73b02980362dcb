"""Tables as text for a terminal or a file: a markdown table, CSV or a LaTeX tabular (booktabs
rules).

One formatter over cells (a header, each column's cell texts, which columns are numeric) and two
ways in: a pandas DataFrame (the tables) and an Arrow table (`ktbench query`). Light at import
(pyarrow and the standard library): a query result prints without loading pandas.
"""
import csv
import io
import math

import pyarrow as pa

from results.errors import InputError

FORMATS = {"markdown": "md", "csv": "csv", "latex": "tex"}

_LATEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                  "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                  "^": r"\textasciicircum{}", "±": r"$\pm$"}


def cell_text(value) -> str:
    """A value as its cell: empty for None and NaN, else `str(value)`."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def format_column(column) -> list[str]:
    """The cells of a pandas Series, a column at a time (10^5-row tables print in a blink): any
    missing value (None, NaN, NA, NaT) empty."""
    return column.astype(object).where(column.notna(), "").astype(str).tolist()


def frame_cells(df) -> tuple[list[str], list[list[str]], list[bool]]:
    """A pandas DataFrame's header, cells by column, and which columns are numeric."""
    from pandas.api.types import is_numeric_dtype      # a DataFrame: pandas is loaded already
    return ([str(c) for c in df.columns],
            [format_column(df.iloc[:, i]) for i in range(df.shape[1])],
            [is_numeric_dtype(t) for t in df.dtypes])


def _numeric(kind: pa.DataType) -> bool:
    """Numeric as pandas counts it after DuckDB's conversion: numbers and booleans."""
    return (pa.types.is_integer(kind) or pa.types.is_floating(kind)
            or pa.types.is_decimal(kind) or pa.types.is_boolean(kind))


def arrow_cells(table: pa.Table) -> tuple[list[str], list[list[str]], list[bool]]:
    """An Arrow table's header, cells by column (`cell_text` of each Python value), and which
    columns are numeric."""
    return (list(table.column_names),
            [[cell_text(v) for v in column.to_pylist()] for column in table.columns],
            [_numeric(field.type) for field in table.schema])


def _latex(text: str) -> str:
    return "".join(_LATEX_ESCAPES.get(ch, ch) for ch in text)


def format_cells(header: list[str], columns: list[list[str]], numeric: list[bool],
                 fmt: str = "markdown") -> str:
    """Cells as a markdown table, CSV (quoted where needed) or a LaTeX tabular with numeric
    columns right-aligned."""
    if fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r}; use {', '.join(FORMATS)}")
    rows = list(zip(*columns))
    if fmt == "csv":
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
        return text.getvalue().rstrip("\n")
    if fmt == "latex":
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


def format_table(table, fmt: str = "markdown") -> str:
    """`table`, a pandas DataFrame or an Arrow table, as a markdown table, CSV or a LaTeX
    tabular (booktabs rules); a missing value is an empty cell."""
    cells = arrow_cells(table) if isinstance(table, pa.Table) else frame_cells(table)
    return format_cells(*cells, fmt)
