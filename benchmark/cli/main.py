"""`ktbench`: one console script, one subcommand per step of the pipeline.

Bad input ends with one line on stderr and exit code 2; a run that failed exits with 1.

Light at import: the parser and the helpers imported here load neither pandas nor torch; each
subcommand imports its heavier work when it runs, so `ktbench query` and `--help` start without
them (tests/test_cli.py checks).
"""
import argparse
import json
import sys
import time
import uuid
from pathlib import Path

from analysis import TABLE_NAMES, format_table, run_query_arrow, write_result
from benchmark.cli import plan_args
from benchmark.cli import predictors as cli_predictors
from benchmark.cli.launch_args import add_launch_arguments, options_from_args
from pairs import get_zoo
from pairs.plan import (KEEP_STUDENTS, Plan, PlanError, make_plan, random_pairs, read_plan,
                        write_plan)
from pairs.strategies import plan_pairs
from results import TABLES, default_results_dir, query
from results.verify import quarantine_unreadable

# two methods and a control, 18 units as before the control came (a control unit costs about
# 0.85 of a KL one): a gain counts as transfer only beyond plain fine-tuning, and 6 pairs are
# the fewest a paired test can find significant (p = 2 / 2^6)
DEMO_METHODS = "kl,kl_dp,xe_finetune"
DEMO_TABLES = ("success_rate", "methods_vs_controls", "gain_over_controls", "paper_reference",
               "complementary_knowledge", "pair_deltas")


class UserError(Exception):
    """Bad input: reported as one line, exit code 2."""


def _results(args) -> Path:
    return Path(args.results) if args.results else default_results_dir()


def _cache(args) -> Path:
    from benchmark.paths import cache_dir
    return cache_dir(args.cache)


def _check_writable(folder: Path):
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-probe-{uuid.uuid4().hex}"
        probe.touch()
        probe.unlink()
    except OSError as e:
        raise UserError(f"results folder {folder} is not writable ({e.strerror or e})") from None


def _methods(names: str, zoo, args) -> dict[str, dict]:
    from benchmark.methods import resolve_params
    overrides = {k: v for k, v in (("epochs", args.epochs), ("lr", args.lr),
                                   ("batch_size", args.batch_size)) if v is not None}
    if args.params:
        try:
            overrides.update(json.loads(args.params))
        except json.JSONDecodeError as e:
            raise UserError(f"--params is not valid JSON: {e}") from None
    methods = [m for m in names.split(",") if m]
    if not methods:
        raise UserError("--methods lists no method")
    return {m: resolve_params(m, zoo.transfer_defaults, overrides) for m in methods}


def _plan_of_pairs(zoo, pairs, args, seeds: str, compat):
    seeds = [int(s) for s in str(seeds).split(",")]
    return make_plan(zoo, pairs, _methods(args.methods or DEMO_METHODS, zoo, args), seeds, compat)


def _multi_plans(zoo, args) -> list:
    """`--multi STUDENT:T1,T2,...` (repeatable) x `--modes`, kl_dp unless --methods is given."""
    from benchmark.methods import partition_methods
    from pairs.multi import make_multi_plan, parse_multi
    methods = _methods(args.methods or "kl_dp", zoo, args)
    seeds = [int(s) for s in str(args.seeds).split(",")]
    modes = [m for m in args.modes.split(",") if m]
    return [make_multi_plan(zoo, *parse_multi(spec), modes, methods, seeds, args.compat,
                            partition_methods=partition_methods()) for spec in args.multi]


def cmd_plan(args):
    from benchmark.cli import plan_tables
    strategy = plan_args.strategy_name(args)
    if strategy is None and not args.multi:
        raise UserError("give --pairs N or --all, or a --strategy, or --multi")
    if not args.out and not args.dry_run:
        raise UserError("give --out PLAN.parquet, or --dry-run to count without writing")
    zoo = get_zoo(args.zoo)
    results_dir = _results(args)
    table = plan_tables.models_table(zoo, args, results_dir)
    plans = []
    if strategy is not None:
        request = cli_predictors.planner_request(
            strategy, plan_args.pair_request(args, zoo, results_dir), results_dir, zoo.dataset)
        pairs = plan_pairs(strategy, table, request)
        plans.append(_plan_of_pairs(zoo, pairs, args, args.seeds, args.compat))
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


