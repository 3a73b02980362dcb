"""`ktbench predictors`, `similarity` and `bench`: studies beside the plan (predictors of
transfer, how related a pair's top classes are, the harness's own speed)."""
from pathlib import Path

from benchmark.cli import predictors as cli_predictors
from benchmark.cli.common import add_common, cache_folder, check_writable, results_folder


def cmd_predictors(args):
    return cli_predictors.run(args, results_folder(args), cache_folder(args))


def cmd_similarity(args):
    from analysis import write_tables
    from benchmark.semantics import run_similarity
    results_dir = results_folder(args)
    summary = run_similarity(results_dir, args.encoder, args.weights,
                             [args.dataset] if args.dataset else None, args.draws, args.seed,
                             args.device)
    print(f"similarity: {summary['seconds']:.1f} s")
    print("\n" + write_tables(results_dir, None, "markdown", ["class_similarity"]))
    return 0


def cmd_bench(args):
    from benchmark.perf import BenchConfig, run_benchmarks
    out = Path(args.out) if args.out else results_folder(args)
    check_writable(out)
    config = BenchConfig(cache=cache_folder(args), quick=args.quick, threads=args.threads,
                         repeats=args.repeats, device=args.device, units=args.units)
    return run_benchmarks(args.names, out, config)


def add_predictors(sub):
    p = sub.add_parser("predictors", help="transferability predictors and teacher sets from "
                                          "cached features, and their correlation with transfer")
    cli_predictors.add_arguments(p)
    add_common(p)
    p.set_defaults(func=cmd_predictors)


def add_similarity(sub):
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
    add_common(p)
    p.set_defaults(func=cmd_similarity)


def add_bench(sub):
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
    add_common(p)
    p.set_defaults(func=cmd_bench)
