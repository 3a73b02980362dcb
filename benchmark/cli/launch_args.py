"""The command-line options of `ktbench launch` (and `demo`): executor, packing, SLURM, config."""
import argparse

from pairs.plan import KEEP_STUDENTS
from results.errors import InputError


def _sbatch_option(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"--sbatch takes NAME=VALUE, got {text!r}")
    return name.lstrip("-"), value


def add_launch_arguments(p: argparse.ArgumentParser):
    p.add_argument("--config", help="launch options from a TOML or JSON file (flags win)")
    p.add_argument("--executor", help="local | debug | slurm (default local)")
    p.add_argument("--tasks", type=int, help="tasks per stage (default: one per core locally, "
                                             "one per GPU on a GPU machine, one per unit on "
                                             "SLURM)")
    p.add_argument("--units-per-task", type=int, help="pack this many units into each task")
    p.add_argument("--threads", type=int, help="torch threads per task")
    p.add_argument("--time", help="time limit per task, as sbatch: minutes, MM:SS, HH:MM:SS, "
                                  "D-HH[:MM[:SS]] "
                                  "(default 24:00:00)")
    p.add_argument("--retry-failed", action="store_true", default=None,
                   help="run failed units again")
    p.add_argument("--no-wait", dest="wait", action="store_false", default=None,
                   help="SLURM: submit every stage at once, chained by dependencies, and return")
    p.add_argument("--strict-top1", action="store_true", default=None,
                   help="fail a model whose measured top-1 is more than 5 points off the "
                        "reported one (default: flag it in the log and the model_accuracy table)")
    p.add_argument("--keep-students", choices=KEEP_STUDENTS,
                   help="which transfer units keep their final student on disk (about 4 bytes a "
                        "parameter each): none, soup (default: the ingredients of the plan's "
                        "soups) or all single-teacher units")
    p.add_argument("--no-compact", dest="compact", action="store_false", default=None,
                   help="leave each stage's result parts as they are (default: compact them "
                        "when the stage ends)")
    p.add_argument("--log", help="mirror each transfer unit's per-epoch metrics to these trackers "
                                 "(comma-separated: wandb, tensorboard), the unit key as run id")
    p.add_argument("--log-dir", help="the trackers' folder (default: RESULTS/trackers)")
    p.add_argument("--weights-dir", help="folder of weight files named by model "
                                         "(sets $KTBENCH_WEIGHTS_DIR for the jobs)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    slurm = p.add_argument_group("SLURM (with --executor slurm)")
    slurm.add_argument("--partition")
    slurm.add_argument("--gpus", type=int, help="GPUs per task")
    slurm.add_argument("--cpus", type=int, help="CPUs per task (default: --threads)")
    slurm.add_argument("--mem", help="memory per task, e.g. 32G")
    slurm.add_argument("--account")
    slurm.add_argument("--qos")
    slurm.add_argument("--constraint")
    slurm.add_argument("--array-parallelism", type=int, help="tasks of one array run at once")
    slurm.add_argument("--max-array-size", type=int,
                       help="tasks per job array (default: the cluster's MaxArraySize)")
    slurm.add_argument("--sbatch", action="append", type=_sbatch_option, metavar="NAME=VALUE",
                       help="any other sbatch option (repeatable), e.g. --sbatch reservation=kt")


def options_from_args(args):
    """`LaunchOptions` from `--config` with the flags given on top."""
    import os
    from benchmark.launch.config import launch_options, read_config   # imports torch
    if args.weights_dir:
        if not os.path.isdir(args.weights_dir):
            raise InputError(f"--weights-dir {args.weights_dir}: no such folder")
        os.environ["KTBENCH_WEIGHTS_DIR"] = os.path.abspath(args.weights_dir)
    config = read_config(args.config) if args.config else {}
    overrides = {name: getattr(args, name) for name in
                 ("executor", "tasks", "units_per_task", "threads", "time", "retry_failed",
                  "strict_top1", "wait", "compact", "keep_students", "log", "log_dir")}
    slurm = {name: getattr(args, name) for name in
             ("partition", "gpus", "cpus", "mem", "account", "qos", "constraint",
              "array_parallelism", "max_array_size")}
    slurm["sbatch"] = dict(args.sbatch or [])
    return launch_options(config, overrides, slurm, progress=not args.quiet)
