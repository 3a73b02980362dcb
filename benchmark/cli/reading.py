"""`ktbench tables`, `query`, `figures` and `report`, which read a results folder, and `verify`
and `compact`, which keep it sound and fast to read."""
import time
from pathlib import Path

from analysis import TABLE_NAMES, format_table, run_query_arrow, write_result
from benchmark.cli.common import add_common, results_folder
from results import TABLES, InputError, ResultsLayout


def cmd_verify(args):
    from results.verify import verify
    report = verify(results_folder(args), fix=args.fix)
    if not args.fix:
        for problem in report.problems:
            print(problem.line())
    print(report.summary() + (" (moved aside)" if args.fix and report.problems else ""))
    return 1 if report.problems and not args.fix else 0


def cmd_compact(args):
    from results.compact import Busy, compact
    results_dir = results_folder(args)
    t0 = time.perf_counter()
    try:
        try:
            reports = compact(results_dir, args.table, wait=False)
        except Busy as e:
            print(f"{e}: waiting for it")
            reports = compact(results_dir, args.table)
    except PermissionError as e:
        raise InputError(f"cannot compact {results_dir} ({e.strerror}: {e.filename})") from None
    for report in reports:
        print(report.line())
    if not reports:
        print(f"nothing to compact in {results_dir}")
    print(f"({time.perf_counter() - t0:.1f} s)")
    return 0


def cmd_tables(args):
    from analysis import write_tables
    result = write_tables(results_folder(args), args.out, args.format, args.table or TABLE_NAMES)
    if args.out:
        print(f"wrote {len(result)} tables to {args.out}")
    else:
        print("\n" + result)
    return 0


def cmd_query(args):
    result = run_query_arrow(results_folder(args), args.sql)
    if args.out:
        print(f"wrote {len(result)} rows to {write_result(result, args.out)}")
    else:
        print(format_table(result, args.format))
    return 0


def cmd_figures(args):
    out = Path(args.out) if args.out else ResultsLayout(results_folder(args)).figures
    from analysis.figures import make_figures
    try:
        written = make_figures(results_folder(args), out)
    except OSError as e:
        raise InputError(f"cannot write figures to {out} ({e.strerror or e})") from None
    print(f"wrote {len(written)} files ({len(written) // 2} figures, PNG and PDF) to {out}")
    return 0


def cmd_report(args):
    out = Path(args.out) if args.out else ResultsLayout(results_folder(args)).report
    from analysis.report import build_report
    try:
        print(f"wrote {build_report(results_folder(args), out)}")
    except OSError as e:
        raise InputError(f"cannot write the report to {out} ({e.strerror or e})") from None
    return 0


def add_verify(sub):
    p = sub.add_parser("verify", help="check every result part and checkpoint; --fix moves "
                                      "bad ones into <results>/quarantine/")
    p.add_argument("--fix", action="store_true", help="move bad files aside (they rerun)")
    add_common(p)
    p.set_defaults(func=cmd_verify)


def add_compact(sub):
    p = sub.add_parser("compact", help="merge each table's parts into a few large files "
                                       "(safe beside running jobs)")
    p.add_argument("--table", action="append", choices=list(TABLES), metavar="NAME",
                   help="only this table (repeatable); default every table")
    add_common(p)
    p.set_defaults(func=cmd_compact)


def add_tables(sub):
    p = sub.add_parser("tables", help="the paper's tables from the results, through DuckDB")
    p.add_argument("--format", default="markdown", choices=["markdown", "csv", "latex"])
    p.add_argument("--out", help="write one file per table into this folder")
    p.add_argument("--table", action="append", choices=TABLE_NAMES, metavar="NAME",
                   help="only this table (repeatable); default all: " + ", ".join(TABLE_NAMES))
    add_common(p)
    p.set_defaults(func=cmd_tables)


def add_query(sub):
    p = sub.add_parser("query", help="ad-hoc read-only SQL over the results tables (views)")
    p.add_argument("sql", help="one SELECT / WITH / PIVOT / DESCRIBE statement")
    p.add_argument("--format", default="markdown", choices=["markdown", "csv", "latex"])
    p.add_argument("--out", help="write the result to FILE (.csv, .parquet, .md or .tex)")
    add_common(p)
    p.set_defaults(func=cmd_query)


def add_figures(sub):
    p = sub.add_parser("figures", help="the paper's figures as PNG and PDF (matplotlib)")
    p.add_argument("--out", help="folder for the figures (default: RESULTS/figures)")
    add_common(p)
    p.set_defaults(func=cmd_figures)


def add_report(sub):
    p = sub.add_parser("report", help="one self-contained HTML page: every table and figure")
    p.add_argument("--out", help="the HTML file (default: RESULTS/report.html)")
    add_common(p)
    p.set_defaults(func=cmd_report)
