"""`ktbench predictors`: features, predictors and teacher sets of a zoo, then what they say.

Light at import (argparse only): the work is imported when the command runs.
"""
from pathlib import Path

SPLITS = ("eval", "transfer")


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.split(",") if v.strip())


def add_arguments(p) -> None:
    p.add_argument("--zoo", default="micro", help="zoo of the models (default micro)")
    p.add_argument("--models", help="comma-separated model names (default: the whole zoo)")
    p.add_argument("--split", default="eval", choices=SPLITS,
                   help="data the scores are computed on (default eval)")
    p.add_argument("--samples", type=int, help="only the first N samples of the split")
    p.add_argument("--eval-samples", type=int,
                   help="features unit: eval samples to store (default all)")
    p.add_argument("--transfer-samples", type=int, default=2000,
                   help="features unit: first N samples of the transfer split to store")
    p.add_argument("--cka-samples", type=int, default=1024,
                   help="linear CKA on the first N samples (0: all)")
    p.add_argument("--set-sizes", type=_ints, default=(2, 3),
                   help="teacher set sizes, comma-separated (default 2,3)")
    p.add_argument("--lam", type=float, default=0.5,
                   help="teacher sets: weight of redundancy against coverage")
    p.add_argument("--draws", type=int, default=100, help="random teacher sets per student")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads for the features forward passes (default 1)")
    p.add_argument("--method", default="kl_dp",
                   help="method of the best-predictor table (default kl_dp)")
    p.add_argument("--boot", type=int, default=2000,
                   help="bootstrap resamples of the correlation intervals up to 500 pairs "
                        "(above: the delta method; default 2000)")
    p.add_argument("--analyze-only", action="store_true",
                   help="compute nothing: analyse the predictors already in --results")
    p.add_argument("--format", default="markdown", choices=["markdown", "csv", "latex"])
    p.add_argument("--out", help="also write the analysis tables into this folder")


def run(args, results_dir: Path, cache: Path) -> int:
    from analysis import FORMATS, format_table
    if not args.analyze_only:
        from benchmark.predictors import PredictorOptions, run_predictors
        options = PredictorOptions(cka_samples=args.cka_samples or None)
        models = [m.strip() for m in args.models.split(",") if m.strip()] if args.models else None
        summary = run_predictors(
            results_dir, cache, zoo=args.zoo, models=models, split=args.split,
            samples=args.samples, eval_samples=args.eval_samples,
            transfer_samples=args.transfer_samples, options=options,
            set_sizes=args.set_sizes, lam=args.lam, draws=args.draws, seed=args.seed,
            torch_threads=args.threads)
        seconds = ", ".join(f"{k} {v:.1f} s" for k, v in summary["seconds"].items())
        print(f"predictors {summary['key']}: {summary['models']} models, {summary['pairs']} "
              f"pairs, {summary['samples']} {args.split} samples ({seconds})")
    tables = analysis_tables(results_dir, args.method, args.boot, args.seed)
    for name, df in tables.items():
        print(f"\n## {name}\n\n{format_table(df, args.format) if len(df) else '(no rows yet)'}")
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        for name, df in tables.items():
            (out / f"{name}.{FORMATS[args.format]}").write_text(format_table(df, args.format)
                                                               + "\n")
        print(f"\nwrote {len(tables)} tables to {out}")
    return 0


def analysis_tables(results_dir, method: str = "kl_dp", boot: int = 2000, seed: int = 0) -> dict:
    """{name: DataFrame}: teacher sets, Spearman and Pearson (with intervals) of every predictor
    per method, and the best predictors for `method`."""
    from analysis.predictors import best_predictors, correlation_table, predictor_runs
    from analysis.tables import run_tables
    sets = run_tables(results_dir, ["predictors_teacher_sets"])["predictors_teacher_sets"]
    runs = predictor_runs(results_dir)
    table = correlation_table(runs, boot=boot, seed=seed)
    return {"teacher sets (greedy vs random vs accuracy)": sets,
            "Spearman with dist_delta [95% interval over pairs]": _pivot(table, "spearman"),
            "Pearson with dist_delta [95% interval over pairs]": _pivot(table, "pearson"),
            f"which predictor best ranks pairs for {method}":
                best_predictors(table, runs, method).round(2)}


def _pivot(table, stat: str):
    import pandas as pd
    if table.empty:
        return table
    cell = table.apply(lambda r: "" if pd.isna(r[stat]) else
                       f"{r[stat]:+.2f} [{r[f'{stat}_lo']:+.2f}, {r[f'{stat}_hi']:+.2f}]", axis=1)
    pairs = table.groupby("method")["pairs"].transform("max").astype(str)
    wide = (table.assign(cell=cell, method=table["method"] + " (" + pairs + " pairs)")
            .pivot_table(index=["dataset", "predictor"], columns="method", values="cell",
                         aggfunc="first", sort=False))
    return wide.reset_index().rename_axis(columns=None)


def planner_request(strategy: str, request, results_dir, dataset: str):
    """`request` for `plan_pairs`; for a predictor strategy (pairs/predictor_strategy.py) with
    the results folder's `predictors_pairs` rows of `dataset` as its candidate table."""
    from pairs.strategies.predictor import PREDICTOR_STRATEGIES
    if strategy not in PREDICTOR_STRATEGIES:
        return request
    import dataclasses

    from analysis.predictors import pair_predictor_table
    table = pair_predictor_table(results_dir)
    return dataclasses.replace(request, pair_measures=table[table["dataset"] == dataset])
