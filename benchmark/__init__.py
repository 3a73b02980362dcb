"""How one unit of work runs: data, models, predictions, statistics, transfer, launching.

Nothing is imported here: each room is a package with its own face (`benchmark.data`,
`benchmark.methods`, `benchmark.units`, `benchmark.launch`, ...), and the command line is
`benchmark.cli`."""

__all__: list[str] = []
