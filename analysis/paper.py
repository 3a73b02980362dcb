"""The paper's numbers beside the run's: the `paper_reference` table (docs/analysis.md#paper-numbers).

Each fact is either a *value* (a median success rate, a mean delta, a range of complementary
knowledge), shown beside the run's estimate and its 95% interval, or a *direction* (KL + DP
above KL, CNN students below transformers), shown with the run's two estimates and whether they
point the same way. The facts are the authors' ImageNet results (their per-student results file:
20 teachers per student on the 10% transfer subset) and the paper's stated range of
complementary knowledge; a run on another dataset or zoo is compared all the same, and the
table says how far it is.
"""
import dataclasses

import numpy as np
import pandas as pd

RESULTS_FILE = "authors' results (ImageNet, 20 teachers per student)"
PAPER = "paper (ImageNet pairs)"
CAPTION = ("The paper's numbers beside this run's (docs/analysis.md#paper-numbers). A value row "
           "gives the paper's number, the run's estimate with its 95% bootstrap interval, and "
           "whether the paper's number lies inside that interval; a direction row gives the "
           "paper's ordering, the run's two estimates, and whether the run orders them the same "
           "way. Facts about methods or families the run lacks are left out (an empty folder "
           "lists them all). The paper's numbers are ImageNet's; on another dataset read the "
           "directions first.")
# the run tables the facts read
RUN_TABLES = ("success_rate", "success_rate_by_family", "complementary_knowledge")


@dataclasses.dataclass(frozen=True)
class Ref:
    """One number of the run: `column` of `table` in the row where `where` holds."""
    table: str
    column: str
    where: tuple = ()
    label: str = ""

    def find(self, tables: dict, dataset) -> tuple[float, float, float]:
        """(estimate, lo, hi) in the run; NaN where the run has no such row."""
        df = tables[self.table]
        rows = df[df["dataset"] == dataset] if "dataset" in df.columns else df
        for column, value in self.where:
            rows = rows[rows[column] == value]
        if rows.empty or pd.isna(rows[self.column].iloc[0]):
            return np.nan, np.nan, np.nan
        row = rows.iloc[0]
        bounds = [row.get(f"{self.column}_{side}", np.nan) for side in ("lo", "hi")]
        return float(row[self.column]), *(float(b) if pd.notna(b) else np.nan for b in bounds)


def _success(method, column="median_success"):
    return Ref("success_rate", column, (("method", method),), method)


def _family(method, family):
    return Ref("success_rate_by_family", "median_success", (("method", method),
                                                           ("family", family)),
               f"{method} on {family} students")


@dataclasses.dataclass(frozen=True)
class Value:
    check: str
    paper: float
    run: Ref
    source: str = RESULTS_FILE


@dataclasses.dataclass(frozen=True)
class Direction:
    """`high` above `low` in the paper (high_value > low_value)."""
    check: str
    high: Ref
    low: Ref
    high_value: float
    low_value: float
    source: str = RESULTS_FILE


_MEDIANS = {"kl": 32.5, "xekl": 42.5, "cd": 0.0, "crd": 0.0, "xekl_mcl": 85.0, "kl_dp": 92.5,
            "kl_dp_unsup": 82.5}
_MEANS = {"kl": 32.5, "xekl": 42.2, "cd": 16.2, "crd": 16.8, "xekl_mcl": 65.6, "kl_dp": 73.8,
          "kl_dp_unsup": 69.0}
_DELTAS = {"kl": -0.30, "xekl": -0.02, "cd": -1.90, "crd": -0.82, "xekl_mcl": -0.02,
           "kl_dp": 0.32, "kl_dp_unsup": -0.06}
_FAMILIES = {("kl_dp", "transformer"): 97.5, ("kl_dp", "cnn"): 45.0, ("kl_dp", "mlp"): 100.0,
             ("kl", "transformer"): 35.0, ("kl", "cnn"): 0.0, ("kl", "mlp"): 50.0}
_ZERO = Ref("", "")      # the number 0, for "above zero" directions

