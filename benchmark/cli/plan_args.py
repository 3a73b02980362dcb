"""The command-line side of catalogs and planning: filters, strategies, `zoo list|show` tables
and the `plan --dry-run` summary."""
import argparse
import math

import pandas as pd

from pairs import get_zoo, list_zoos
from pairs.catalog_table import CATALOG_COLUMNS, CatalogFilter, catalog_table, filter_catalog
from pairs.cost import estimate_disk_bytes, estimate_gpu_hours
from pairs.plan import kept_students, soup_ingredients, teacher_student_pairs
from pairs.strategies import STRATEGIES, STRATUM_KEYS, PairRequest
from results import query

SHOW_COLUMNS = ["name", "family", "params_m", "top1", "top5", "img_size", "test_img_size",
                "crop_pct", "interpolation", "num_classes", "label_offset", "weights"]


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


def models_table(zoo, args, results_dir) -> pd.DataFrame:
    """The zoo's catalog with measured top-1 and size from the results folder where the catalog
    has none, filtered by the command line."""
    table = catalog_table(zoo)
    measured = query(results_dir, "SELECT model, top1, params_m FROM models "
                              "WHERE dataset = ?", [zoo.dataset]).set_index("model")
    for column in ("top1", "params_m"):
        table[column] = table[column].fillna(table["name"].map(measured[column]))
    return filter_catalog(table, catalog_filter(args))


def strategy_name(args) -> str | None:
    if args.strategy:
        return args.strategy
    return "all" if args.all else "random" if args.pairs is not None else None


def pair_request(args, zoo, results_dir) -> PairRequest:
    stats = None
    if strategy_name(args) == "top-stats":
        stats = query(results_dir, "SELECT * FROM pair_stats WHERE dataset = ?",
                               [zoo.dataset])
    return PairRequest(n=args.pairs, seed=args.seed, teachers=args.teachers,
                       students=args.students, strata=args.strata, gap_bins=args.gap_bins,
                       size_bins=args.size_bins, n_teachers=args.paper_teachers,
                       pair_stats=stats, metric=args.stats_metric)


def zoos_table() -> pd.DataFrame:
    rows = []
    for name in list_zoos():
        zoo = get_zoo(name)
        families = pd.Series([m.family for m in zoo.models]).value_counts()
        rows.append({"zoo": name, "dataset": zoo.dataset, "models": len(zoo.models),
                     "families": ", ".join(f"{f} {n}" for f, n in families.items())})
    return pd.DataFrame(rows)


def show_table(table: pd.DataFrame, fmt: str) -> pd.DataFrame:
    """Every catalog column as CSV; for reading, the informative ones that are not empty."""
    if fmt == "csv":
        return table[CATALOG_COLUMNS]
    return table[SHOW_COLUMNS].dropna(axis=1, how="all")


def kept_student_models(plan: pd.DataFrame, zoo, policy: str) -> pd.Series:
    """The student model of every final student the plan keeps under `policy`
    (`launch --keep-students`): the units it marks, and the soups' ingredients."""
    kept = plan[plan["key"].isin(kept_students(plan, zoo, policy))]
    ingredients = soup_ingredients(plan, zoo)
    return pd.concat([kept, ingredients]).drop_duplicates("key")["student"]


def dry_run_summary(plan: pd.DataFrame, table: pd.DataFrame, results_dir,
                    students: pd.Series) -> pd.DataFrame:
    """Units per stage, how many have no result yet in `results_dir`, estimated GPU-hours
    (transfer: units in lockstep groups, each frozen forward pass paid once per group) and
    disk, and a last row for the final students kept (`students`)."""
    from benchmark.launch.pending import pending_units
    from benchmark.units.group import frozen_models, plan_groups     # imports torch
    pending = pending_units(plan, results_dir)
    frozen = pd.Series([frozen_models(u) for u in plan.to_dict("records")], index=plan.index)
    hours = estimate_gpu_hours(plan, table, frozen, plan_groups(plan, results_dir))
    disk = estimate_disk_bytes(plan, table, students)
    pairs = teacher_student_pairs(plan)
    return pd.DataFrame([
        {"stage": "predict", "units": len(set(pairs["teacher"]) | set(pairs["student"])),
         "unit": "models", "pending": len(pending["predict"]), "gpu_hours": hours["predict"],
         "disk_gb": disk["predict"] / 1e9},
        {"stage": "stats", "units": len(pairs),
         "unit": "pairs", "pending": sum(len(u["pairs"]) for u in pending["stats"]),
         "gpu_hours": hours["stats"], "disk_gb": disk["stats"] / 1e9},
        {"stage": "transfer", "units": len(plan), "unit": "runs",
         "pending": len(pending["transfer"]), "gpu_hours": hours["transfer"],
         "disk_gb": disk["transfer"] / 1e9},
        {"stage": "(kept)", "units": len(students), "unit": "students", "pending": None,
         "gpu_hours": 0.0, "disk_gb": disk["students"] / 1e9},
    ]).astype({"pending": "Int64"})
