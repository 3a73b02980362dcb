"""What every command shares: the results and cache folders the command line names, the check
that a folder can be written, the plugins it imports, and the options most commands take."""
import os
import uuid
from pathlib import Path

from benchmark.cli.launch_args import add_launch_arguments
from pairs.catalog import PLUGINS_ENV, load_plugins
from results import InputError, default_results_dir

# two methods and a control, 18 units as before the control came (a control unit costs about
# 0.85 of a KL one): a gain counts as transfer only beyond plain fine-tuning, and 6 pairs are
# the fewest a paired test can find significant (p = 2 / 2^6)
DEMO_METHODS = "kl,kl_dp,xe_finetune"


def results_folder(args) -> Path:
    return Path(args.results) if args.results else default_results_dir()


def cache_folder(args) -> Path:
    from benchmark.paths import cache_dir
    return cache_dir(args.cache)


def check_writable(folder: Path):
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-probe-{uuid.uuid4().hex}"
        probe.touch()
        probe.unlink()
    except OSError as e:
        raise InputError(f"results folder {folder} is not writable ({e.strerror or e})") from None


def use_plugins(args) -> None:
    """`--plugin MODULE`: added to `KTBENCH_PLUGINS`, which this process and every job it
    starts (they inherit its environment) import before they resolve a zoo."""
    plugins = getattr(args, "plugin", None)
    if plugins:
        given = [n for n in os.environ.get(PLUGINS_ENV, "").split(",") if n]
        os.environ[PLUGINS_ENV] = ",".join(dict.fromkeys(given + plugins))
        load_plugins()


def add_common(p, launch=False, methods=False):
    p.add_argument("--results", help="results folder (default: $KTBENCH_RESULTS or "
                                     "./ktbench-results)")
    p.add_argument("--plugin", action="append", metavar="MODULE",
                   help="a module to import first, which registers zoos (or datasets) that "
                        "need code; jobs import it too (repeatable; adds to $KTBENCH_PLUGINS)")
    p.add_argument("--cache", help="cache folder (default: $KTBENCH_CACHE or ~/.cache/ktbench)")
    if launch:
        add_launch_arguments(p)
    if methods:
        p.add_argument("--methods", help=f"comma-separated method names (default {DEMO_METHODS}; "
                                         "with --multi alone, kl_dp)")
        p.add_argument("--seed", type=int, default=0, help="seed of the random pair sample")
        p.add_argument("--epochs", type=int)
        p.add_argument("--lr", type=float)
        p.add_argument("--batch-size", type=int)
        p.add_argument("--params", help="JSON of method parameters, e.g. '{\"T\": 2.0}'")