def _launch(plan, args) -> dict:
    from benchmark.launch.launcher import launch
    options = options_from_args(args)
    results_dir = _results(args)
    _check_writable(results_dir)
    quarantine_unreadable(results_dir)   # a truncated part must not break the whole table
    summary = launch(plan, results_dir, _cache(args), options)
    for stage, counts in summary.items():
        print(f"{stage:>9}: {counts['submitted']} submitted"
              + (f", {counts['failed']} failed" if options.wait else "")
              + (f", {counts['held']} held by {_jobs(counts['held_by'])} of another launch"
                 if counts["held"] else ""))
    if not options.wait:
        print(f"follow it with: ktbench status PLAN --wait --results {results_dir}")
    return summary


def _jobs(job_ids: list[str], shown: int = 5) -> str:
    more = f" and {len(job_ids) - shown} more" if len(job_ids) > shown else ""
    return f"live job{'s' * (len(job_ids) > 1)} {', '.join(job_ids[:shown])}{more}"


def cmd_launch(args):
    summary = _launch(read_plan(args.plan), args)
    if any(c["failed"] for c in summary.values()):
        return 1
    return 0


def cmd_verify(args):
    from results.verify import verify
    report = verify(_results(args), fix=args.fix)
    if not args.fix:
        for problem in report.problems:
            print(problem.line())
    print(report.summary() + (" (moved aside)" if args.fix and report.problems else ""))
    return 1 if report.problems and not args.fix else 0


def cmd_compact(args):
    from results.compact import Busy, compact
    results_dir = _results(args)
    t0 = time.perf_counter()
    try:
        try:
            reports = compact(results_dir, args.table, wait=False)
        except Busy as e:
            print(f"{e}: waiting for it")
            reports = compact(results_dir, args.table)
    except PermissionError as e:
        raise UserError(f"cannot compact {results_dir} ({e.strerror}: {e.filename})") from None
    for report in reports:
        print(report.line())
    if not reports:
        print(f"nothing to compact in {results_dir}")
    print(f"({time.perf_counter() - t0:.1f} s)")
    return 0


def cmd_status(args):
    from benchmark.launch.status import plan_status, wait_for_plan
    results_dir = _results(args)
    quarantine_unreadable(results_dir)
    if args.plan:
        plan = read_plan(args.plan)
        status = (wait_for_plan(plan, results_dir, progress=not args.quiet) if args.wait
                  else plan_status(plan, results_dir))
        print(f"plan {plan['plan'][0]}: {len(plan)} transfer units")
        print(format_table(status.rename_axis("stage").reset_index()))
        return 1 if args.wait and status["failed"].sum() else 0
    if args.wait:
        raise UserError("--wait needs a PLAN")
    for table in ("models", "pair_stats", "transfer_runs"):
        n = query(results_dir, f"SELECT count(*) AS n FROM {table}")["n"][0]
        print(f"{table:>14}: {n} rows")
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


def cmd_zoo(args):
    from benchmark.cli import plan_tables
    if args.action == "list" and not args.zoo:
        print(format_table(plan_tables.zoos_table(), args.format))
        return 0
    zoo = get_zoo(args.zoo or "micro")
    if args.action == "build":
        from benchmark.models.microzoo import ensure_zoo_weights
        ensure_zoo_weights(zoo, _cache(args))
    table = plan_tables.models_table(zoo, args, _results(args))
    print(format_table(plan_tables.show_table(table, args.format), args.format))
    return 0


def cmd_tables(args):
    from analysis import write_tables
    names = getattr(args, "table", None) or TABLE_NAMES
    result = write_tables(_results(args), args.out, args.format, names)
    if args.out:
        print(f"wrote {len(result)} tables to {args.out}")
    else:
        print("\n" + result)
    return 0


def cmd_query(args):
    result = run_query_arrow(_results(args), args.sql)
    if args.out:
        print(f"wrote {len(result)} rows to {write_result(result, args.out)}")
    else:
        print(format_table(result, args.format))
    return 0


def cmd_figures(args):
    out = Path(args.out) if args.out else _results(args) / "figures"
    from analysis.figures import make_figures
    try:
        written = make_figures(_results(args), out)
    except OSError as e:
        raise UserError(f"cannot write figures to {out} ({e.strerror or e})") from None
    print(f"wrote {len(written)} files ({len(written) // 2} figures, PNG and PDF) to {out}")
    return 0


def cmd_report(args):
    out = Path(args.out) if args.out else _results(args) / "report.html"
    from analysis.report import build_report
    try:
        print(f"wrote {build_report(_results(args), out)}")
    except OSError as e:
        raise UserError(f"cannot write the report to {out} ({e.strerror or e})") from None
    return 0


def cmd_similarity(args):
    from benchmark.semantics import run_similarity
    summary = run_similarity(_results(args), args.encoder, args.weights,
                             [args.dataset] if args.dataset else None, args.draws, args.seed,
                             args.device)
    print(f"similarity: {summary['seconds']:.1f} s")
    cmd_tables(argparse.Namespace(results=args.results, format="markdown", out=None,
                                  table=["class_similarity"]))
    return 0


