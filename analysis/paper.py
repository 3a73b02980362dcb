"""The authors' numbers beside the run's: the `paper_reference` table
(docs/analysis.md#paper-numbers).

Each fact is a *value* (a median success rate, a mean delta), shown beside the run's estimate
and its 95% interval; a *direction* (KL + DP above KL, CNN students below transformers), shown
with the run's two estimates and whether they point the same way; or a *bound* (at least about
2% complementary knowledge in every accuracy-gap bin), shown with whether the run reaches it.

Like with like:
- Code path: where ktbench's default runs other code than the authors' (`AUTHORS_CODE_DIFFERS`:
  XE on probabilities, MCL's fast weights), a fact is held against the
  runs of compat mode `fantasticgains` (the authors' code path), and against the default runs
  beside it; `code_path` says which.
- Collapsed runs: a success counts every run, a collapse as a failure (ktbench: a `diverged`
  run). A mean delta leaves collapsed runs out on both sides: the run's over its `ok` runs (a run
  is stopped as diverged once it falls `diverge_margin`, 20 points by default, below its start),
  the results file's over the runs whose final delta is above -20, the authors' own cut
  (their teacher-influence figure). Where the file's per-student mean holds one collapsed run (its
  minimum; the other 19, by their mean and std, cannot reach -20), it is recomputed without it,
  (20 mean - min) / 19; a student where that cannot be shown is left out of the mean, and the row
  says how many students remain (docs/analysis.md#paper-numbers).
- Students: the file's 20 students of every method (the 10 extra KL + DP students left out, as
  the authors' figures do), none dropped for collapsing: so MCL's median success is 80.0 over
  the 20, not the 85 of the 17 the authors' figure kept.
- Source: each row names the paper's text (and where in it) or the authors' per-student results
  file (its commit).
"""
import dataclasses

import numpy as np
import pandas as pd

FILE_COMMIT = "ebcf12d"
RESULTS_FILE = (f"authors' results file (plots/students_leaderboard.csv at commit {FILE_COMMIT};"
                " ImageNet, 20 teachers per student, 20 students)")
CAPTION = ("The authors' numbers beside this run's (docs/analysis.md#paper-numbers). A value row "
           "gives the authors' number, the run's estimate with its 95% bootstrap interval, and "
           "whether the number lies inside that interval; a direction row gives the authors' "
           "ordering, the run's two estimates, and whether the run orders them the same way; a "
           "bound row whether the run reaches the stated bound. Where ktbench's default differs "
           "from the authors' code, the compat runs (the authors' code path) are compared and "
           "the default runs beside them (code_path). Mean deltas leave collapsed runs out on "
           "both sides; success rates count them as failures. Each row names its source: the "
           "paper's text or the authors' results file. Facts about methods the run lacks are left "
           "out (an empty folder lists them all). The numbers are ImageNet's; on another dataset "
           "read the directions first.")
COMPAT = "fantasticgains"
# methods whose default runs other code than the authors' (docs/compat.md)
AUTHORS_CODE_DIFFERS = ("xekl", "xekl_mcl")
# the run tables the facts read
RUN_TABLES = ("success_rate", "success_rate_by_family", "complementary_knowledge_by_ts_diff",
              "knowledge_gain_loss", "dp_supervision", "random_init_flips", "gain_size")
# complementary_knowledge_by_ts_diff's bins, weakest teachers first
TS_DIFF_BINS = ("< -15", "[-15, -3]", "(-3, -1]", "(-1, 1]", "(1, 3]", "(3, 15]", "> 15")
PATHS = ("authors", "default")


def _paper(where: str) -> str:
    return f"paper's text ({where})"


def method_label(method: str, path: str) -> str:
    """The run's label of `method` on a code path: the compat label (as the view `runs` of
    analysis/views.sql writes it) where the authors' code differs from the default and the path
    is the authors'."""
    differs = path == "authors" and method in AUTHORS_CODE_DIFFERS
    return f"{method} ({COMPAT})" if differs else method


@dataclasses.dataclass(frozen=True)
class Ref:
    """One number of the run: `column` of `table` in the row of `method` (in `method_column`,
    labelled for the code path) where `where` also holds; `method` None: no method column."""
    table: str
    column: str
    method: str | None = None
    where: tuple = ()
    label: str = ""
    method_column: str = "method"

    def find(self, tables: dict, dataset, path: str) -> tuple[float, float, float]:
        """(estimate, lo, hi) in the run; NaN where the run has no such row."""
        df = tables[self.table]
        rows = df[df["dataset"] == dataset] if "dataset" in df.columns else df
        where = self.where + (((self.method_column, method_label(self.method, path)),)
                              if self.method else ())
        for column, value in where:
            rows = rows[rows[column] == value]
        if rows.empty or pd.isna(rows[self.column].iloc[0]):
            return np.nan, np.nan, np.nan
        row = rows.iloc[0]
        bounds = [row.get(f"{self.column}_{side}", np.nan) for side in ("lo", "hi")]
        return float(row[self.column]), *(float(b) if pd.notna(b) else np.nan for b in bounds)

    def text(self, path: str) -> str:
        return self.label.format(m=method_label(self.method, path) if self.method else "")


