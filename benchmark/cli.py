"""`ktbench`: one console script, one subcommand per step of the pipeline.

Bad input ends with one line on stderr and exit code 2; a run that failed exits with 1.
"""
import argparse
import json
import sys
import time
import uuid
from pathlib import Path

from analysis import TABLE_NAMES, format_table, run_tables
from pairs import get_zoo, list_zoos
from pairs.plan import PlanError, all_pairs, make_plan, random_pairs, read_plan, write_plan
from results import connect, default_results_dir

DEMO_METHODS = "kl,kl_dp,kl_dp_unsup"


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


def _build_plan(args):
    zoo = get_zoo(args.zoo)
    names = [m.name for m in zoo.models]
    pairs = all_pairs(names) if args.all else random_pairs(names, args.pairs, args.seed)
    seeds = [int(s) for s in str(args.seeds).split(",")]
    return make_plan(zoo, pairs, _methods(args.methods, zoo, args), seeds, args.compat)


def cmd_plan(args):
    if not args.all and args.pairs is None:
        raise UserError("give --pairs N or --all")
    plan = _build_plan(args)
    write_plan(plan, args.out)
    print(f"plan {plan['plan'][0]}: {len(plan)} transfer units "
          f"({plan[['teacher', 'student']].drop_duplicates().shape[0]} pairs x "
          f"{plan['method'].nunique()} methods x {plan['seed'].nunique()} seeds) -> {args.out}")


def _launch(plan, args) -> dict:
    from benchmark.launch import LaunchOptions, launch
    options = LaunchOptions(executor=args.executor, tasks=args.tasks, threads=args.threads,
                            retry_failed=args.retry_failed, progress=not args.quiet)
    results_dir = _results(args)
    _check_writable(results_dir)
    summary = launch(plan, results_dir, _cache(args), options)
    for stage, counts in summary.items():
        print(f"{stage:>9}: {counts['submitted']} submitted, {counts['failed']} failed")
    return summary


def cmd_launch(args):
    summary = _launch(read_plan(args.plan), args)
    if any(c["failed"] for c in summary.values()):
        return 1
    return 0


def cmd_status(args):
    from benchmark.launch import pending_units
    results_dir = _results(args)
    if args.plan:
        plan = read_plan(args.plan)
        pending = pending_units(plan, results_dir)
        con = connect(results_dir)
        runs = con.execute("SELECT key, status FROM transfer_runs").df()
        con.close()
        runs = runs[runs["key"].isin(plan["key"])]
        counts = runs["status"].value_counts().to_dict()
        print(f"plan {plan['plan'][0]}: {len(plan)} transfer units")
        print(f"  predict pending: {len(pending['predict'])}")
        print(f"  stats pending:   {sum(len(u['pairs']) for u in pending['stats'])} pairs")
        print("  transfer: " + ", ".join(f"{s} {counts.get(s, 0)}" for s in
                                          ("ok", "diverged", "failed"))
              + f", pending {len(plan) - len(runs)}")
    else:
        con = connect(results_dir)
        for table in ("models", "pair_stats", "transfer_runs"):
            n = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            print(f"{table:>14}: {n} rows")
        con.close()
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
    if args.action == "list" and not args.zoo:
        for name in list_zoos():
            zoo = get_zoo(name)
            print(f"{name:<10} {len(zoo.models)} models on {zoo.dataset}")
        return 0
    zoo = get_zoo(args.zoo or "micro")
    if args.action == "build":
        from benchmark.microzoo import ensure_zoo_weights
        ensure_zoo_weights(zoo, _cache(args))
    print(f"{'model':<20} {'arch':<22} {'family':<12} recipe")
    for m in zoo.models:
        print(f"{m.name:<20} {m.arch:<22} {m.family:<12} {json.dumps(m.recipe) if m.recipe else ''}")
    return 0


def cmd_tables(args):
    tables = run_tables(_results(args))
    ext = {"markdown": "md", "csv": "csv"}[args.format]
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
    for name, df in tables.items():
        text = format_table(df, args.format)
        if args.out:
            (Path(args.out) / f"{name}.{ext}").write_text(text + "\n")
        else:
            print(f"\n## {name}\n\n{text}")
    if args.out:
        print(f"wrote {len(tables)} tables to {args.out}")
    return 0


