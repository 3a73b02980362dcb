"""Zoo catalogs: which models exist, how timm builds them, where their weights come from.

A zoo is registered by name (as timm registers models) and yields a `Zoo`: a dataset name and
a list of `ModelEntry`. Catalogs are data; how a model is trained or loaded lives in `benchmark`.

Every process resolves a zoo the same way, the launching one and each job alike: by its
registered name; a name that is a catalog file's (`pairs.zoos.catalog_file`, a name ending in
a registered suffix) by reading that file; any other after importing the modules named in
`KTBENCH_PLUGINS` (comma-separated; `--plugin` adds to it), which register zoos that need code.
"""
import dataclasses
import importlib
import os
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
    # the eval crop and interpolation the model was made for (catalog files; None: unstated)
    crop_pct: float | None = None
    interpolation: str | None = None
    # a backbone with a head fitted on another dataset (`pairs.probe.probed_zoo`): the probe's
    # key, dataset, recipe and the backbone's own class count
    probe: dict | None = None

    def fingerprint(self) -> str:
        """Changes whenever the definition (and so the trained weights) would change. Fields
        added after the first release count only when set, so older entries keep their keys."""
        fields = dataclasses.asdict(self)
        for name in _ADDED_FIELDS:
            if fields[name] is None:
                del fields[name]
        return unit_key("model", **fields)


_ADDED_FIELDS = ("crop_pct", "interpolation", "probe")
# (entry, dataset) -> what a unit key records of the decode the model is fed, or None
# (`benchmark` registers it: pairs never reads data)
_PREPROCESSING_KEY: list[Callable[[ModelEntry, str], str | None]] = []


def register_preprocessing_key(key: Callable[[ModelEntry, str], str | None]) -> None:
    _PREPROCESSING_KEY[:] = [key]


def preprocessing_fields(entry: ModelEntry, dataset: str) -> dict:
    """The fields a unit key of `entry` on `dataset` adds for the decode it is fed: none where
    the dataset feeds its arrays as they are built (so those keys stay as they were), else
    `preprocessing` (docs/protocol.md#preprocessing)."""
    key = _PREPROCESSING_KEY[0](entry, dataset) if _PREPROCESSING_KEY else None
    return {} if key is None else {"preprocessing": key}


@dataclass(frozen=True)
class Zoo:
    name: str
    dataset: str
    models: tuple[ModelEntry, ...]
    # transfer hyperparameters sized for this zoo (epochs, lr, batch size), over method defaults
    transfer_defaults: dict = field(default_factory=dict)
    # one line on how the models were made and what that means for the results (shown by `demo`)
    about: str = ""

    def get(self, name: str) -> ModelEntry:
        for entry in self.models:
            if entry.name == name:
                return entry
        raise InputError(f"unknown model {name!r} in zoo {self.name!r}; models: "
                         + ", ".join(m.name for m in self.models))


_ZOOS: dict[str, Callable[[], Zoo]] = {}
# a catalog file's suffix -> its reader: (zoo name) -> Zoo (`pairs.zoos.catalog_file`)
_FILE_ZOOS: dict[str, Callable[[str], Zoo]] = {}
PLUGINS_ENV = "KTBENCH_PLUGINS"
# zoos made from another by their name: a marker in the name -> name -> zoo (`pairs.probe`)
_DERIVED_ZOOS: dict[str, Callable[[str], Zoo]] = {}


def register_zoo(name: str):
    def wrap(fn: Callable[[], Zoo]):
        _ZOOS[name] = fn
        return fn
    return wrap


def register_zoo_file(suffix: str):
    """Register the reader of catalog files ending in `suffix`: a zoo name that ends so (before
    a `#<content hash>`) is that file's zoo."""
    def wrap(fn: Callable[[str], Zoo]):
        _FILE_ZOOS[suffix] = fn
        return fn
    return wrap


def zoo_file_suffix(name: str) -> str | None:
    """The registered catalog-file suffix `name` ends in (before any `#hash`), if any."""
    path = name.rsplit("#", 1)[0].lower()
    return next((s for s in _FILE_ZOOS if path.endswith(s)), None)


def load_plugins() -> list[str]:
    """Import the modules named in `KTBENCH_PLUGINS` (comma-separated), each once per process:
    they register zoos (or datasets) that need code. Returns the modules' names."""
    names = [n.strip() for n in os.environ.get(PLUGINS_ENV, "").split(",") if n.strip()]
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError as e:
            raise InputError(f"plugin {name!r} ({PLUGINS_ENV}) cannot be imported: {e}") from None
    return names


def register_derived_zoos(marker: str, build: Callable[[str], Zoo]) -> None:
    """Zoos whose name holds `marker` are `build(name)`."""
    _DERIVED_ZOOS[marker] = build


def list_zoos() -> list[str]:
    load_plugins()
    return sorted(_ZOOS)


def get_zoo(name: str) -> Zoo:
    # a probed zoo's name may hold a catalog file's: its marker is looked for first
    if marked := [build for marker, build in _DERIVED_ZOOS.items() if marker in name]:
        return marked[0](name)
    if suffix := zoo_file_suffix(name):
        return _FILE_ZOOS[suffix](name)
    if name not in _ZOOS:
        load_plugins()
    if name not in _ZOOS:
        raise InputError(f"unknown zoo {name!r}; zoos: {', '.join(list_zoos())}, or a catalog "
                         f"file ({', '.join(sorted(_FILE_ZOOS))})")
    return _ZOOS[name]()
