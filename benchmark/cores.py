"""The cores this process may run on: its CPU affinity (a SLURM allocation, `taskset`), which
can be fewer than the machine has."""
import os


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:         # no affinity on macOS: every core
        return os.cpu_count() or 1
