"""The method contract and its registry.

A method turns one batch into the student's logits and named losses (mdistiller's
`forward_train`); the trainer owns the optimiser, data order, evaluation and checkpoints.
Frozen outputs a method needs (teacher, frozen initial student) arrive precomputed in `refs`,
so the trainer can share or cache them across methods and epochs.
"""
from typing import ClassVar

import torch

# paper.md 3.3: SGD momentum 0.9, wd 1e-4, no schedule, T = 1, 20 epochs, lr 1e-4
TRAIN_DEFAULTS = {"lr": 1e-4, "momentum": 0.9, "weight_decay": 1e-4, "epochs": 20,
                  "batch_size": 128, "T": 1.0, "topk": None,
                  # transfer on the first N samples of the (pre-shuffled) transfer split; 0 = all
                  "train_samples": 0,
                  # a run whose accuracy falls this many points below its start is `diverged`
                  "diverge_margin": 20.0}


class TransferMethod:
    name: ClassVar[str]
    references: ClassVar[tuple[str, ...]] = ("teacher",)   # frozen outputs forward_train needs
    defaults: ClassVar[dict] = {}                          # over TRAIN_DEFAULTS
    description: ClassVar[str] = ""

    def __init__(self, params: dict):
        self.params = params

    def forward_train(self, student: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
                      refs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict, dict]:
        """-> (student logits, named losses summed for the step, named logs such as teacher_input)."""
        raise NotImplementedError


_METHODS: dict[str, type[TransferMethod]] = {}


def register_method(cls: type[TransferMethod]) -> type[TransferMethod]:
    _METHODS[cls.name] = cls
    return cls


def list_methods() -> list[str]:
    return sorted(_METHODS)


def get_method(name: str) -> type[TransferMethod]:
    if name not in _METHODS:
        raise KeyError(f"unknown method {name!r}; methods: {', '.join(list_methods())}")
    return _METHODS[name]


def resolve_params(name: str, *overrides: dict) -> dict:
    """Method params: TRAIN_DEFAULTS < method defaults < each override in turn.

    Keys must be known and values of the default's type (ints pass for floats), so a typo or a
    string where a number belongs fails at planning time, not hours into a job.
    """
    params = {**TRAIN_DEFAULTS, **get_method(name).defaults}
    for override in overrides:
        for key, value in override.items():
            if key not in params:
                raise ValueError(f"method {name!r} has no parameter {key!r}; "
                                 f"parameters: {', '.join(sorted(params))}")
            params[key] = _coerce(name, key, params[key], value)
    if (params["epochs"] < 1 or params["batch_size"] < 1 or params["lr"] <= 0
            or params["train_samples"] < 0):
        raise ValueError(f"method {name!r}: epochs and batch_size must be >= 1, lr > 0 and "
                         "train_samples >= 0")
    return params


def _coerce(method: str, key: str, default, value):
    if default is None or value is None:
        return value
    if isinstance(default, bool) or isinstance(value, bool):
        if isinstance(default, bool) and isinstance(value, bool):
            return value
    elif isinstance(default, int) and isinstance(value, int):
        return value
    elif isinstance(default, float) and isinstance(value, (int, float)):
        return float(value)
    elif isinstance(default, str) and isinstance(value, str):
        return value
    raise ValueError(f"method {method!r}: parameter {key!r} must be {type(default).__name__}, "
                     f"got {value!r}")
