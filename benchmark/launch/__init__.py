"""Launching a plan: what is left to run (`pending`, no torch), pending units per stage packed
into submitit jobs (`launcher`), what one task runs (`jobs`), SLURM options and arrays
(`slurm`), which job holds which unit (`submissions`), where a plan stands (`status`) and
launch config files (`config`). Names load on first use.
"""
from results.lazy import lazy_exports

_NAMES = {
    "LaunchOptions": "launcher", "launch": "launcher", "pending_units": "pending",
    "STAGES": "status", "plan_status": "status", "wait_for_plan": "status",
    "SlurmOptions": "slurm", "read_config": "config", "launch_options": "config",
}
__all__ = sorted(_NAMES)
__getattr__ = lazy_exports(__name__, _NAMES)