FACTS = (
    *(Value(f"median success % of {m}", v, _success(m)) for m, v in _MEDIANS.items()),
    *(Value(f"mean success % of {m}", v, _success(m, "mean_success")) for m, v in _MEANS.items()),
    *(Value(f"mean per-student delta of {m}", v, _success(m, "mean_delta"))
      for m, v in _DELTAS.items()),
    *(Value(f"median success % of {m} on {f} students", v, _family(m, f))
      for (m, f), v in _FAMILIES.items()),
    Value("smallest rho_pos over pairs (%)", 2.0,
          Ref("complementary_knowledge", "min_rho_pos", label="smallest rho_pos"), PAPER),
    Value("largest rho_pos over pairs (%)", 25.0,
          Ref("complementary_knowledge", "max_rho_pos", label="largest rho_pos"), PAPER),
    Direction("KL+DP succeeds more often than KL (median success)", _success("kl_dp"),
              _success("kl"), 92.5, 32.5),
    Direction("KL+DP gains more than KL (mean per-student delta)",
              _success("kl_dp", "mean_delta"), _success("kl", "mean_delta"), 0.32, -0.30),
    Direction("KL+DP gains on average (mean per-student delta above 0)",
              _success("kl_dp", "mean_delta"), _ZERO, 0.32, 0.0),
    Direction("KL alone loses on average (mean per-student delta below 0)",
              _ZERO, _success("kl", "mean_delta"), 0.0, -0.30),
    Direction("XE-KL+MCL succeeds more often than KL", _success("xekl_mcl"), _success("kl"),
              85.0, 32.5),
    Direction("supervised DP succeeds more often than unsupervised DP", _success("kl_dp"),
              _success("kl_dp_unsup"), 92.5, 82.5),
    Direction("KL+DP: transformer students succeed more often than CNN students",
              _family("kl_dp", "transformer"), _family("kl_dp", "cnn"), 97.5, 45.0),
    Direction("KL: transformer students succeed more often than CNN students",
              _family("kl", "transformer"), _family("kl", "cnn"), 35.0, 0.0),
    Direction("every pair holds complementary knowledge (smallest rho_pos above 0)",
              Ref("complementary_knowledge", "min_rho_pos", label="smallest rho_pos"), _ZERO,
              2.0, 0.0, PAPER),
)
COLUMNS = ["dataset", "check", "kind", "paper", "run", "run_lo", "run_hi", "agrees", "source"]


def _number(v: float) -> str:
    return f"{v:g}" if float(v).is_integer() else f"{v:.2f}".rstrip("0")


def _find(ref: Ref, tables: dict, dataset):
    return (0.0, np.nan, np.nan) if ref is _ZERO else ref.find(tables, dataset)


def _value_row(fact: Value, tables: dict, dataset) -> dict:
    run, lo, hi = _find(fact.run, tables, dataset)
    if np.isnan(run):
        agrees = "not in this run"
    elif np.isnan(lo):
        agrees = "no interval"
    else:
        agrees = "inside the interval" if lo <= fact.paper <= hi else (
            "run above" if lo > fact.paper else "run below")
    return dict(kind="value", paper=_number(fact.paper),
                run=None if np.isnan(run) else _number(run), run_lo=lo, run_hi=hi,
                agrees=agrees)


def _side(ref: Ref, value: float) -> str:
    return _number(value) if ref is _ZERO else f"{ref.label} {_number(value)}"


def _direction_row(fact: Direction, tables: dict, dataset) -> dict:
    high, low = _find(fact.high, tables, dataset)[0], _find(fact.low, tables, dataset)[0]
    paper = f"{_side(fact.high, fact.high_value)} > {_side(fact.low, fact.low_value)}"
    if np.isnan(high) or np.isnan(low):
        return dict(kind="direction", paper=paper, run=None, run_lo=np.nan, run_hi=np.nan,
                    agrees="not in this run")
    sign = ">" if high > low else "<" if high < low else "="
    return dict(kind="direction", paper=paper,
                run=f"{_side(fact.high, high)} {sign} {_side(fact.low, low)}",
                run_lo=np.nan, run_hi=np.nan,
                agrees={">": "yes", "<": "no", "=": "tie"}[sign])


def paper_reference(tables: dict) -> pd.DataFrame:
    """The facts of `FACTS` the run can be held against, beside its numbers, per dataset of the
    run; every fact, with no run numbers, when the folder holds none."""
    datasets = sorted({d for name in RUN_TABLES for d in tables[name]["dataset"].dropna()})
    rows = []
    for dataset in datasets or [None]:
        for fact in FACTS:
            row = (_value_row if isinstance(fact, Value) else _direction_row)(fact, tables,
                                                                             dataset)
            if datasets and row["agrees"] == "not in this run":
                continue
            rows.append(dict(row, dataset=dataset, check=fact.check, source=fact.source))
    return pd.DataFrame(rows, columns=COLUMNS)
