"""How one unit of work runs: data, models, predictions, statistics, transfer, launching.

Nothing heavy is imported here (only the dataset class count a probed zoo asks for): each room is a package with its own face (`benchmark.data`,
`benchmark.methods`, `benchmark.units`, `benchmark.launch`, ...), and the command line is
`benchmark.cli`."""

from pairs.probe import register_class_count

__all__: list[str] = []


def _num_classes(dataset: str) -> int:
    from benchmark.data.datasets import num_classes_of     # torch loads only when asked
    return num_classes_of(dataset)


# a probed zoo (`pairs.probe`) takes its dataset's class count from here
register_class_count(_num_classes)
