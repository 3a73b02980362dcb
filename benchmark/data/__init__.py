"""Datasets: the registry of named datasets (`load_dataset`), the built-in digits, and datasets
read from files (`splits`: one path for every source, with the paper's transfer subset (`subset`),
per-model preprocessing (`preprocess`; which decode each model is fed: `feeding`) and decoded
caches): image folders (`imagefolder`), Hugging Face datasets and WebDataset shards through
timm's readers (`timm_readers`); batch augmentation.

Importing this package registers the built-in datasets, the `imagefolder:`, `hfds:` and `wds:`
name prefixes and the class names of each (digits: number words; ImageNet: timm's class
descriptions).
"""
from benchmark.data import digits, imagefolder, timm_readers  # noqa: F401  (register datasets)
from benchmark.data.datasets import (Dataset, Preprocessing, cache_path, check_classes,
                                     class_names, decoded_from_files, definition_of, eval_split,
                                     list_datasets, load_dataset, normalize, num_classes_of,
                                     register_class_names, register_dataset, register_source,
                                     standardize)

__all__ = ["Dataset", "Preprocessing", "cache_path", "check_classes", "class_names",
           "decoded_from_files", "definition_of", "eval_split",
           "list_datasets", "load_dataset", "normalize", "num_classes_of",
           "register_class_names", "register_dataset", "register_source",
           "standardize"]
