"""SLURM specifics of a launch: sbatch options, the cluster's array limit, array chunks."""
import dataclasses
import re
import subprocess

from results.errors import InputError

DEFAULT_MAX_ARRAY_SIZE = 1001      # SLURM's own default MaxArraySize


@dataclasses.dataclass
class SlurmOptions:
    partition: str | None = None
    gpus: int | None = None               # GPUs per array task
    cpus: int | None = None               # CPUs per array task (default: the launch's threads)
    mem: str | None = None                # memory per array task, sbatch syntax: "32G"
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    array_parallelism: int | None = None  # tasks of one array running at once
    sbatch: dict = dataclasses.field(default_factory=dict)   # more sbatch options, no dashes
    max_array_size: int | None = None     # overrides the cluster's MaxArraySize
    max_timeouts: int = 3                 # requeues after a time-out (preemptions: unlimited)


# SlurmOptions field -> submitit AutoExecutor parameter (the rest are handled by hand)
_SUBMITIT_NAMES = {"partition": "slurm_partition", "gpus": "gpus_per_node",
                   "mem": "slurm_mem", "account": "slurm_account", "qos": "slurm_qos",
                   "constraint": "slurm_constraint",
                   "array_parallelism": "slurm_array_parallelism",
                   "sbatch": "slurm_additional_parameters"}


def submitit_parameters(options: SlurmOptions) -> dict:
    """The AutoExecutor parameters of the options that are set."""
    return {name: getattr(options, field) for field, name in _SUBMITIT_NAMES.items()
            if getattr(options, field) not in (None, {})}


def cluster_max_array_size() -> int:
    """MaxArraySize from `scontrol show config` (SLURM's default when it cannot be read)."""
    try:
        config = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True,
                                timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return DEFAULT_MAX_ARRAY_SIZE
    found = re.search(r"^MaxArraySize\s*=\s*(\d+)", config, flags=re.MULTILINE)
    return int(found.group(1)) if found else DEFAULT_MAX_ARRAY_SIZE


def array_chunks(tasks: list, max_array_size: int) -> list[list]:
    """Consecutive runs of at most `max_array_size` tasks: one job array each (array indices
    run from 0 to MaxArraySize - 1)."""
    if max_array_size < 1:
        raise InputError(f"max array size must be >= 1, got {max_array_size}")
    return [tasks[i:i + max_array_size] for i in range(0, len(tasks), max_array_size)]


def parse_time_min(text: str) -> int:
    """sbatch --time syntax (minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS) -> minutes,
    rounded up."""
    match = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", text.strip())
    if not match:
        raise InputError(f"time {text!r} is not minutes, MM:SS, HH:MM:SS or D-HH[:MM[:SS]]")
    days, first, second, third = (int(g) if g else 0 for g in match.groups())
    if match.group(1):                       # D-HH[:MM[:SS]]
        seconds = ((days * 24 + first) * 60 + second) * 60 + third
    elif match.group(4):                     # HH:MM:SS
        seconds = (first * 60 + second) * 60 + third
    elif match.group(3):                     # MM:SS
        seconds = first * 60 + second
    else:                                    # minutes
        seconds = first * 60
    return max(1, -(-seconds // 60))
