"""Where a transfer step's batch and its frozen outputs come from.

Two sources behind one interface (`epoch(e)` yields `Batch`es; `ref_dims` gives each reference's
width before training, for methods that size modules by it):

- `CachedBatches` (params `augment: false`, the micro zoo): the transfer split as it is. Every
  frozen output a method needs is computed once over the split (`loading.train_outputs`, shared by
  the units of a task) and indexed per batch: a per-batch forward pass would give the same numbers.
- `OnlineBatches` (`augment: true`, the paper's protocol, paper.md 3.3): each batch is augmented on
  the fly in loader workers; every frozen model (teacher, frozen student, random teacher, ...)
  forwards that same augmented batch, normalised with its own mean/std, without gradients and under
  the run's autocast, on the run's device.

Both draw the batch order from `epoch_order`, a pure function of (seed, epoch), and augmentation
is a pure function of (seed, epoch, sample), so a resumed run, or one with another number of
workers, sees the same images.
"""
import dataclasses
from typing import Iterator

import torch

from benchmark import gpu
from benchmark.data import Dataset, normalize
from benchmark.gpu import Runtime
from benchmark.models import features_and_logits
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


def _student_input(x_uint8: torch.Tensor, entry: ModelEntry, runtime: Runtime) -> torch.Tensor:
    x = normalize(gpu.to_device(x_uint8, runtime.device, channels_last=False),
                  entry.mean, entry.std)
    return gpu.to_device(x, runtime.device, runtime.channels_last)


class CachedBatches:
    """Batches of the unaugmented split with references precomputed over all of it."""

    def __init__(self, dataset: Dataset, entry: ModelEntry, refs: dict[str, torch.Tensor],
                 n: int, batch_size: int, seed: int, runtime: Runtime = CPU):
        self.dataset, self.entry, self.runtime = dataset, entry, runtime
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.refs = {name: r.to(runtime.device) for name, r in refs.items()}

    @property
    def ref_dims(self) -> dict[str, int]:
        return {name: r.shape[1] for name, r in self.refs.items()}

    def batch(self, idx: torch.Tensor) -> Batch:
        on_device = idx.to(self.runtime.device)
        return Batch(_student_input(self.dataset.train_x[idx], self.entry, self.runtime),
                     self.dataset.train_y[idx].to(self.runtime.device), on_device,
                     {name: r[on_device] for name, r in self.refs.items()})

    def epoch(self, epoch: int) -> Iterator[Batch]:
        for idx in epoch_order(self.n, self.batch_size, self.seed, epoch):
            yield self.batch(idx)


def sample_seed(seed: int, epoch: int, sample: int) -> int:
    return (seed * 1_000_003 + epoch) * 100_000_007 + sample


class AugmentedSplit(torch.utils.data.Dataset):
    """Items `(epoch, sample)` -> (augmented uint8 image, sample); the augmentation draws from
    its own generator state seeded by (seed, epoch, sample), never from the caller's."""

    def __init__(self, images, seed: int, augment):
        self.images, self.seed, self.augment = images, seed, augment

    def __len__(self):
        return len(self.images)

    def __getitem__(self, key: tuple[int, int]):
        epoch, sample = key
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(sample_seed(self.seed, epoch, sample))
            return self.augment(torch.as_tensor(self.images[sample])), sample


@dataclasses.dataclass
class Frozen:
    """A model playing a role on every batch, normalising with its entry's mean/std."""
    module: torch.nn.Module
    entry: ModelEntry


class OnlineBatches:
    """Augmented batches with references computed per batch by the frozen models."""

    def __init__(self, dataset: Dataset, entry: ModelEntry, frozen: dict[str, Frozen],
                 references: dict[str, tuple[str, str]], n: int, batch_size: int, seed: int,
                 runtime: Runtime = CPU, augment=None):
        from benchmark.imagefolder import augmentation
        self.dataset, self.entry, self.runtime = dataset, entry, runtime
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.references = references                     # reference name -> (role, kind)
        self.frozen = {role: Frozen(gpu.prepare(f.module, runtime.device, runtime.channels_last,
                                                frozen=True), f.entry)
                       for role, f in frozen.items()}
        self.split = AugmentedSplit(dataset.train_x, seed, augment or augmentation())
        probe = self._outputs(dataset.train_x[:2])
        self.ref_dims = {name: out.shape[1] for name, out in probe.items()}

    def _outputs(self, x_uint8: torch.Tensor) -> dict[str, torch.Tensor]:
        x_uint8 = gpu.to_device(x_uint8, self.runtime.device, channels_last=False)
        outputs = {}
        for role in dict.fromkeys(role for role, _ in self.references.values()):
            f = self.frozen[role]
            x = gpu.to_device(normalize(x_uint8, f.entry.mean, f.entry.std),
                              self.runtime.device, self.runtime.channels_last)
            with torch.no_grad(), self.runtime.autocast():
                feats, logits = features_and_logits(f.module, x)
            outputs[role, "features"], outputs[role, "logits"] = feats.float(), logits.float()
        return {name: outputs[spec] for name, spec in self.references.items()}

    def epoch(self, epoch: int) -> Iterator[Batch]:
        order = [[(epoch, int(j)) for j in idx]
                 for idx in epoch_order(self.n, self.batch_size, self.seed, epoch)]
        loader = torch.utils.data.DataLoader(
            self.split, batch_sampler=order, num_workers=self.runtime.workers,
            pin_memory=self.runtime.device.type == "cuda")
        for x_uint8, idx in loader:
            yield Batch(_student_input(x_uint8, self.entry, self.runtime),
                        self.dataset.train_y[idx].to(self.runtime.device),
                        idx.to(self.runtime.device), self._outputs(x_uint8))