def cmd_demo(args):
    zoo = get_zoo("micro")
    results_dir = _results(args)
    _check_writable(results_dir)
    t0 = time.perf_counter()
    pairs = random_pairs([m.name for m in zoo.models], args.pairs, args.seed)
    plan = _plan_of_pairs(zoo, pairs, args, seeds="0", compat=None)
    plan_path = write_plan(plan, results_dir / "plans" / "demo.parquet")
    print(f"demo: micro zoo ({len(zoo.models)} models on {zoo.dataset}), {len(plan)} transfer "
          f"units -> {plan_path}")
    summary = _launch(plan, args)
    held = sum(c["held"] for c in summary.values())
    if held:
        print(f"\n{held} unit(s) still run in another launch's jobs: the tables would be "
              f"incomplete. When they end: ktbench tables --results {results_dir}")
    else:
        cmd_tables(argparse.Namespace(results=str(results_dir), format="markdown", out=None,
                                      table=list(DEMO_TABLES)))
        print(f"\nevery table: ktbench tables --results {results_dir}; figures and tables in "
              f"one page: ktbench report --results {results_dir}; how related each pair's top "
              f"classes are: ktbench similarity --results {results_dir} (CLIP weights: the hub, "
              f"or --weights)")
    print(f"\nParquet results: {results_dir.resolve()}  ({time.perf_counter() - t0:.0f} s)")
    print(f"query them: ktbench query --results {results_dir} \"SELECT * FROM transfer_runs\"")
    return 1 if any(c["failed"] for c in summary.values()) else 0


def cmd_import_predictions(args):
    from benchmark.units.import_predictions import import_predictions
    zoo = get_zoo(args.zoo)
    results_dir = _results(args)
    _check_writable(results_dir)
    for item in import_predictions([Path(f) for f in args.files], zoo, results_dir, args.model):
        p_true = (f", p_true unknown for {item.unknown_p_true} (true class outside the top "
                  f"{item.k})" if item.unknown_p_true else "")
        print(f"{item.entry.name}: top-1 {item.row['top1']:.2f}% on {item.row['n_eval']} samples"
              f"{p_true} <- {item.path}")
    print(f"predictions of {len(args.files)} models on {zoo.dataset} -> {results_dir}; a launch "
          "of a plan over them starts at stats")
    return 0


def cmd_bench(args):
    from benchmark.perf import BenchConfig, run_benchmarks
    out = Path(args.out) if args.out else _results(args)
    _check_writable(out)
    config = BenchConfig(cache=_cache(args), quick=args.quick, threads=args.threads,
                         repeats=args.repeats, device=args.device, units=args.units)
    return run_benchmarks(args.names, out, config)


