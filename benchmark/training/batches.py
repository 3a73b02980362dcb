"""Where a transfer step's batch and its frozen outputs come from.

A `Stream` is the batches of an epoch before any model sees them: the order from `epoch_order`, a
pure function of (seed, epoch), and the images as floats in [0, 1] on the run's device, augmented
per batch (`benchmark.data.augment`) with parameters that are a pure function of (seed, epoch,
batch index). Streams with the same `key` give the same batches, so units whose streams are equal
can share one (`benchmark.training.lockstep`): one gather, one augmentation and one forward pass
per distinct frozen model per batch, whatever number of units it feeds.

A unit sees the stream through one of two views (`epoch(e)` yields its `Batch`es, `view(images)`
turns a shared batch into its own; `ref_dims` gives each reference's width before training):

- `CachedBatches` (params `augment: false`, the micro zoo): the transfer split as it is. Every
  frozen output a method needs is computed once over the split (`loading.train_outputs`, shared by
  the units of a task) and indexed per batch: a per-batch forward pass would give the same numbers.
- `OnlineBatches` (`augment: true`, the paper's protocol, docs/protocol.md#training): loader
  workers gather uint8 images (pinned, persistent across epochs); every frozen model (teacher,
  frozen student, random teacher, ...) forwards the augmented batch, normalised with its own
  mean/std (and resized to its `Frozen.size`, a teacher of another input size), without
  gradients and under the run's autocast, once per batch (`Images.outputs`).

Nothing here draws from torch's global random state (the loader has its own generator), so a
resumed run, one with another number of workers, or one stepping in a group sees the same images.
"""
import collections
import dataclasses
from typing import Iterator

import torch

from benchmark.models import gpu
from benchmark.data.augment import augment
from benchmark.data.datasets import Dataset, standardize
from benchmark.data.preprocess import resize_to
from benchmark.models.gpu import Runtime
from benchmark.data.splits import CachedDataset
from benchmark.models.build import features_and_logits
from pairs.catalog import ModelEntry

CPU = Runtime()
_KINDS = {"features": 0, "logits": 1}       # output kind -> its place in a (features, logits) pass


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


def _model_input(x01: torch.Tensor, entry: ModelEntry, runtime: Runtime,
                 size: int | None = None) -> torch.Tensor:
    """One model's view of a batch: its own mean/std (then `size`, where given), in the run's
    memory format."""
    return gpu.to_device(resize_to(standardize(x01, entry.mean, entry.std), size),
                         runtime.device, runtime.channels_last)


@dataclasses.dataclass
class Frozen:
    """A model playing a role on every batch, normalising with its entry's mean/std and resized
    to `size` where given (`benchmark.data.feeding.teacher_size`); `name` labels its forward
    passes (default: the entry's name)."""
    module: torch.nn.Module
    entry: ModelEntry
    name: str = ""
    size: int | None = None

    @property
    def label(self) -> str:
        return self.name or self.entry.name


@dataclasses.dataclass
class Images:
    """One batch of a stream, before any model normalises it; what each model makes of it is
    computed once, by the first unit that asks (`input_for`, `outputs`)."""
    x01: torch.Tensor                # floats in [0, 1] on the device, augmented if the stream is
    y: torch.Tensor
    idx: torch.Tensor
    runtime: Runtime
    _inputs: dict = dataclasses.field(default_factory=dict)
    _outputs: dict = dataclasses.field(default_factory=dict)

    def input_for(self, entry: ModelEntry, size: int | None = None) -> torch.Tensor:
        norm = (tuple(entry.mean), tuple(entry.std), size)
        if norm not in self._inputs:
            self._inputs[norm] = _model_input(self.x01, entry, self.runtime, size)
        return self._inputs[norm]

    def outputs(self, frozen: Frozen) -> tuple[torch.Tensor, torch.Tensor]:
        """(features, logits) of a frozen model on this batch, as float32; one forward pass per
        distinct module, whichever units share it."""
        key = id(frozen.module), tuple(frozen.entry.mean), tuple(frozen.entry.std), frozen.size
        if key not in self._outputs:
            self._outputs[key] = _forward(frozen, self.input_for(frozen.entry, frozen.size),
                                          self.runtime)
            FORWARD_PASSES[frozen.label] += 1
        return self._outputs[key]


# per-batch frozen forward passes of this process, by model label (for benchmarks and tests)
FORWARD_PASSES: collections.Counter = collections.Counter()


def _forward(frozen: Frozen, x: torch.Tensor, runtime: Runtime):
    with torch.no_grad(), runtime.autocast():
        feats, logits = features_and_logits(frozen.module, x)
    return feats.float(), logits.float()


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


