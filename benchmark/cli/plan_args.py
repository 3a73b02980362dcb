"""The command-line options of catalogs and planning: filters, pair strategies, methods and
seeds, and the `PairRequest` and method parameters they make. Light at import (no pandas): the
parser is built from here; the tables that `zoo` and `plan --dry-run` print are in `plan_tables`.
"""
import argparse
import json
import math

from pairs.catalog_table import CatalogFilter
from pairs.strategies import STRATEGIES, STRATUM_KEYS, PairRequest
from results import InputError, query


def _patterns(text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in text.split(",") if p.strip())


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in _patterns(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers")


def _range(text: str) -> tuple[float, float]:
    """LO:HI, either side may be empty (10: is at least 10)."""
    low, sep, high = text.partition(":")
    try:
        if not sep:
            raise ValueError
        return (float(low) if low else -math.inf, float(high) if high else math.inf)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a range LO:HI") from None


def add_catalog_arguments(p: argparse.ArgumentParser):
    g = p.add_argument_group("catalog filters")
    g.add_argument("--models", type=_patterns, default=(),
                   help="comma-separated wildcards on model names or architectures, e.g. "
                        "'resnet*,vit_*'")
    g.add_argument("--exclude", type=_patterns, default=(), help="wildcards to leave out")
    g.add_argument("--in1k", action="store_true",
                   help="ImageNet-1k heads only (1000 classes, no label offset)")
    g.add_argument("--params-m", type=_range, help="parameter range in millions, LO:HI")
    g.add_argument("--top1", type=_range, help="top-1 range in %%, LO:HI")
    g.add_argument("--family", type=_patterns, default=(),
                   help="comma-separated families: cnn, transformer, mlp, hybrid")


def add_strategy_arguments(p: argparse.ArgumentParser):
    g = p.add_argument_group("pair strategy")
    g.add_argument("--strategy", choices=list(STRATEGIES),
                   help="default: random with --pairs N, all with --all")
    g.add_argument("--teachers", type=_patterns, default=(),
                   help="cross / paper: teacher wildcards")
    g.add_argument("--students", type=_patterns, default=(), help="cross: student wildcards")
    g.add_argument("--strata", type=_patterns, default=("gap", "family", "size"),
                   help=f"stratified: strata keys among {', '.join(STRATUM_KEYS)}")
    g.add_argument("--gap-bins", type=_floats, default=PairRequest.gap_bins,
                   help="stratified: edges of teacher-minus-student top-1 bins (points)")
    g.add_argument("--size-bins", type=_floats, default=PairRequest.size_bins,
                   help="stratified: edges of student size bins (M parameters)")
    g.add_argument("--paper-teachers", type=int, default=PairRequest.n_teachers,
                   help="paper: number of teachers (the 3 the paper names, then random)")
    g.add_argument("--stats-metric", default=PairRequest.metric,
                   help="top-stats: the pair_stats column to rank by (default pos_flips); "
                        "top-predictor, top-teachers: a predictors_pairs column, NAME or -NAME")


def catalog_filter(args) -> CatalogFilter:
    return CatalogFilter(include=args.models, exclude=args.exclude, in1k=args.in1k,
                         params_m=args.params_m, top1=args.top1, families=args.family)


def strategy_name(args) -> str | None:
    if args.strategy:
        return args.strategy
    return "all" if args.all else "random" if args.pairs is not None else None


def pair_request(args, zoo, results_dir) -> PairRequest:
    stats = None
    if strategy_name(args) == "top-stats":
        stats = query(results_dir, "SELECT * FROM pair_stats WHERE dataset = ?", [zoo.dataset])
    return PairRequest(n=args.pairs, seed=args.seed, teachers=args.teachers,
                       students=args.students, strata=args.strata, gap_bins=args.gap_bins,
                       size_bins=args.size_bins, n_teachers=args.paper_teachers,
                       pair_measures=stats, metric=args.stats_metric)


def methods_from_args(names: str, zoo, args) -> dict[str, dict]:
    """{method: resolved parameters} of the comma-separated `names`, with the command line's
    `--epochs`, `--lr`, `--batch-size` and `--params` over the zoo's and methods' defaults."""
    from benchmark.methods import resolve_params
    overrides = {k: v for k, v in (("epochs", args.epochs), ("lr", args.lr),
                                   ("batch_size", args.batch_size)) if v is not None}
    if args.params:
        try:
            given = json.loads(args.params)
        except json.JSONDecodeError as e:
            raise InputError(f"--params is not valid JSON: {e}") from None
        if not isinstance(given, dict):
            raise InputError(f"--params takes a JSON object of parameters, got {args.params!r}")
        overrides.update(given)
    methods = [m for m in names.split(",") if m]
    if not methods:
        raise InputError("--methods lists no method")
    return {m: resolve_params(m, zoo.transfer_defaults, overrides) for m in methods}


def seeds_from_args(text: str) -> list[int]:
    """`--seeds 0,1,2` -> [0, 1, 2]."""
    try:
        return [int(s) for s in str(text).split(",")]
    except ValueError:
        raise InputError(f"--seeds takes comma-separated integers, got {text!r}") from None