def cmd_query(args):
    con = connect(_results(args))
    try:
        print(format_table(con.execute(args.sql).df(), args.format))
    finally:
        con.close()
    return 0


def cmd_demo(args):
    zoo = get_zoo("micro")
    results_dir = _results(args)
    _check_writable(results_dir)
    t0 = time.perf_counter()
    args.zoo, args.all, args.seeds, args.compat = "micro", False, "0", None
    plan = _build_plan(args)
    plan_path = write_plan(plan, results_dir / "plans" / "demo.parquet")
    print(f"demo: micro zoo ({len(zoo.models)} models on {zoo.dataset}), {len(plan)} transfer "
          f"units -> {plan_path}")
    summary = _launch(plan, args)
    cmd_tables(argparse.Namespace(results=str(results_dir), format="markdown", out=None))
    print(f"\nParquet results: {results_dir.resolve()}  ({time.perf_counter() - t0:.0f} s)")
    print(f"query them: ktbench query --results {results_dir} \"SELECT * FROM transfer_runs\"")
    return 1 if any(c["failed"] for c in summary.values()) else 0


def _add_common(p, launch=False, methods=False):
    p.add_argument("--results", help="results folder (default: $KTBENCH_RESULTS or "
                                     "./ktbench-results)")
    p.add_argument("--cache", help="cache folder (default: $KTBENCH_CACHE or ~/.cache/ktbench)")
    if launch:
        p.add_argument("--executor", default="local", help="local | debug | slurm")
        p.add_argument("--tasks", type=int, help="parallel tasks per stage")
        p.add_argument("--threads", type=int, help="torch threads per task")
        p.add_argument("--retry-failed", action="store_true", help="run failed units again")
        p.add_argument("--quiet", action="store_true", help="no progress bars")
    if methods:
        p.add_argument("--methods", default=DEMO_METHODS, help="comma-separated method names")
        p.add_argument("--seed", type=int, default=0, help="seed of the random pair sample")
        p.add_argument("--epochs", type=int)
        p.add_argument("--lr", type=float)
        p.add_argument("--batch-size", type=int)
        p.add_argument("--params", help="JSON of method parameters, e.g. '{\"T\": 2.0}'")


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="ktbench", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="micro zoo -> plan -> launch -> tables, offline")
    _add_common(p, launch=True, methods=True)
    p.add_argument("--pairs", type=int, default=12, help="random teacher-student pairs")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("zoo", help="list zoos, show or build one")
    p.add_argument("action", choices=["list", "show", "build"])
    p.add_argument("--zoo")
    _add_common(p)
    p.set_defaults(func=cmd_zoo)

    p = sub.add_parser("plan", help="write a plan of transfer units (Parquet)")
    p.add_argument("--zoo", required=True)
    p.add_argument("--pairs", type=int, help="seeded random sample of N ordered pairs")
    p.add_argument("--all", action="store_true", help="all ordered pairs")
    p.add_argument("--seeds", default="0", help="comma-separated training seeds")
    p.add_argument("--compat", choices=["fantasticgains"], help="official-code numbers")
    p.add_argument("--out", required=True)
    _add_common(p, methods=True)
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("launch", help="run a plan's pending units through submitit")
    p.add_argument("plan")
    _add_common(p, launch=True)
    p.set_defaults(func=cmd_launch)

    p = sub.add_parser("status", help="done / pending / failed units")
    p.add_argument("plan", nargs="?")
    _add_common(p)
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("methods", help="transfer methods and their defaults")
    p.set_defaults(func=cmd_methods)

    p = sub.add_parser("tables", help="the paper's tables from the results, through DuckDB")
    p.add_argument("--format", default="markdown", choices=["markdown", "csv"])
    p.add_argument("--out", help="write one file per table into this folder")
    _add_common(p)
    p.set_defaults(func=cmd_tables)

    p = sub.add_parser("query", help="ad-hoc SQL over the results tables")
    p.add_argument("sql")
    p.add_argument("--format", default="markdown", choices=["markdown", "csv"])
    _add_common(p)
    p.set_defaults(func=cmd_query)
    return ap


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except (UserError, PlanError, KeyError, ValueError, FileNotFoundError) as e:
        message = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
        print(f"ktbench: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
