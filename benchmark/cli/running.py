"""`ktbench launch`, `status`, `demo` and `import-predictions`: running a plan's units, or
writing predictions made elsewhere as if they had run."""
import time
from dataclasses import dataclass
from pathlib import Path

from analysis import format_table
from benchmark.cli.common import (DEMO_METHODS, add_common, cache_folder, check_writable,
                                  results_folder)
from benchmark.cli.dataset_args import add_dataset_arguments, study_zoo
from benchmark.cli.launch_args import options_from_args
from benchmark.cli.planning import plan_of_pairs
from pairs import get_zoo
from pairs.plan import all_pairs, random_pairs, read_plan, write_plan
from pairs.probe import is_probed
from results import InputError, ResultsLayout, query
from results.verify import quarantine_unreadable

DEMO_TABLES = ("success_rate", "methods_vs_controls", "gain_over_controls", "paper_reference",
               "complementary_knowledge", "pair_deltas")
PROBE_TABLES = ("probes", "success_rate_by_dataset")     # a demo on another dataset adds these


@dataclass(frozen=True)
class DemoStudy:
    """What `ktbench demo` runs: a zoo, its pairs (`pairs`: a random sample of that many, or
    None for every ordered pair), the default methods and the seeds."""
    zoo: str
    pairs: int | None
    methods: str
    seeds: str
    plan_name: str


# The fast demo: the briefly trained micro zoo, where further training alone gains too.
DEMO = DemoStudy("micro", 6, DEMO_METHODS, "0", "demo")
# The converged study (docs/reproduce.md): every ordered pair of a zoo trained to convergence,
# the paper's methods beside both controls, two seeds.
STUDY = DemoStudy("micro_converged", None, "kl,kl_dp,kl_dp_unsup,xe_finetune,random_teacher",
                  "0,1", "study")


def _launch(plan, args) -> dict:
    from benchmark.launch.launcher import launch
    options = options_from_args(args)
    results_dir = results_folder(args)
    check_writable(results_dir)
    quarantine_unreadable(results_dir)   # a truncated part must not break the whole table
    summary = launch(plan, results_dir, cache_folder(args), options)
    for stage, counts in summary.items():
        if counts.get("blocked_by"):
            print(f"{stage:>9}: not run: every {counts['blocked_by']} unit it needs failed")
            continue
        print(f"{stage:>9}: {counts['submitted']} submitted"
              + (f", {counts['failed']} failed" if options.wait else "")
              + (f", {counts['held']} held by {_jobs(counts['held_by'])} of another launch"
                 if counts["held"] else ""))
        for error in counts["errors"]:
            print(f"{'':>11}{error.count} x {error.message}\n{'':>11}  log: {error.log}")
    if any(counts["errors"] for counts in summary.values()):
        print(f"every failure, with its traceback: ktbench query --results {results_dir} "
              '"SELECT stage, unit, message, error FROM unit_failures"')
    if not options.wait:
        print(f"follow it with: ktbench status PLAN --wait --results {results_dir}")
    return summary


def _jobs(job_ids: list[str], shown: int = 5) -> str:
    more = f" and {len(job_ids) - shown} more" if len(job_ids) > shown else ""
    return f"live job{'s' * (len(job_ids) > 1)} {', '.join(job_ids[:shown])}{more}"


def cmd_launch(args):
    summary = _launch(read_plan(args.plan), args)
    return 1 if any(c["failed"] for c in summary.values()) else 0


def cmd_status(args):
    from benchmark.launch.status import plan_status, wait_for_plan
    results_dir = results_folder(args)
    quarantine_unreadable(results_dir)
    if args.plan:
        plan = read_plan(args.plan)
        status = (wait_for_plan(plan, results_dir, progress=not args.quiet) if args.wait
                  else plan_status(plan, results_dir))
        print(f"plan {plan['plan'][0]}: {len(plan)} transfer units")
        print(format_table(status.rename_axis("stage").reset_index()))
        return 1 if args.wait and status["failed"].sum() else 0
    if args.wait:
        raise InputError("--wait needs a PLAN")
    for table in ("models", "pair_stats", "transfer_runs"):
        n = query(results_dir, f"SELECT count(*) AS n FROM {table}")["n"][0]
        print(f"{table:>14}: {n} rows")
    return 0


