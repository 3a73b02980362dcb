"""Lockstep: several training runs stepping together over one stream of batches.

Runs whose batch streams are equal (`batches.Stream.key`: data, samples, batch size, seed,
augmentation) step in lockstep: per batch the stream gathers and augments the images once, each
frozen model (teacher, frozen student, random teacher) forwards them once (`Images.outputs`), then
every run takes its own optimiser step on its own view of the batch. Each run ends exactly as it
would alone: the batches are the same, a shared forward pass gives the numbers each run would have
computed, and each run draws from its own torch random state (`RandomState`, swapped in around
everything the run does), so interleaving never changes what a run draws.

A run (`Run`) says which epoch it needs next, is handed each epoch's row and status (its unit
evaluates and checkpoints there) and is finished once it needs none. Runs may need different
epochs (a group resumed after a kill): an epoch is stepped by the runs that need it while the
others wait. A run that raises is dropped (`on_error`) and the others go on. An epoch's time is
shared equally by the runs that stepped it, so the times of a group add up to its wall time.
"""
import contextlib
import copy
import time
from typing import Callable, Protocol

import torch

from benchmark.models import gpu
from benchmark.training import trainer as training
from benchmark.training.trainer import EpochRun, Trainer


class RandomState:
    """A run's own torch random state: the CPU generator's, and the GPU's when it runs on one."""

    def __init__(self, device: torch.device):
        self.device = device if device.type == "cuda" else None
        self.capture()

    def capture(self) -> None:
        self.cpu = torch.get_rng_state()
        self.gpu = torch.cuda.get_rng_state(self.device) if self.device else None

    @contextlib.contextmanager
    def active(self):
        """The run's state in place of the global one; what the run draws is kept."""
        torch.set_rng_state(self.cpu)
        if self.device:
            torch.cuda.set_rng_state(self.gpu, self.device)
        try:
            yield
        finally:
            self.capture()


class Run(Protocol):
    trainer: Trainer
    rng: RandomState

    def next_epoch(self) -> int | None:
        """The epoch this run trains next; None once it is done."""

    def end_epoch(self, row: dict, status: str) -> None:
        """An epoch of this run was trained: its row and status (`EpochRun.finish`)."""

    def finish(self) -> None:
        """Called once, when `next_epoch` has become None."""


def run_lockstep(runs: list[Run], on_error: Callable[[Run, Exception], None] | None = None):
    """Train `runs` to their ends in lockstep, over the first run's stream (each run's own must
    be equal to it). `on_error(run, error)`: a run that raised, dropped (default: re-raise)."""
    stream = runs[0].trainer.batches.stream
    for run in runs:
        if run.trainer.batches.stream.key != stream.key:
            raise ValueError(f"runs in lockstep need equal batch streams: {stream.key} and "
                             f"{run.trainer.batches.stream.key}")
    live = list(runs)

    def fail(run: Run, error: Exception):
        live.remove(run)
        if on_error is None:
            raise error
        on_error(run, error)

    while True:
        for run in [r for r in live if r.next_epoch() is None]:
            try:
                with run.rng.active():
                    run.finish()
                live.remove(run)
            except Exception as e:      # the run's own failure: it stops alone
                fail(run, e)
        if not live:
            return
        epoch = min(run.next_epoch() for run in live)
        _epoch([run for run in live if run.next_epoch() == epoch], stream, epoch, fail)


def _epoch(runs: list[Run], stream, epoch: int, fail) -> None:
    """One epoch of `runs` on the shared stream: per batch, every run still going steps on its
    own view of it, under its own random state."""
    epochs = {}                          # id(run) -> (run, its EpochRun)
    for run in runs:
        with run.rng.active():
            epochs[id(run)] = run, EpochRun(run.trainer)
    t0 = time.perf_counter()
    for index, images in enumerate(stream.epoch(epoch)):
        going = [(run, e) for run, e in epochs.values() if e.going]
        if not going:
            break
        for run, epoch_run in going:
            try:
                batch = run.trainer.batches.view(images)
                with run.rng.active():
                    epoch_run.step(batch, index)
            except Exception as e:      # the run's own failure: it stops alone
                del epochs[id(run)]
                fail(run, e)
    for _, epoch_run in epochs.values():
        epoch_run.losses()
    seconds = (time.perf_counter() - t0) / max(1, len(epochs))
    for run, epoch_run in epochs.values():
        try:
            with run.rng.active():
                run.end_epoch(*epoch_run.finish(epoch, seconds))
        except Exception as e:          # the run's own failure: it stops alone
            fail(run, e)


def probe_group(trainers: list[Trainer], size: int) -> None:
    """At batch size `size`, what one lockstep step of the group holds at its peak: a copy of
    every student with its gradients (each student keeps its own between steps), then one
    forward of each distinct frozen model of the group."""
    probes = [copy.deepcopy(t.student) for t in trainers]
    frozen = list({id(f.module): f for t in trainers for f in t.batches.frozen.values()}.values())
    for i, (trainer, probe) in enumerate(zip(trainers, probes)):
        trainer.probe_step(probe, size, frozen if i == len(trainers) - 1 else ())


def group_fits(trainers: list[Trainer]) -> bool:
    """Whether the group's trainers fit the device together at their (shared) batch size: on a
    GPU, a `probe_group` that does not run out of memory; on a CPU, always. The probe runs with
    its own random state, so the runs are the same as without it."""
    runtime = trainers[0].runtime
    if not training.may_run_out_of_memory(runtime):
        return True
    try:
        with torch.random.fork_rng(devices=[runtime.device] if runtime.device.type == "cuda"
                                   else []):
            probe_group(trainers, trainers[0].adaptive.size)
        return True
    except (RuntimeError, torch.cuda.OutOfMemoryError) as e:
        if not gpu.is_oom(e):
            raise
        return False
    finally:
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
