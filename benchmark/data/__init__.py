"""Datasets: the registry of named datasets (`load_dataset`), the built-in digits, image folders
(the paper's transfer subset, per-model preprocessing, decoded caches) and batch augmentation.

Importing this package registers the built-in datasets, the `imagefolder:` name prefix and the
class names of each (digits: number words; ImageNet: timm's class descriptions).
"""
from benchmark.data import digits, imagefolder  # noqa: F401  (registers digits16, imagefolder:)
from benchmark.data.datasets import (Dataset, cache_path, class_names, list_datasets, load_dataset,
                                     normalize, num_classes_of, register_class_names,
                                     register_dataset, register_source, standardize)

__all__ = ["Dataset", "cache_path", "class_names", "list_datasets", "load_dataset", "normalize",
           "num_classes_of", "register_class_names", "register_dataset", "register_source",
           "standardize"]
