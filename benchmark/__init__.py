"""How one unit of work runs: data, models, predictions, statistics, transfer, launching.

Nothing heavy is imported here (only what pairs asks of the data: a probed zoo's dataset class
count, the decode a unit key records): each room is a package with its own face
(`benchmark.data`, `benchmark.methods`, `benchmark.units`, `benchmark.launch`, ...), and the
command line is `benchmark.cli`."""
import sys

from pairs.catalog import register_preprocessing_key
from pairs.probe import register_class_count

__all__: list[str] = []


def _num_classes(dataset: str) -> int:
    from benchmark.data.datasets import num_classes_of     # torch loads only when asked
    return num_classes_of(dataset)


def _preprocessing_key(entry, dataset: str) -> str | None:
    # a dataset read from files is named with a source prefix (`imagefolder:`...) or registered
    # through benchmark.data in this process: a built-in one loads no torch to be told so
    if ":" not in dataset and "benchmark.data.datasets" not in sys.modules:
        return None
    from benchmark.data.feeding import preprocessing_key
    return preprocessing_key(entry, dataset)


# a probed zoo (`pairs.probe`) takes its dataset's class count from here, unit keys the decode
register_class_count(_num_classes)
register_preprocessing_key(_preprocessing_key)