_ZERO = Ref("", "")      # the number 0, for "above zero" directions


def _success(method, column="median_success"):
    return Ref("success_rate", column, method, label="{m}")


def _family(method, family):
    return Ref("success_rate_by_family", "median_success", method, (("family", family),),
               f"{{m}} on {family} students")


def _knowledge(method, column):
    return Ref("knowledge_gain_loss", column, method, (("family", "all"),),
               f"{{m}} {column.removeprefix('mean_')}")


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


@dataclasses.dataclass(frozen=True)
class Bound:
    """The run is at least `least`: its estimate, or where it has an interval, the interval's
    upper end (not shown below the bound: "matches or beats")."""
    check: str
    least: float
    run: Ref
    source: str


# the results file, over its 20 students (collapses count as failures; see the module)
_MEDIANS = {"kl": 32.5, "xekl": 42.5, "cd": 0.0, "crd": 0.0, "xekl_mcl": 80.0,
            "kl_dp": 92.5, "kl_dp_unsup": 82.5}
_MEANS = {"kl": 32.5, "xekl": 42.25, "cd": 16.25, "crd": 16.75, "xekl_mcl": 60.75,
          "kl_dp": 73.75, "kl_dp_unsup": 69.0}
# mean over students of the per-student mean delta, collapsed runs (final delta <= -20) out:
# (method, students whose mean could be recomputed) -> value
_DELTAS = {"kl": (-0.30, 20), "xekl": (-0.02, 20), "cd": (-1.31, 19), "crd": (-0.82, 20),
           "xekl_mcl": (0.04, 16), "kl_dp": (0.32, 20), "kl_dp_unsup": (0.15, 20)}
_FAMILIES = {("kl_dp", "transformer"): 97.5, ("kl_dp", "cnn"): 45.0, ("kl_dp", "mlp"): 100.0,
             ("kl", "transformer"): 35.0, ("kl", "cnn"): 0.0, ("kl", "mlp"): 50.0,
             ("xekl_mcl", "transformer"): 32.5, ("xekl_mcl", "cnn"): 95.0,
             ("xekl_mcl", "mlp"): 80.0}
_SUCCESS_FIGURE = _paper("success rates quoted with the success-rate box plot, Fig. 4a")
_FIG1 = _paper("Fig. 1 caption: 2-25% even for much weaker teachers")


def _delta_check(method: str, students: int) -> str:
    out = "" if students == 20 else f"; file: {students} of 20 students, the others had several"
    return f"mean per-student delta of {method} (collapsed runs out{out})"


FACTS = (
    Value("median success % of kl_dp", 92.5, _success("kl_dp"), _SUCCESS_FIGURE),
    *(Value(f"median success % of {m} (all 20 students)", v, _success(m))
      for m, v in _MEDIANS.items() if m != "kl_dp"),
    *(Value(f"mean success % of {m}", v, _success(m, "mean_success")) for m, v in _MEANS.items()),
    *(Value(_delta_check(m, n), v, _success(m, "mean_delta")) for m, (v, n) in _DELTAS.items()),
    *(Value(f"median success % of {m} on {f} students", v, _family(m, f))
      for (m, f), v in _FAMILIES.items()),
    *(Bound(f"smallest rho_pos at least about 2%, teacher - student accuracy {b}", 2.0,
            Ref("complementary_knowledge_by_ts_diff", "min_rho_pos", where=(("ts_diff_bin", b),),
                label="smallest rho_pos"), _FIG1)
      for b in TS_DIFF_BINS),
    Value("mean rho_pos of a randomly initialised teacher over trained students (%)", 0.03,
          Ref("random_init_flips", "mean_rho_pos", label="random-init rho_pos"),
          "authors' project page (a randomly initialised ResNet-50 on ImageNet)"),
    *(Bound(f"gains often under 1 point: % of {m}'s gaining students whose mean gain is under 1",
            50.0, Ref("gain_size", "under_1_pct", m, label="{m}"),
            _paper("Table 1, full ImageNet, as a public review quotes it"))
      for m in ("kl", "kl_dp", "kl_dp_unsup")),
    Direction("KL+DP succeeds more often than KL (median success)", _success("kl_dp"),
              _success("kl"), 92.5, 32.5),
    Direction("KL+DP gains more than KL (mean per-student delta)",
              _success("kl_dp", "mean_delta"), _success("kl", "mean_delta"), 0.32, -0.30),
    Direction("KL+DP gains on average (mean per-student delta above 0)",
              _success("kl_dp", "mean_delta"), _ZERO, 0.32, 0.0),
    Direction("KL alone loses on average (mean per-student delta below 0)",
              _ZERO, _success("kl", "mean_delta"), 0.0, -0.30),
    Direction("XE-KL+MCL succeeds more often than KL (median success)", _success("xekl_mcl"),
              _success("kl"), 80.0, 32.5),
    Bound("unsupervised DP matches or beats supervised DP (paired delta, unsupervised - "
          "supervised, not below 0)", 0.0,
          Ref("dp_supervision", "mean_gain", "kl_dp_unsup", label="{m} - kl_dp",
              method_column="unsupervised"),
          _paper("Table 3, transfer on other datasets; the project page: most of the time")),
    Direction("KL+DP: transformer students succeed more often than CNN students",
              _family("kl_dp", "transformer"), _family("kl_dp", "cnn"), 97.5, 45.0),
    Direction("KL: transformer students succeed more often than CNN students",
              _family("kl", "transformer"), _family("kl", "cnn"), 35.0, 0.0),
    Direction("XE-KL+MCL: CNN students succeed more often than transformer students",
              _family("xekl_mcl", "cnn"), _family("xekl_mcl", "transformer"), 95.0, 32.5),
    Direction("KL+DP: knowledge gain above knowledge loss (mean per student)",
              _knowledge("kl_dp", "mean_gain"), _knowledge("kl_dp", "mean_loss"), 1.89, 1.58),
    Direction("KL: knowledge loss above knowledge gain (mean per student)",
              _knowledge("kl", "mean_loss"), _knowledge("kl", "mean_gain"), 3.02, 2.71),
)
COLUMNS = ["dataset", "check", "kind", "paper", "code_path", "run", "run_lo", "run_hi", "agrees",
           "source"]


