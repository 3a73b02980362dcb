"""The figures of one benchmark run (`Record`): each printed as it comes and checked against its
target, with the machine's load it was measured under."""
import json
import math
import os
import platform


class Record:
    """The figures of one benchmark run; `add` prints each as it comes."""

    def __init__(self, name: str, run_id: str, echo=print):
        self.name, self.run_id, self.rows, self.echo = name, run_id, [], echo

    def add(self, case: str, metric: str, value, unit: str = "", target: str = "", **params):
        """target: "<= X" or ">= X" (the figure must satisfy it), or "" for none."""
        value = float(value) if value is not None else math.nan
        met = _meets(value, target) if target else None
        params = {**machine_load(), **params}
        self.rows.append(dict(name=self.name, case=case, metric=metric, value=value, unit=unit,
                              target=target, met=met,
                              params=json.dumps(params, sort_keys=True, default=str)))
        verdict = "" if met is None else f"   target {target}: {'met' if met else 'MISSED'}"
        self.echo(f"  {self.name:<8} {case:<34} {metric:<22} {format_value(value):>12} {unit}"
                  f"{verdict}")

    def missed(self) -> list[dict]:
        return [r for r in self.rows if r["met"] is False]


def _meets(value: float, target: str) -> bool:
    op, bound = target.split()
    if op not in ("<=", ">="):
        raise ValueError(f"target {target!r} must be '<= X' or '>= X'")
    return bool(value <= float(bound) if op == "<=" else value >= float(bound))


def format_value(value: float) -> str:
    if math.isnan(value):
        return "nan"
    if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
        return f"{value:.3g}"
    return f"{value:.4g}"


def machine_load() -> dict:
    """What the figures were measured under: cores, load average, torch threads."""
    info = {"cpus": os.cpu_count(), "python": platform.python_version()}
    try:
        info["loadavg_1m"] = round(os.getloadavg()[0], 2)
    except OSError:
        pass
    return info
