"""Uncertainty for the tables: percentile-bootstrap intervals and paired tests.

A table's SQL gives each estimate the values of its resampling units as list columns named
`boot_*` (per student its success share, per pair its summed delta and run count, ...), so the
grouping lives in SQL alone and DuckDB shows what every estimate was computed from. Here each
list is resampled with replacement, `BOOT` times, and the 2.5th and 97.5th percentiles of the
resampled estimate (linear interpolation, as numpy) become `<estimate>_lo` and `<estimate>_hi`;
the `boot_*` columns are then dropped. Fewer than two units give no interval (empty); so does
`boot` 0, which skips the resampling.

Deterministic: each interval's generator is seeded by the estimate's name and its units' values
(to 6 decimals), so the same data give the same interval whatever else the folder holds and
however DuckDB's threads summed them.
"""
import dataclasses
import os
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd

BOOT, CONFIDENCE, SEED = 1000, 0.95, 0
ALPHA = 0.05                 # the level the paired tests' verdicts use
RESAMPLED_CELLS = 2**22      # resampled values held at once (here and in the predictors)


@dataclasses.dataclass(frozen=True)
class Interval:
    """A 95% bootstrap interval for `column`, from the unit values in list column `values`.

    stat: `mean` or `median` of the values; `ratio`: sum(values) / sum(weights) over the units
    (a share or mean over runs, resampling the students or pairs the runs belong to).
    """
    column: str
    values: str
    unit: str                       # what is resampled: "students", "pairs"
    stat: str = "mean"
    weights: str | None = None
    scale: float = 1.0              # 100 for a share given as successes / runs
    digits: int = 2


def _units(cell) -> np.ndarray:
    if cell is None or cell is pd.NA or (isinstance(cell, float) and np.isnan(cell)):
        return np.empty(0)
    return np.asarray(cell, dtype=np.float64)


def _seed(name: str, *arrays) -> list[int]:
    # rounded first: DuckDB's parallel sums make the last bits of a mean vary from run to run,
    # and a seed from those bits would move the interval (+ 0.0 makes -0.0 zero)
    data = b"".join((np.round(np.asarray(a, np.float64), 6) + 0.0).tobytes() for a in arrays)
    return [SEED, zlib.crc32(name.encode()), zlib.crc32(data)]


def bootstrap(values, stat: str = "mean", weights=None, boot: int = BOOT,
              confidence: float = CONFIDENCE, name: str = "") -> tuple[float, float]:
    """(lo, hi): the percentile bootstrap interval of `stat` over the units in `values`."""
    values = _units(values)
    weights = None if weights is None else _units(weights)
    n = len(values)
    if n < 2 or boot < 1:
        return np.nan, np.nan
    if stat not in ("mean", "median", "ratio"):
        raise ValueError(f"unknown statistic {stat!r}: use mean, median or ratio")
    seed = _seed(f"{name}|{stat}", values, *([] if weights is None else [weights]))
    rows = max(1, RESAMPLED_CELLS // n)

    def block(start: int) -> np.ndarray:
        # each block its own stream: the same numbers whichever thread draws it
        rng = np.random.default_rng([*seed, start])
        idx = rng.integers(0, n, (min(rows, boot - start), n), dtype=np.int32)
        if stat == "mean":
            return values[idx].mean(axis=1)
        if stat == "median":
            return np.median(values[idx], axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return values[idx].sum(axis=1) / weights[idx].sum(axis=1)

    starts = range(0, boot, rows)
    if len(starts) == 1:
        estimates = block(0)
    else:     # numpy draws and gathers outside the GIL: 10^5 units take half the time on 2 cores
        with ThreadPoolExecutor(min(len(starts), os.cpu_count() or 1)) as pool:
            estimates = np.concatenate(list(pool.map(block, starts)))
    estimates = estimates[np.isfinite(estimates)]
    if not len(estimates):
        return np.nan, np.nan
    tail = 100 * (1 - confidence) / 2
    lo, hi = np.percentile(estimates, [tail, 100 - tail])
    return float(lo), float(hi)


def add_intervals(df: pd.DataFrame, intervals, boot: int = BOOT) -> pd.DataFrame:
    """`df` with `<column>_lo` and `<column>_hi` after each interval's column, a `ci95_over`
    column naming what was resampled, and no `boot_*` columns."""
    out = df.copy()
    for spec in intervals:
        bounds = [bootstrap(row[spec.values], spec.stat,
                            None if spec.weights is None else row[spec.weights], boot,
                            name=spec.column)
                  for _, row in df.iterrows()]
        bounds = np.array(bounds, dtype=np.float64).reshape(-1, 2) * spec.scale
        at = out.columns.get_loc(spec.column) + 1
        out.insert(at, f"{spec.column}_hi", np.round(bounds[:, 1], spec.digits))
        out.insert(at, f"{spec.column}_lo", np.round(bounds[:, 0], spec.digits))
    units = dict.fromkeys(spec.unit for spec in intervals)
    if len(units) == 1:
        out["ci95_over"] = next(iter(units))
    elif units:
        out["ci95_over"] = "; ".join(f"{spec.column}: {spec.unit}" for spec in intervals)
    return out.drop(columns=[c for c in out.columns if c.startswith("boot_")])


def paired_tests(differences) -> dict:
    """Two-sided tests that paired differences (method − control, one per pair) centre on 0:
    the sign test (exact binomial over the non-zero differences) and Wilcoxon's signed-rank
    test (scipy: exact for small samples without ties, zeros dropped). NaN when every
    difference is 0 or there are none."""
    d = _units(differences)
    d = d[np.isfinite(d)]
    wins, losses = int((d > 0).sum()), int((d < 0).sum())
    out = {"wins": wins, "losses": losses, "ties": int((d == 0).sum()),
           "sign_p": np.nan, "wilcoxon_p": np.nan}
    if wins + losses:
        from scipy import stats     # 1 s to import: only the tables that test pay it
        out["sign_p"] = float(stats.binomtest(wins, wins + losses, 0.5).pvalue)
        out["wilcoxon_p"] = float(stats.wilcoxon(d[d != 0]).pvalue)
    return out


def smallest_p(pairs: int) -> float:
    """The smallest two-sided p-value either test can reach with `pairs` non-zero differences
    (all of one sign): 2 / 2^n."""
    return min(1.0, 2.0 ** (1 - min(pairs, 1100))) if pairs else 1.0


def verdict(mean: float, p: float, pairs: int, alpha: float = ALPHA) -> str:
    """One phrase for a paired comparison: `beats`, `loses to`, `no difference shown`, or why
    no test could show one."""
    if not pairs:
        return "no matched pairs"
    if smallest_p(pairs) >= alpha:
        return f"too few pairs ({pairs}) for p < {alpha:g}"
    if np.isnan(p) or p >= alpha:
        return "no difference shown"
    return "beats" if mean > 0 else "loses to"
