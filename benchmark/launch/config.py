"""Launch options from a config file (TOML or JSON) merged with command-line values.

The file holds `LaunchOptions` fields at the top level (`time` may replace `timeout_min`, in
sbatch syntax) and `SlurmOptions` fields in a `slurm` table, e.g.

    executor = "slurm"
    time = "12:00:00"
    units_per_task = 2
    [slurm]
    partition = "gpu"
    gpus = 1
    cpus = 8
    mem = "64G"
    array_parallelism = 64
    [slurm.sbatch]
    reservation = "ktbench"

Values given on the command line win over the file's.
"""
import dataclasses
import json
from pathlib import Path

from benchmark.launch.launcher import LaunchOptions
from benchmark.launch.slurm import SlurmOptions, parse_time_min
from results.errors import InputError

_LAUNCH_FIELDS = {f.name for f in dataclasses.fields(LaunchOptions)} - {"slurm", "progress"}
_SLURM_FIELDS = {f.name for f in dataclasses.fields(SlurmOptions)}


def _parse_toml(text: str) -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:     # Python 3.10
        raise InputError("TOML config files need Python 3.11 or later; use JSON") from None
    return tomllib.loads(text)


_PARSERS = {".toml": _parse_toml, ".json": json.loads}


def read_config(path) -> dict:
    path = Path(path)
    if path.suffix not in _PARSERS:
        raise InputError(f"config {path} must end in {' or '.join(_PARSERS)}")
    if not path.is_file():
        raise InputError(f"config {path} does not exist")
    try:
        config = _PARSERS[path.suffix](path.read_text())
    except ValueError as e:    # tomllib.TOMLDecodeError and json.JSONDecodeError
        raise InputError(f"config {path} is not valid {path.suffix[1:].upper()}: {e}") from None
    _check_keys(config, _LAUNCH_FIELDS | {"time", "slurm"}, str(path))
    _check_keys(config.get("slurm", {}), _SLURM_FIELDS, f"{path} [slurm]")
    return config


def _check_keys(table, allowed: set, where: str):
    if not isinstance(table, dict):
        raise InputError(f"{where} must be a table of options")
    if unknown := set(table) - allowed:
        raise InputError(f"{where}: unknown option(s) {', '.join(sorted(unknown))}; "
                         f"known: {', '.join(sorted(allowed))}")


def launch_options(config: dict, overrides: dict, slurm_overrides: dict,
                   progress: bool = True) -> LaunchOptions:
    """The config's options with `overrides` (LaunchOptions fields, or `time`) and
    `slurm_overrides` (SlurmOptions fields) on top; None values are not given."""
    merged = {**config, **{k: v for k, v in overrides.items() if v is not None}}
    slurm = dict(merged.pop("slurm", {}))
    sbatch = {**slurm.get("sbatch", {}), **(slurm_overrides.get("sbatch") or {})}
    slurm.update({k: v for k, v in slurm_overrides.items() if v is not None}, sbatch=sbatch)
    if "time" in merged:
        time = merged.pop("time")
        merged["timeout_min"] = time if isinstance(time, int) else parse_time_min(str(time))
    return LaunchOptions(**merged, progress=progress, slurm=SlurmOptions(**slurm))