class Stream:
    """The batches of every epoch of a run, as `Images`: gathered by loader workers (`loader`,
    built on first use, one for the run) or indexed in process; augmented when `augmented`."""

    def __init__(self, dataset: Dataset, n: int, batch_size: int, seed: int,
                 runtime: Runtime = CPU, augmented: bool = False, loader: bool = False):
        self.dataset, self.runtime, self.augmented, self.use_loader = (dataset, runtime,
                                                                       augmented, loader)
        self.sampler, self.loader = EpochBatches(n, batch_size, seed), None

    @property
    def n(self) -> int:
        return self.sampler.n

    @property
    def key(self) -> tuple:
        """What fixes the batches: streams with equal keys give equal batches."""
        return (self.dataset.name, self.dataset.preprocessing, self.sampler.n,
                self.sampler.batch_size, self.sampler.seed, self.augmented, self.runtime.device,
                self.runtime.channels_last)

    def _images(self, x01: torch.Tensor, y: torch.Tensor, idx: torch.Tensor) -> Images:
        device = self.runtime.device      # from pinned memory, without making the host wait
        return Images(x01, gpu.to_device(y, device, False), gpu.to_device(idx, device, False),
                      self.runtime)

    def at(self, idx: torch.Tensor) -> Images:
        """The unaugmented samples `idx`, indexed in process."""
        return self._images(_unit_range(self.dataset.train_x[idx], self.runtime),
                            self.dataset.train_y[idx], idx)

    def epoch(self, epoch: int) -> Iterator[Images]:
        self.sampler.epoch = epoch
        batches = self._loaded() if self.use_loader else (
            (self.dataset.train_x[idx], self.dataset.train_y[idx], idx) for idx in
            epoch_order(self.sampler.n, self.sampler.batch_size, self.sampler.seed, epoch))
        for index, (x_uint8, y, idx) in enumerate(batches):
            x01 = _unit_range(x_uint8, self.runtime)
            if self.augmented:
                x01 = augment(x01, batch_generator(self.sampler.seed, epoch, index))
            yield self._images(x01, y, idx)

    def _loaded(self):
        if self.loader is None:      # one loader for the run: workers start once, not per epoch
            workers = self.runtime.workers
            self.loader = torch.utils.data.DataLoader(
                CachedDataset(self.dataset.train_x, self.dataset.train_y), num_workers=workers,
                batch_sampler=self.sampler, pin_memory=self.runtime.device.type == "cuda",
                persistent_workers=workers > 0, prefetch_factor=4 if workers > 0 else None,
                generator=torch.Generator())     # workers' seeds: not from the global state
        return self.loader


class _View:
    """A unit's view of a stream (its own until a lockstep group shares another's)."""
    stream: Stream
    entry: ModelEntry

    @property
    def n(self) -> int:
        return self.stream.n

    @property
    def batch_size(self) -> int:
        return self.stream.sampler.batch_size

    def set_batch_size(self, batch_size: int) -> None:
        """Before the first epoch (the loader is built then)."""
        self.stream.sampler.batch_size = batch_size

    def refs(self, images: Images) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def view(self, images: Images) -> Batch:
        """This unit's batch from a batch of a stream equal to its own."""
        return Batch(images.input_for(self.entry), images.y, images.idx, self.refs(images))

    def epoch(self, epoch: int) -> Iterator[Batch]:
        for images in self.stream.epoch(epoch):
            yield self.view(images)


class CachedBatches(_View):
    """Batches of the unaugmented split with references precomputed over all of it."""

    def __init__(self, dataset: Dataset, entry: ModelEntry, refs: dict[str, torch.Tensor],
                 n: int, batch_size: int, seed: int, runtime: Runtime = CPU):
        self.stream = Stream(dataset, n, batch_size, seed, runtime)
        self.entry, self.runtime = entry, runtime
        self.refs_all = {name: r.to(runtime.device) for name, r in refs.items()}
        self.frozen: dict[str, Frozen] = {}       # outputs precomputed: nothing runs per batch

    @property
    def ref_dims(self) -> dict[str, int]:
        return {name: r.shape[1] for name, r in self.refs_all.items()}

    def refs(self, images: Images) -> dict[str, torch.Tensor]:
        return {name: r[images.idx] for name, r in self.refs_all.items()}

    def batch(self, idx: torch.Tensor) -> Batch:
        return self.view(self.stream.at(idx))


class OnlineBatches(_View):
    """Augmented batches with references computed per batch by the frozen models."""

    def __init__(self, dataset: Dataset, entry: ModelEntry, frozen: dict[str, Frozen],
                 references: dict[str, tuple[str, str]], n: int, batch_size: int, seed: int,
                 runtime: Runtime = CPU, augmented: bool = True):
        self.stream = Stream(dataset, n, batch_size, seed, runtime, augmented, loader=True)
        self.entry, self.runtime = entry, runtime
        self.references = references                     # reference name -> (role, kind)
        self.frozen = {role: dataclasses.replace(f, module=gpu.prepare(
                           f.module, runtime.device, runtime.channels_last, frozen=True))
                       for role, f in frozen.items()}
        probe = self.stream.at(torch.arange(min(2, n)))
        self.ref_dims = {name: _forward(self.frozen[role], probe.input_for(
                             self.frozen[role].entry, self.frozen[role].size),
                             runtime)[_KINDS[kind]].shape[1]
                         for name, (role, kind) in references.items()}

    def refs(self, images: Images) -> dict[str, torch.Tensor]:
        return {name: images.outputs(self.frozen[role])[_KINDS[kind]]
                for name, (role, kind) in self.references.items()}