class _Version(argparse.Action):
    """`--version`: asks git for the code version when given, not when the parser is built."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS,
                 help="show program's version number and exit"):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        from benchmark.version import code_version
        print(f"{parser.prog} {code_version()}")
        parser.exit()


def _add_common(p, launch=False, methods=False):
    p.add_argument("--results", help="results folder (default: $KTBENCH_RESULTS or "
                                     "./ktbench-results)")
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


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="ktbench", description=__doc__.splitlines()[0])
    ap.add_argument("--version", action=_Version)
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="micro zoo -> plan -> launch -> tables, offline")
    _add_common(p, launch=True, methods=True)
    p.add_argument("--pairs", type=int, default=6,
                   help="random teacher-student pairs (6 keep a warm demo near 4 min on 2 cores)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("zoo", help="list zoos, show (a filtered catalog) or build one")
    p.add_argument("action", choices=["list", "show", "build"])
    p.add_argument("--zoo")
    p.add_argument("--format", default="markdown", choices=["markdown", "csv"])
    plan_args.add_catalog_arguments(p)
    _add_common(p)
    p.set_defaults(func=cmd_zoo)

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
    _add_common(p, methods=True)
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("launch", help="run a plan's pending units through submitit")
    p.add_argument("plan")
    _add_common(p, launch=True)
    p.set_defaults(func=cmd_launch)

    p = sub.add_parser("status", help="done / running / pending / failed units per stage")
    p.add_argument("plan", nargs="?")
    p.add_argument("--wait", action="store_true",
                   help="follow the plan with a progress bar until no job holds its units")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_common(p)
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("verify", help="check every result part and checkpoint; --fix moves "
                                      "bad ones into <results>/quarantine/")
    p.add_argument("--fix", action="store_true", help="move bad files aside (they rerun)")
    _add_common(p)
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("compact", help="merge each table's parts into a few large files "
                                       "(safe beside running jobs)")
    p.add_argument("--table", action="append", choices=list(TABLES), metavar="NAME",
                   help="only this table (repeatable); default every table")
    _add_common(p)
    p.set_defaults(func=cmd_compact)

    p = sub.add_parser("methods", help="transfer methods and their defaults")
    p.set_defaults(func=cmd_methods)

    p = sub.add_parser("tables", help="the paper's tables from the results, through DuckDB")
    p.add_argument("--format", default="markdown", choices=["markdown", "csv", "latex"])
    p.add_argument("--out", help="write one file per table into this folder")
    p.add_argument("--table", action="append", choices=TABLE_NAMES, metavar="NAME",
                   help="only this table (repeatable); default all: " + ", ".join(TABLE_NAMES))
    _add_common(p)
    p.set_defaults(func=cmd_tables)

    p = sub.add_parser("query", help="ad-hoc read-only SQL over the results tables (views)")
    p.add_argument("sql", help="one SELECT / WITH / PIVOT / DESCRIBE statement")
    p.add_argument("--format", default="markdown", choices=["markdown", "csv", "latex"])
    p.add_argument("--out", help="write the result to FILE (.csv, .parquet, .md or .tex)")
    _add_common(p)
    p.set_defaults(func=cmd_query)

    p = sub.add_parser("predictors", help="transferability predictors and teacher sets from "
                                          "cached features, and their correlation with transfer")
    cli_predictors.add_arguments(p)
    _add_common(p)
    p.set_defaults(func=lambda args: cli_predictors.run(args, _results(args), _cache(args)))

    p = sub.add_parser("similarity", help="embed class names with a text encoder and score how "
                                          "related each pair's top-p%% classes are")
    from benchmark.semantics.encoders import DEFAULT_ENCODER, list_text_encoders
    p.add_argument("--encoder", default=DEFAULT_ENCODER, choices=list_text_encoders(),
                   help=f"text encoder (default {DEFAULT_ENCODER})")
    p.add_argument("--weights", help="the encoder's weight file, or 'random' (plumbing only; "
                                     "default: $KTBENCH_WEIGHTS_DIR/<encoder>.*, else the hub)")
    p.add_argument("--dataset", help="only this dataset (default: every one with pair statistics)")
    p.add_argument("--draws", type=int, default=1000,
                   help="random class sets per size, for the baseline (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random class sets")
    p.add_argument("--device", default="cpu", help="device of the text encoder (default cpu)")
    _add_common(p)
    p.set_defaults(func=cmd_similarity)

    p = sub.add_parser("figures", help="the paper's figures as PNG and PDF (matplotlib)")
    p.add_argument("--out", help="folder for the figures (default: RESULTS/figures)")
    _add_common(p)
    p.set_defaults(func=cmd_figures)

    p = sub.add_parser("report", help="one self-contained HTML page: every table and figure")
    p.add_argument("--out", help="the HTML file (default: RESULTS/report.html)")
    _add_common(p)
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("import-predictions",
                       help="timm inference.py outputs (CSV or Parquet, one file per model) as "
                            "predictions: stats without a forward pass")
    p.add_argument("files", nargs="+", metavar="FILE",
                   help="<model>.csv / <model>-<img_size>.csv (or .parquet), as inference.py "
                        "names its output")
    p.add_argument("--zoo", required=True, help="the zoo of the models (its dataset: the eval "
                                                "split the files were made on)")
    p.add_argument("--model", help="the model of the one FILE (default: from its name)")
    _add_common(p)
    p.set_defaults(func=cmd_import_predictions)

    p = sub.add_parser("bench", help="performance benchmarks with targets -> OUT/benchmarks/")
    p.add_argument("names", nargs="*", metavar="NAME",
                   help="stats, transfer, sharing, gpu (default: these); demo, scale (opt-in, "
                        "minutes)")
    p.add_argument("--out", help="folder for the benchmarks table (default: the results folder)")
    p.add_argument("--quick", action="store_true", help="tiny sizes: check the harness only")
    p.add_argument("--threads", type=int, help="torch threads (default: 1 for transfer steps)")
    p.add_argument("--repeats", type=int, help="repetitions per measurement")
    p.add_argument("--device", help="gpu benchmark's device, e.g. cpu for a dry run")
    p.add_argument("--units", type=int, help="scale benchmark: transfer units in its results "
                                             "folder (default 100000)")
    _add_common(p)
    p.set_defaults(func=cmd_bench)
    return ap


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except (UserError, PlanError, KeyError, ValueError, FileNotFoundError) as e:
        message = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
        print(f"ktbench: error: {message}", file=sys.stderr)
        return 2

