"""The method contract and its registry.

A method turns one batch into the student's logits and named losses (mdistiller's
`forward_train`); the trainer owns the optimiser, data order, evaluation and checkpoints.
Frozen outputs a method needs arrive with each batch in `refs`, one tensor per name in
`references`. Each reference name maps to a (model role, output kind) in `REFERENCES`; the
trainer's batch source (`benchmark.training.batches`) computes the output of the model playing that role,
once over an unaugmented transfer split or per augmented batch, so methods never forward frozen
models themselves.

Hooks a stateful method may override (the trainer calls them in this order):
`setup` once before the optimiser is built (and before a checkpoint is restored), `parameters`
for trainable modules of its own, `forward_train` per batch, `after_step` after each optimiser
step, `eval_model` for the module to evaluate, and `state_dict` / `load_state_dict` for what
must survive a resume.
"""
import dataclasses
import re
from typing import ClassVar

import torch

from benchmark.methods.training import TrainingConfig
from results.errors import InputError

# the knobs every method has (docs/protocol.md#training: T = 1, all classes), beside the
# training config; a method's own knobs are its `defaults`
METHOD_KNOBS = {"T": 1.0, "topk": None}


def _shared_defaults() -> dict:
    """The training config's defaults and the shared method knobs, as flat params, in the order
    `ktbench methods` prints them."""
    training = list(TrainingConfig().params().items())
    return dict(training[:5] + list(METHOD_KNOBS.items()) + training[5:])


TRAIN_DEFAULTS = _shared_defaults()

# reference name -> (model role, output kind). Roles: `teacher` (the unit's teacher),
# `student` (the frozen initial student; in a sequential multi-teacher step, the student as it
# was when the step began), `random_teacher` (the teacher's architecture, randomly initialised
# from the unit's seed), `teacher<i>` (the i-th teacher of a multi-teacher unit).
# Kinds: `logits`, `features` (timm pooled pre-logits features).
REFERENCES: dict[str, tuple[str, str]] = {
    "teacher": ("teacher", "logits"),
    "frozen": ("student", "logits"),
    "teacher_features": ("teacher", "features"),
    "random_teacher": ("random_teacher", "logits"),
}
_INDEXED_TEACHER = re.compile(r"^teacher(\d+)$")


def reference_spec(name: str) -> tuple[str, str]:
    """(model role, output kind) of a reference name."""
    if name in REFERENCES:
        return REFERENCES[name]
    if _INDEXED_TEACHER.match(name):
        return name, "logits"
    raise InputError(f"unknown reference {name!r}; references: {', '.join(REFERENCES)}, teacher<i>")


@dataclasses.dataclass
class SetupContext:
    """What `TransferMethod.setup` may look at: the transfer split as the trainer uses it."""
    train_y: torch.Tensor                  # labels of the samples used (indices 0..n_train-1)
    num_classes: int
    ref_dims: dict[str, int]               # each reference's width (classes, feature size)
    seed: int
    device: torch.device = torch.device("cpu")   # where the student and batches live


class TransferMethod:
    name: ClassVar[str]
    references: ClassVar[tuple[str, ...]] = ("teacher",)   # frozen outputs forward_train needs
    defaults: ClassVar[dict] = {}                          # over TRAIN_DEFAULTS
    description: ClassVar[str] = ""
    control: ClassVar[bool] = False     # a control arm (no knowledge from a trained teacher)
    # distils each sample from the one most confident of its sources (multi-teacher parallel and
    # soup units run only such methods)
    partitions_data: ClassVar[bool] = False

    def __init__(self, params: dict, compat: str | None = None):
        self.params = params
        self.compat = compat or None

    def setup(self, student: torch.nn.Module, context: SetupContext) -> None:
        """Once per run, after the student is loaded and before the optimiser is built."""

    def parameters(self) -> list[torch.nn.Parameter]:
        """Trainable parameters besides the student's (the optimiser trains both)."""
        return []

    def forward_train(self, student: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
                      refs: dict[str, torch.Tensor], idx: torch.Tensor | None = None
                      ) -> tuple[torch.Tensor, dict, dict]:
        """-> (student logits, named losses summed for the step, named logs such as
        teacher_input, as 0-d tensors: reading them would wait for the device). `idx` are the
        batch's sample indices in the transfer split."""
        raise NotImplementedError

    def after_step(self, student: torch.nn.Module, step: int, batch: int) -> None:
        """After each optimiser step; `step` counts steps over the run from 0, `batch` within
        the epoch from 0."""

    def eval_model(self, student: torch.nn.Module) -> torch.nn.Module:
        """The module whose predictions are evaluated after an epoch (MCL: the slow weights)."""
        return student

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


_METHODS: dict[str, type[TransferMethod]] = {}


def register_method(cls: type[TransferMethod]) -> type[TransferMethod]:
    _METHODS[cls.name] = cls
    return cls


def list_methods() -> list[str]:
    return sorted(_METHODS)


def partition_methods() -> tuple[str, ...]:
    """The registered methods that partition the data per sample between their sources."""
    return tuple(name for name in list_methods() if _METHODS[name].partitions_data)


def get_method(name: str) -> type[TransferMethod]:
    if name not in _METHODS:
        raise InputError(f"unknown method {name!r}; methods: {', '.join(list_methods())}")
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
                raise InputError(f"method {name!r} has no parameter {key!r}; "
                                 f"parameters: {', '.join(sorted(params))}")
            params[key] = _coerce(name, key, params[key], value)
    try:
        TrainingConfig.of(params).check()
    except ValueError as e:
        raise InputError(f"method {name!r}: {e}") from None
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
    raise InputError(f"method {method!r}: parameter {key!r} must be {type(default).__name__}, "
                     f"got {value!r}")
