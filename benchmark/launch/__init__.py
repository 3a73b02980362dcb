"""Launching a plan: what is left to run (`pending`, no torch), pending units per stage packed
into submitit jobs (`launcher`), what one task runs (`jobs`), SLURM options and arrays
(`slurm`), which job holds which unit (`submissions`), where a plan stands (`status`) and
launch config files (`config`). Names load on first use.
"""
from typing import TYPE_CHECKING

from results.lazy import lazy_exports

if TYPE_CHECKING:        # the face's names (results.lazy: loaded on first use)
    from benchmark.launch.config import launch_options, read_config
    from benchmark.launch.launcher import LaunchOptions, launch
    from benchmark.launch.pending import pending_units
    from benchmark.launch.slurm import SlurmOptions
    from benchmark.launch.status import STAGES, plan_status, wait_for_plan

__getattr__, __all__ = lazy_exports(__name__, __file__)
