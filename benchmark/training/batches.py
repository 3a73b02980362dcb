"""Where a transfer step's batch and its frozen outputs come from.

Two sources behind one interface (`epoch(e)` yields `Batch`es; `ref_dims` gives each reference's
width before training, for methods that size modules by it):

- `CachedBatches` (params `augment: false`, the micro zoo): the transfer split as it is. Every
  frozen output a method needs is computed once over the split (`loading.train_outputs`, shared by
  the units of a task) and indexed per batch: a per-batch forward pass would give the same numbers.
- `OnlineBatches` (`augment: true`, the paper's protocol, docs/protocol.md#training): loader workers gather
  uint8 images (pinned, persistent across epochs); each batch is augmented on the run's device
  (`benchmark.data.augment`), and every frozen model (teacher, frozen student, random teacher, ...)
  forwards that same augmented batch, normalised with its own mean/std, without gradients and
  under the run's autocast.

Both draw the batch order from `epoch_order`, a pure function of (seed, epoch), and a batch's
augmentation is a pure function of (seed, epoch, batch index), so a resumed run, or one with
another number of workers, sees the same images.
"""
import dataclasses
from typing import Iterator

import torch

from benchmark.models import gpu
from benchmark.data.augment import augment
from benchmark.data.datasets import Dataset, standardize
from benchmark.models.gpu import Runtime
from benchmark.data.splits import CachedDataset
from benchmark.models.build import features_and_logits
from pairs.catalog import ModelEntry

CPU = Runtime()


@dataclasses.dataclass
class Batch:
    x: torch.Tensor                  # the student's input: normalised with its mean/std
    y: torch.Tensor
    idx: torch.Tensor                # the samples' indices in the transfer split
    refs: dict[str, torch.Tensor]    # each reference's outputs on these samples


def epoch_order(n: int, batch_size: int, seed: int, epoch: int) -> list[torch.Tensor]:
    """Shuffled full batches, a pure function of (seed, epoch) so a resumed run sees the same."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))
    usable = n - n % batch_size if n >= batch_size else n   # no 1-sample batch for BatchNorm
    return list(order[:usable].split(batch_size))


def _unit_range(x_uint8: torch.Tensor, runtime: Runtime) -> torch.Tensor:
    """uint8 images as floats in [0, 1] on the run's device (moved as uint8: 4x fewer bytes)."""
    return gpu.to_device(x_uint8, runtime.device, channels_last=False).float() / 255.0


def _model_input(x01: torch.Tensor, entry: ModelEntry, runtime: Runtime) -> torch.Tensor:
    """One model's view of a batch: its own mean/std, in the run's memory format."""
    return gpu.to_device(standardize(x01, entry.mean, entry.std), runtime.device,
                         runtime.channels_last)


@dataclasses.dataclass
class Frozen:
    """A model playing a role on every batch, normalising with its entry's mean/std."""
    module: torch.nn.Module
    entry: ModelEntry


class CachedBatches:
    """Batches of the unaugmented split with references precomputed over all of it."""

    def __init__(self, dataset: Dataset, entry: ModelEntry, refs: dict[str, torch.Tensor],
                 n: int, batch_size: int, seed: int, runtime: Runtime = CPU):
        self.dataset, self.entry, self.runtime = dataset, entry, runtime
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.refs = {name: r.to(runtime.device) for name, r in refs.items()}
        self.frozen: dict[str, Frozen] = {}       # outputs precomputed: nothing runs per batch

    def set_batch_size(self, batch_size: int) -> None:
        self.batch_size = batch_size

    @property
    def ref_dims(self) -> dict[str, int]:
        return {name: r.shape[1] for name, r in self.refs.items()}

    def batch(self, idx: torch.Tensor) -> Batch:
        on_device = idx.to(self.runtime.device)
        x01 = _unit_range(self.dataset.train_x[idx], self.runtime)
        return Batch(_model_input(x01, self.entry, self.runtime),
                     self.dataset.train_y[idx].to(self.runtime.device), on_device,
                     {name: r[on_device] for name, r in self.refs.items()})

    def epoch(self, epoch: int) -> Iterator[Batch]:
        for idx in epoch_order(self.n, self.batch_size, self.seed, epoch):
            yield self.batch(idx)


def batch_generator(seed: int, epoch: int, index: int) -> torch.Generator:
    """The augmentation's random source for one batch: a pure function of its position."""
    return torch.Generator().manual_seed((seed * 1_000_003 + epoch) * 1_000_003 + index)


@dataclasses.dataclass
class EpochBatches:
    """A batch sampler following `epoch_order` for the epoch last set: it runs in the loader's
    main process, so persistent workers follow it across epochs."""
    n: int
    batch_size: int
    seed: int
    epoch: int = 0

    def __iter__(self):
        for idx in epoch_order(self.n, self.batch_size, self.seed, self.epoch):
            yield idx.tolist()

    def __len__(self):
        return len(epoch_order(self.n, self.batch_size, self.seed, self.epoch))


class OnlineBatches:
    """Augmented batches with references computed per batch by the frozen models."""

    def __init__(self, dataset: Dataset, entry: ModelEntry, frozen: dict[str, Frozen],
                 references: dict[str, tuple[str, str]], n: int, batch_size: int, seed: int,
                 runtime: Runtime = CPU, augmented: bool = True):
        self.dataset, self.entry, self.runtime = dataset, entry, runtime
        self.n, self.seed, self.augmented = n, seed, augmented
        self.references = references                     # reference name -> (role, kind)
        self.frozen = {role: Frozen(gpu.prepare(f.module, runtime.device, runtime.channels_last,
                                                frozen=True), f.entry)
                       for role, f in frozen.items()}
        self.sampler, self.loader = EpochBatches(n, batch_size, seed), None
        probe = self._outputs(_unit_range(dataset.train_x[:2], runtime))
        self.ref_dims = {name: out.shape[1] for name, out in probe.items()}

    @property
    def batch_size(self) -> int:
        return self.sampler.batch_size

    def set_batch_size(self, batch_size: int) -> None:
        """Before the first epoch (the loader is built then)."""
        self.sampler.batch_size = batch_size

    def _outputs(self, x01: torch.Tensor) -> dict[str, torch.Tensor]:
        outputs = {}
        for role in dict.fromkeys(role for role, _ in self.references.values()):
            f = self.frozen[role]
            with torch.no_grad(), self.runtime.autocast():
                feats, logits = features_and_logits(f.module,
                                                    _model_input(x01, f.entry, self.runtime))
            outputs[role, "features"], outputs[role, "logits"] = feats.float(), logits.float()
        return {name: outputs[spec] for name, spec in self.references.items()}

    def epoch(self, epoch: int) -> Iterator[Batch]:
        if self.loader is None:      # one loader for the run: workers start once, not per epoch
            workers = self.runtime.workers
            self.loader = torch.utils.data.DataLoader(
                CachedDataset(self.dataset.train_x, self.dataset.train_y), num_workers=workers,
                batch_sampler=self.sampler, pin_memory=self.runtime.device.type == "cuda",
                persistent_workers=workers > 0, prefetch_factor=4 if workers > 0 else None)
        self.sampler.epoch = epoch
        for index, (x_uint8, y, idx) in enumerate(self.loader):
            x01 = _unit_range(x_uint8, self.runtime)
            if self.augmented:
                x01 = augment(x01, batch_generator(self.seed, epoch, index))
            yield Batch(_model_input(x01, self.entry, self.runtime), y.to(self.runtime.device),
                        idx.to(self.runtime.device), self._outputs(x01))