def cmd_demo(args):
    from analysis import write_tables
    study = STUDY if args.study else DEMO
    zoo = study_zoo(study.zoo, args)
    results_dir = results_folder(args)
    check_writable(results_dir)
    t0 = time.perf_counter()
    names = [m.name for m in zoo.models]
    n_pairs = args.pairs or study.pairs
    pairs = (random_pairs(names, n_pairs, args.seed) if n_pairs
             else all_pairs(names))
    plan = plan_of_pairs(zoo, pairs, args, seeds=study.seeds, compat=None,
                         default_methods=study.methods)
    plan_path = write_plan(plan, ResultsLayout(results_dir).plan(study.plan_name))
    print(f"{study.plan_name}: {zoo.name} zoo ({len(zoo.models)} models on {zoo.dataset}), "
          f"{len(plan)} transfer units -> {plan_path}")
    if zoo.about:
        print(f"the zoo: {zoo.about}")
    summary = _launch(plan, args)
    held = sum(c["held"] for c in summary.values())
    if held:
        print(f"\n{held} unit(s) still run in another launch's jobs: the tables would be "
              f"incomplete. When they end: ktbench tables --results {results_dir}")
    else:
        tables = DEMO_TABLES + (PROBE_TABLES if is_probed(zoo.name) else ())
        print("\n" + write_tables(results_dir, None, "markdown", list(tables)))
        print(f"\nevery table: ktbench tables --results {results_dir}; figures and tables in "
              f"one page: ktbench report --results {results_dir}; how related each pair's top "
              f"classes are: ktbench similarity --results {results_dir} (CLIP weights: the hub, "
              f"or --weights)")
    print(f"\nParquet results: {results_dir.resolve()}  ({time.perf_counter() - t0:.0f} s)")
    print(f"query them: ktbench query --results {results_dir} \"SELECT * FROM transfer_runs\"")
    return 1 if any(c["failed"] for c in summary.values()) else 0


def cmd_import_predictions(args):
    from benchmark.units.import_checks import GivenPreprocessing
    from benchmark.units.import_predictions import import_predictions
    zoo = get_zoo(args.zoo)
    results_dir = results_folder(args)
    check_writable(results_dir)
    given = GivenPreprocessing(args.img_size, args.crop_pct, args.interpolation)
    for item in import_predictions([Path(f) for f in args.files], zoo, results_dir, args.model,
                                   given, None if args.no_check else cache_folder(args)):
        p_true = (f", p_true unknown for {item.unknown_p_true} (true class outside the top "
                  f"{item.k})" if item.unknown_p_true else "")
        spot = ("not spot-checked" if item.spot_agreement is None else
                f"spot check {item.spot_agreement:.0%} agree")
        print(f"{item.entry.name}: top-1 {item.row['top1']:.2f}% on {item.row['n_eval']} samples"
              f"{p_true} at {item.preprocessing}, {spot} <- {item.path}")
    print(f"predictions of {len(args.files)} models on {zoo.dataset} -> {results_dir}; a launch "
          "of a plan over them starts at stats")
    return 0


def add_demo(sub):
    p = sub.add_parser("demo", help="micro zoo -> plan -> launch -> tables, offline")
    add_common(p, launch=True, methods=True)
    p.add_argument("--study", action="store_true",
                   help=f"the converged study instead: the {STUDY.zoo} zoo, every ordered pair, "
                        f"{STUDY.methods}, seeds {STUDY.seeds} (docs/reproduce.md; about 12 min "
                        "on 2 cores)")
    p.add_argument("--pairs", type=int,
                   help=f"random teacher-student pairs (default {DEMO.pairs}, which keep a warm "
                        "demo near 2.5 min on 2 cores; with --study, every ordered pair)")
    add_dataset_arguments(p)
    p.set_defaults(func=cmd_demo)


def add_launch(sub):
    p = sub.add_parser("launch", help="run a plan's pending units through submitit")
    p.add_argument("plan")
    add_common(p, launch=True)
    p.set_defaults(func=cmd_launch)


def add_status(sub):
    p = sub.add_parser("status", help="done / running / pending / failed units per stage")
    p.add_argument("plan", nargs="?")
    p.add_argument("--wait", action="store_true",
                   help="follow the plan with a progress bar until no job holds its units")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_common(p)
    p.set_defaults(func=cmd_status)


def add_import_predictions(sub):
    p = sub.add_parser("import-predictions",
                       help="timm inference.py outputs (CSV or Parquet, one file per model) as "
                            "predictions: stats without a forward pass")
    p.add_argument("files", nargs="+", metavar="FILE",
                   help="<model>.csv / <model>-<img_size>.csv (or .parquet), as inference.py "
                        "names its output")
    p.add_argument("--zoo", required=True, help="the zoo of the models (its dataset: the eval "
                                                "split the files were made on)")
    p.add_argument("--model", help="the model of the one FILE (default: from its name)")
    p.add_argument("--img-size", type=int, help="inference.py's --img-size (default: from the "
                   "file name, else inference.py's default for the model)")
    p.add_argument("--crop-pct", type=float, help="inference.py's --crop-pct (default: "
                   "inference.py's default for the model)")
    p.add_argument("--interpolation", help="inference.py's --interpolation (default: "
                   "inference.py's default for the model)")
    p.add_argument("--no-check", action="store_true", help="skip the spot check of a few dozen "
                   "samples against the model (when its weights are at hand)")
    add_common(p)
    p.set_defaults(func=cmd_import_predictions)
