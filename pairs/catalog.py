"""Zoo catalogs: which models exist, how timm builds them, where their weights come from.

A zoo is registered by name (as timm registers models) and yields a `Zoo`: a dataset name and
a list of `ModelEntry`. Catalogs are data; how a model is trained or loaded lives in `benchmark`.
"""
import dataclasses
from dataclasses import dataclass, field
from typing import Callable

from pairs.keys import unit_key
from results.errors import InputError


@dataclass(frozen=True)
class ModelEntry:
    name: str                      # unique within its zoo; the name used in every table
    arch: str                      # timm model name for `timm.create_model`
    family: str                    # cnn / transformer / mlp / hybrid
    num_classes: int
    in_chans: int = 3
    input_size: tuple = (3, 224, 224)
    mean: tuple = (0.485, 0.456, 0.406)
    std: tuple = (0.229, 0.224, 0.225)
    kwargs: dict = field(default_factory=dict)    # size arguments for `timm.create_model`
    weights: str | None = None     # local weight file; None: built into the cache or from the hub
    recipe: dict | None = None     # how a micro-zoo model is trained (None for pretrained zoos)
    top1_reported: float | None = None
    # a backbone with a head fitted on another dataset (`pairs.probe.probed_zoo`): the probe's
    # key, dataset, recipe and the backbone's own class count; unset, it stays out of the
    # fingerprint, so the keys of every unprobed model hold
    probe: dict | None = None

    def fingerprint(self) -> str:
        """Changes whenever the definition (and so the trained weights) would change."""
        fields = dataclasses.asdict(self)
        if self.probe is None:
            del fields["probe"]
        return unit_key("model", **fields)


@dataclass(frozen=True)
class Zoo:
    name: str
    dataset: str
    models: tuple[ModelEntry, ...]
    # transfer hyperparameters sized for this zoo (epochs, lr, batch size), over method defaults
    transfer_defaults: dict = field(default_factory=dict)

    def get(self, name: str) -> ModelEntry:
        for entry in self.models:
            if entry.name == name:
                return entry
        raise InputError(f"unknown model {name!r} in zoo {self.name!r}; models: "
                         + ", ".join(m.name for m in self.models))


_ZOOS: dict[str, Callable[[], Zoo]] = {}
# zoos made from another by their name: a marker in the name -> name -> zoo (`pairs.probe`)
_DERIVED_ZOOS: dict[str, Callable[[str], Zoo]] = {}


def register_zoo(name: str):
    def wrap(fn: Callable[[], Zoo]):
        _ZOOS[name] = fn
        return fn
    return wrap


def register_derived_zoos(marker: str, build: Callable[[str], Zoo]) -> None:
    """Zoos whose name holds `marker` are `build(name)`."""
    _DERIVED_ZOOS[marker] = build


def list_zoos() -> list[str]:
    return sorted(_ZOOS)


def get_zoo(name: str) -> Zoo:
    if marked := [build for marker, build in _DERIVED_ZOOS.items() if marker in name]:
        return marked[0](name)
    if name not in _ZOOS:
        raise InputError(f"unknown zoo {name!r}; zoos: {', '.join(list_zoos())}")
    return _ZOOS[name]()
