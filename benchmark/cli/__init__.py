"""The command line, `ktbench`: above everything it calls (pairs, benchmark's rooms, results,
analysis). Light at import: each subcommand imports its work when it runs."""
from benchmark.cli.main import main

__all__ = ["main"]
