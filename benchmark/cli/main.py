"""`ktbench`: one console script, one subcommand per step of the pipeline.

Bad input ends with one line on stderr and exit code 2; a run that failed exits with 1.

The commands live in files of their own (`planning`, `running`, `reading`, `studies`), each
declaring its options beside its body; here the parser is wired from them, and `main` is the one
boundary: it catches `InputError` alone, so any other exception is a bug and shows its traceback.

Light at import: the parser and the helpers imported here load neither pandas nor torch; each
subcommand imports its heavier work when it runs, so `ktbench query` and `--help` start without
them (tests/test_cli.py checks).
"""
import argparse
import sys

from benchmark.cli import planning, reading, running, studies
from benchmark.cli.common import use_plugins
from results import InputError

# subcommands in the order `ktbench --help` lists them: each adds its parser
COMMANDS = (running.add_demo, planning.add_zoo, planning.add_plan, running.add_launch,
            running.add_status, reading.add_verify, reading.add_compact, planning.add_methods,
            reading.add_tables, reading.add_query, studies.add_predictors,
            studies.add_similarity, reading.add_figures, reading.add_report,
            running.add_import_predictions, studies.add_bench)


class _Version(argparse.Action):
    """`--version`: asks git for the code version when given, not when the parser is built."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS,
                 help="show program's version number and exit"):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        from benchmark.version import code_version
        print(f"{parser.prog} {code_version()}")
        parser.exit()


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="ktbench", description=__doc__.splitlines()[0])
    ap.add_argument("--version", action=_Version)
    sub = ap.add_subparsers(dest="command", required=True)
    for add in COMMANDS:
        add(sub)
    return ap


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        use_plugins(args)
        return args.func(args) or 0
    except InputError as e:     # anything else is a bug: its traceback shows, exit code 1
        print(f"ktbench: error: {e}", file=sys.stderr)
        return 2
