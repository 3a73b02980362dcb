"""`ktbench plan`, `zoo` and `methods`: what to run."""
import json

from analysis import format_table
from benchmark.cli import plan_args
from benchmark.cli import predictors as cli_predictors
from benchmark.cli.common import DEMO_METHODS, add_common, cache_folder, results_folder
from benchmark.cli.dataset_args import add_dataset_arguments, study_zoo
from pairs import get_zoo
from pairs.catalog import zoo_file_suffix
from pairs.plan import KEEP_STUDENTS, Plan, make_plan, write_plan
from pairs.strategies import plan_pairs
from results import InputError


def plan_of_pairs(zoo, pairs, args, seeds: str, compat, default_methods: str = DEMO_METHODS):
    """The plan of `pairs` x the methods of the command line (`--methods`, else
    `default_methods`, with `--epochs`, `--lr`, `--batch-size`, `--params`) x `seeds`."""
    methods = plan_args.methods_from_args(args.methods or default_methods, zoo, args)
    return make_plan(zoo, pairs, methods, plan_args.seeds_from_args(seeds), compat)


def _multi_plans(zoo, args) -> list:
    """`--multi STUDENT:T1,T2,...` (repeatable) x `--modes`, kl_dp unless --methods is given."""
    from benchmark.methods import partition_methods
    from pairs.multi import make_multi_plan, parse_multi
    methods = plan_args.methods_from_args(args.methods or "kl_dp", zoo, args)
    seeds = plan_args.seeds_from_args(args.seeds)
    modes = [m for m in args.modes.split(",") if m]
    return [make_multi_plan(zoo, *parse_multi(spec), modes, methods, seeds, args.compat,
                            partition_methods=partition_methods()) for spec in args.multi]


def cmd_plan(args):
    from benchmark.cli import plan_tables
    strategy = plan_args.strategy_name(args)
    if strategy is None and not args.multi:
        raise InputError("give --pairs N or --all, or a --strategy, or --multi")
    if not args.out and not args.dry_run:
        raise InputError("give --out PLAN.parquet, or --dry-run to count without writing")
    zoo = study_zoo(args.zoo, args)
    results_dir = results_folder(args)
    table = plan_tables.models_table(zoo, args, results_dir)
    plans = []
    if strategy is not None:
        request = cli_predictors.planner_request(
            strategy, plan_args.pair_request(args, zoo, results_dir), results_dir, zoo.dataset)
        pairs = plan_pairs(strategy, table, request)
        plans.append(plan_of_pairs(zoo, pairs, args, args.seeds, args.compat))
    if args.multi:
        from pairs.multi import merge_plans
        plan = merge_plans(plans + _multi_plans(zoo, args))
    else:
        plan = plans[0]
    n_multi = int(plan["mode"].astype(bool).sum())
    print(f"plan {plan['plan'][0]}: {len(plan)} transfer units "
          f"({plan[['teacher', 'student']].drop_duplicates().shape[0]} pairs x "
          f"{plan['method'].nunique()} methods x {plan['seed'].nunique()} seeds"
          + (f"; {n_multi} multi-teacher" if n_multi else "") + ")"
          + ("" if args.dry_run else f" -> {args.out}"))
    if args.dry_run:
        planned = Plan(plan)
        students = plan_tables.kept_student_models(planned, args.keep_students)
        summary = plan_tables.dry_run_summary(planned, table, results_dir, students)
        print(format_table(summary.round({"gpu_hours": 2, "disk_gb": 3})))
        print(f"estimated GPU-hours in all: {summary['gpu_hours'].sum():.2f} "
              "(a rough cost model, see pairs/cost.py)")
        print(f"estimated disk in all: {summary['disk_gb'].sum():.3f} GB, "
              f"{summary['disk_gb'].iloc[-1]:.3f} GB of it final students "
              f"(--keep-students {args.keep_students})")
        return 0
    write_plan(plan, args.out)
    return 0


