"""Zoos probed onto another dataset: each model's backbone with a linear head fitted there.

`<zoo>~<recipe>~<dataset>` names the zoo `<zoo>` probed onto `<dataset>` by `<recipe>`
(`PROBE_RECIPES`): the same models, each an entry whose `probe` names the probe unit that fits
its head and whose `num_classes` is the dataset's. Every key made from such an entry (predict,
stats, transfer) changes with the probe's, so results on a dataset never mix with the zoo's own.
The dataset's class count comes from the one function `benchmark` registers
(`register_class_count`): pairs never reads data.
"""
import dataclasses
from typing import Callable

from pairs.catalog import (ModelEntry, Zoo, get_zoo, preprocessing_fields,
                           register_derived_zoos)
from pairs.keys import unit_key
from results.errors import InputError

PROBE_VERSION = 1
# the authors' linear probe: frozen backbone, SGD (momentum 0.9) on cross-entropy for 50 epochs,
# lr 0.1 at batch 256 (0.01 for their harder sets), a 5% linear warmup then a cosine down to
# 2e-5, seed 1234; and an L-BFGS multinomial logistic regression as a quicker alternative
_SGD = dict(solver="sgd", epochs=50, lr=0.1, momentum=0.9, batch_size=256, weight_decay=0.0,
            warmup_fraction=0.05, eta_min=2e-5, seed=1234)
PROBE_RECIPES = {
    "sgd": _SGD,
    "sgd_lr0.01": dict(_SGD, lr=0.01),
    "lbfgs": dict(solver="lbfgs", max_iter=200, l2=1e-4),
}
DEFAULT_RECIPE = "sgd"
PROBED_SEPARATOR = "~"
_CLASS_COUNT: list[Callable[[str], int]] = []


def register_class_count(count: Callable[[str], int]) -> None:
    """`count(dataset)`: a dataset's number of classes (benchmark registers it)."""
    _CLASS_COUNT[:] = [count]


def class_count(dataset: str) -> int:
    """A dataset's number of classes, by the registered function."""
    if not _CLASS_COUNT:
        raise InputError(f"dataset {dataset!r}: no class count registered (import benchmark)")
    return _CLASS_COUNT[0](dataset)


def probe_recipe(name: str) -> dict:
    if name not in PROBE_RECIPES:
        raise InputError(f"unknown probe recipe {name!r}; recipes: {', '.join(PROBE_RECIPES)}")
    return dict(PROBE_RECIPES[name])


def probe_key(backbone: ModelEntry, dataset: str, recipe: str) -> str:
    """The key of the probe unit fitting `backbone`'s head on `dataset` by `recipe`."""
    return unit_key("probe", model=backbone.fingerprint(), dataset=dataset,
                    recipe=probe_recipe(recipe), version=PROBE_VERSION,
                    **preprocessing_fields(backbone, dataset))


def is_probed(zoo_name: str) -> bool:
    """Whether a zoo name names a probed zoo (every model of one is probed)."""
    return PROBED_SEPARATOR in zoo_name


def probed_name(zoo: str, dataset: str, recipe: str = DEFAULT_RECIPE) -> str:
    probe_recipe(recipe)
    return PROBED_SEPARATOR.join((zoo, recipe, dataset))


def probed_entry(backbone: ModelEntry, dataset: str, recipe: str, num_classes: int) -> ModelEntry:
    return dataclasses.replace(backbone, num_classes=num_classes, top1_reported=None, probe=dict(
        key=probe_key(backbone, dataset, recipe), dataset=dataset, recipe=recipe,
        backbone_classes=backbone.num_classes, backbone_top1=backbone.top1_reported))


def backbone_of(entry: ModelEntry) -> ModelEntry:
    """The entry a probed entry was made from (an unprobed entry itself)."""
    if entry.probe is None:
        return entry
    return dataclasses.replace(entry, num_classes=entry.probe["backbone_classes"], probe=None,
                               top1_reported=entry.probe["backbone_top1"])


def backbone_zoo(zoo: Zoo) -> Zoo:
    """The zoo whose models a probed zoo's backbones are, on the dataset they were trained on
    (an unprobed zoo itself): what builds or fetches their weights asks for this."""
    if not is_probed(zoo.name):
        return zoo
    base = get_zoo(zoo.name.split(PROBED_SEPARATOR, 1)[0])
    return dataclasses.replace(base, models=tuple(backbone_of(m) for m in zoo.models))


def probed_zoo_of(name: str) -> Zoo:
    """The zoo named `<zoo>~<recipe>~<dataset>`."""
    base_name, recipe, dataset = name.split(PROBED_SEPARATOR, 2)
    base = get_zoo(base_name)
    probe_recipe(recipe)
    classes = class_count(dataset)
    if classes < 2:
        raise InputError(f"dataset {dataset!r} has {classes} class: a probe needs at least 2")
    return Zoo(name=name, dataset=dataset, transfer_defaults=base.transfer_defaults,
               about=base.about,
               models=tuple(probed_entry(e, dataset, recipe, classes) for e in base.models))


register_derived_zoos(PROBED_SEPARATOR, probed_zoo_of)


def zoo_on(zoo_name: str, dataset: str | None = None, recipe: str | None = None,
           probe: bool = False) -> Zoo:
    """The zoo a study of `zoo_name` on `dataset` runs: the zoo itself on its own dataset; probed
    onto `dataset` by `recipe` (default `DEFAULT_RECIPE`) when its heads do not fit the
    dataset's classes, or when asked (`probe`)."""
    zoo = get_zoo(zoo_name)
    dataset = dataset or zoo.dataset
    recipe = recipe or DEFAULT_RECIPE
    if probe:
        return get_zoo(probed_name(zoo.name, dataset, recipe))
    if dataset == zoo.dataset:
        return zoo
    classes = class_count(dataset)
    if all(m.num_classes == classes for m in zoo.models):
        raise InputError(f"zoo {zoo.name!r}'s heads already have {classes} classes, as "
                         f"{dataset!r}: give --probe to fit new heads there (the zoo's own "
                         "heads are studied on its own dataset only)")
    return get_zoo(probed_name(zoo.name, dataset, recipe))
