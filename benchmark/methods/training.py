"""How a transfer run trains, apart from what its method computes: the typed half of a unit's
params.

A unit's params are one flat JSON object (its key hashes that text, so it stays as it is): the
fields of `TrainingConfig` (optimiser, data, precision, divergence) beside the method's own knobs
(`T`, `topk`, a method's `defaults`). The fields marked `stream` fix the batches a run sees and
the frozen outputs that come with them: units equal in these (and in dataset and seed) train in
one lockstep group (`benchmark.units.group`).
"""
import dataclasses
from dataclasses import dataclass, field

_STREAM = {"stream": True}


@dataclass(frozen=True)
class TrainingConfig:
    # docs/protocol.md#training: SGD momentum 0.9, wd 1e-4, no schedule, 20 epochs, lr 1e-4, the
    # training augmentation on every batch; bf16 autocast where a GPU runs the unit
    lr: float = 1e-4
    momentum: float = 0.9
    weight_decay: float = 1e-4
    epochs: int = field(default=20, metadata=_STREAM)
    batch_size: int = field(default=128, metadata=_STREAM)
    augment: bool = field(default=True, metadata=_STREAM)
    precision: str = field(default="bf16", metadata=_STREAM)
    # transfer on the first N samples of the (pre-shuffled) transfer split; 0 = all
    train_samples: int = field(default=0, metadata=_STREAM)
    # a run whose accuracy falls this many points below its start is `diverged`
    diverge_margin: float = 20.0

    def check(self) -> None:
        """ValueError unless the settings can train (checked when params are resolved; a unit's
        config is read as planned, so a bad value fails that unit when it trains, not the
        lockstep grouping of its whole task)."""
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0 or self.train_samples < 0:
            raise ValueError("epochs and batch_size must be >= 1, lr > 0 and train_samples >= 0")

    @classmethod
    def of(cls, params: dict) -> "TrainingConfig":
        """The training fields of a unit's flat params, as they are."""
        return cls(**{f.name: params[f.name] for f in dataclasses.fields(cls)})

    def stream(self) -> tuple:
        """The settings that fix a run's batches and frozen outputs, in field order."""
        return tuple(getattr(self, f.name) for f in dataclasses.fields(self) if f.metadata)

    def params(self) -> dict:
        """As flat params (name -> value)."""
        return dataclasses.asdict(self)