def _check_catalog_file(name: str) -> int:
    """`zoo show` of a catalog file: each bad row on a line of its own, exit 2 on any."""
    import sys

    from pairs.zoos.catalog_file import read_catalog
    catalog = read_catalog(name)
    for problem in catalog.problems:
        print(f"ktbench: error: catalog {catalog.path}: {problem}", file=sys.stderr)
    return 2 if catalog.problems else 0


def cmd_zoo(args):
    from benchmark.cli import plan_tables
    if args.catalog:
        if args.zoo:
            raise InputError("give the zoo once: ZOO or --zoo")
        args.zoo = args.catalog
    if args.zoo and zoo_file_suffix(args.zoo) and _check_catalog_file(args.zoo):
        return 2
    if args.action == "list" and not args.zoo:
        print(format_table(plan_tables.zoos_table(), args.format))
        return 0
    zoo = get_zoo(args.zoo or "micro")
    if args.action == "build":
        from benchmark.models.microzoo import ensure_zoo_weights
        ensure_zoo_weights(zoo, cache_folder(args))
    table = plan_tables.models_table(zoo, args, results_folder(args))
    print(format_table(plan_tables.show_table(table, args.format), args.format))
    return 0


def cmd_methods(args):
    from benchmark.methods import TRAIN_DEFAULTS, get_method, list_methods
    for name in list_methods():
        method = get_method(name)
        own = {k: v for k, v in method.defaults.items()}
        print(f"{name:<14} {method.description}")
        if own:
            print(f"{'':<14} defaults: {json.dumps(own)}")
    print(f"\nshared defaults: {json.dumps(TRAIN_DEFAULTS)}")
    return 0


def add_zoo(sub):
    p = sub.add_parser("zoo", help="list zoos, show (a filtered catalog) or build one")
    p.add_argument("action", choices=["list", "show", "build"])
    p.add_argument("catalog", nargs="?", metavar="ZOO",
                   help="the zoo (as --zoo): a registered name or a catalog file (CSV, Parquet "
                        "or YAML; show checks each row, one line per bad row, exit 2 on any)")
    p.add_argument("--zoo")
    p.add_argument("--format", default="markdown", choices=["markdown", "csv"])
    plan_args.add_catalog_arguments(p)
    add_common(p)
    p.set_defaults(func=cmd_zoo)


def add_plan(sub):
    p = sub.add_parser("plan", help="write a plan of transfer units (Parquet)")
    p.add_argument("--zoo", required=True)
    p.add_argument("--pairs", type=int, help="number of pairs (random, stratified, top-stats)")
    p.add_argument("--all", action="store_true", help="all ordered pairs (--strategy all)")
    p.add_argument("--seeds", default="0", help="comma-separated training seeds")
    p.add_argument("--compat", choices=["fantasticgains"], help="official-code numbers")
    p.add_argument("--multi", action="append", default=[], metavar="STUDENT:T1,T2,...",
                   help="multi-teacher units of STUDENT with these teachers (repeatable), plus "
                        "their single-teacher units")
    p.add_argument("--modes", default="sequential,parallel,soup",
                   help="multi-teacher modes: sequential (weakest teacher first), "
                        "sequential_desc, parallel, soup")
    p.add_argument("--out")
    p.add_argument("--dry-run", action="store_true",
                   help="print units per stage, estimated GPU-hours and disk; write nothing")
    p.add_argument("--keep-students", choices=KEEP_STUDENTS, default="soup",
                   help="for the disk estimate: which units will keep their final student "
                        "(launch --keep-students; default soup)")
    plan_args.add_catalog_arguments(p)
    plan_args.add_strategy_arguments(p)
    add_dataset_arguments(p)
    add_common(p, methods=True)
    p.set_defaults(func=cmd_plan)


def add_methods(sub):
    p = sub.add_parser("methods", help="transfer methods and their defaults")
    p.set_defaults(func=cmd_methods)