def _number(v: float) -> str:
    return f"{v:g}" if float(v).is_integer() else f"{v:.2f}".rstrip("0")


def _find(ref: Ref, tables: dict, dataset, path: str):
    return (0.0, np.nan, np.nan) if ref is _ZERO else ref.find(tables, dataset, path)


def _value_row(fact: Value, tables: dict, dataset, path: str) -> dict:
    run, lo, hi = _find(fact.run, tables, dataset, path)
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


def _bound_row(fact: Bound, tables: dict, dataset, path: str) -> dict:
    run, lo, hi = _find(fact.run, tables, dataset, path)
    reach = hi if np.isfinite(hi) else run
    return dict(kind="bound", paper=f">= {_number(fact.least)}",
                run=None if np.isnan(run) else f"{fact.run.text(path)} {_number(run)}",
                run_lo=lo, run_hi=hi,
                agrees="not in this run" if np.isnan(run) else
                "yes" if reach >= fact.least else "no")


def _side(ref: Ref, value: float, path: str) -> str:
    return _number(value) if ref is _ZERO else f"{ref.text(path)} {_number(value)}"


def _direction_row(fact: Direction, tables: dict, dataset, path: str) -> dict:
    high = _find(fact.high, tables, dataset, path)[0]
    low = _find(fact.low, tables, dataset, path)[0]
    paper = (f"{_side(fact.high, fact.high_value, 'authors')} > "
             f"{_side(fact.low, fact.low_value, 'authors')}")
    if np.isnan(high) or np.isnan(low):
        return dict(kind="direction", paper=paper, run=None, run_lo=np.nan, run_hi=np.nan,
                    agrees="not in this run")
    sign = ">" if high > low else "<" if high < low else "="
    return dict(kind="direction", paper=paper,
                run=f"{_side(fact.high, high, path)} {sign} {_side(fact.low, low, path)}",
                run_lo=np.nan, run_hi=np.nan,
                agrees={">": "yes", "<": "no", "=": "tie"}[sign])


_ROWS = {Value: _value_row, Direction: _direction_row, Bound: _bound_row}


def _refs(fact) -> tuple[Ref, ...]:
    return (fact.high, fact.low) if isinstance(fact, Direction) else (fact.run,)


def _paths(fact) -> dict[str, str | None]:
    """The code paths a fact is compared on, each with its `code_path` text: the authors' (the
    compat runs where the default differs) and, where it differs, the default beside it."""
    differs = sorted({r.method for r in _refs(fact)} & set(AUTHORS_CODE_DIFFERS))
    if not differs:
        has_method = any(r.method for r in _refs(fact))
        return {"default": "default (as the authors' code)" if has_method else None}
    return {"authors": f"compat {COMPAT} (the authors' code)",
            "default": f"default ({', '.join(differs)}: not the authors' code)"}


def paper_reference(tables: dict) -> pd.DataFrame:
    """The facts of `FACTS` the run can be held against, beside its numbers, per dataset of the
    run and code path; every fact, with no run numbers, when the folder holds none."""
    datasets = sorted({d for name in RUN_TABLES for d in tables[name]["dataset"].dropna()})
    rows = []
    for dataset in datasets or [None]:
        for fact in FACTS:
            for path, code_path in _paths(fact).items():
                row = _ROWS[type(fact)](fact, tables, dataset, path)
                if datasets and row["agrees"] == "not in this run":
                    continue
                rows.append(dict(row, dataset=dataset, check=fact.check, code_path=code_path,
                                 source=fact.source))
    return pd.DataFrame(rows, columns=COLUMNS)
