"""The trainer: one method training one student on a batch source (`benchmark.training.batches`).

Epochs of optimiser steps on the run's device under its autocast, evaluation of the model the
method evaluates (MCL: its slow weights), the state a checkpoint saves, and, on a GPU, the batch
size fitted before training. `benchmark.units.transfer` and `benchmark.units.multi` build and drive it.
"""
import copy
import math
import time

import numpy as np
import torch

from benchmark import data, models

from benchmark.models import gpu
from benchmark.data.preprocess import resize_to
from benchmark.training.batches import Batch, CachedBatches, OnlineBatches
from benchmark.methods import SetupContext, TransferMethod
from benchmark.methods.training import TrainingConfig
from pairs.catalog import ModelEntry


class Trainer:
    """One method training one student on a batch source: epochs, evaluation, state."""

    def __init__(self, method: TransferMethod, student: torch.nn.Module, entry: ModelEntry,
                 dataset: data.Dataset, batches: CachedBatches | OnlineBatches, params: dict,
                 seed: int, runtime: gpu.Runtime = gpu.Runtime()):
        self.runtime = runtime
        self.student = gpu.prepare(student, runtime.device, runtime.channels_last)
        self.method, self.entry, self.batches = method, entry, batches
        self.dataset, self.params, self.seed = dataset, params, seed
        method.setup(self.student, SetupContext(dataset.train_y[:batches.n], dataset.num_classes,
                                                batches.ref_dims, seed, runtime.device))
        training = TrainingConfig.of(params)
        self.optimizer = torch.optim.SGD(list(student.parameters()) + method.parameters(),
                                         lr=training.lr, momentum=training.momentum,
                                         weight_decay=training.weight_decay)
        self.scaler = gpu.grad_scaler(runtime.precision, runtime.device)
        self.adaptive = gpu.AdaptiveBatch(batches.batch_size)
        self.step = 0

    def fit_batch_size(self) -> None:
        """On a GPU, before training: halve the batch (timm's `decay_batch_step`) until one
        forward and backward of the student and one forward of each frozen model fit (the
        automatic batch size of docs/protocol.md#training). The probe runs on a copy of the student with its own
        random state, so the run itself is the same as without it."""
        if not may_run_out_of_memory(self.runtime):
            return
        with torch.random.fork_rng(devices=[self.runtime.device] if self.runtime.device.type
                                   == "cuda" else []):
            probe = copy.deepcopy(self.student)
            self.adaptive.run(lambda size: self._probe(probe, size))
        self.batches.set_batch_size(self.adaptive.size)

    def _probe(self, probe: torch.nn.Module, size: int) -> None:
        self.probe_step(probe, size, self.batches.frozen.values())
        probe.zero_grad(set_to_none=True)

    def probe_step(self, model: torch.nn.Module, size: int, frozen=()) -> None:
        """At batch size `size`: one forward and backward of `model`, a copy of the student (its
        gradients are left in place, as a step leaves them), then one forward of each of the
        `frozen` models (`batches.Frozen`, each at its own size)."""
        x = torch.zeros(size, *self.entry.input_size, device=self.runtime.device)
        x = gpu.to_device(x, self.runtime.device, self.runtime.channels_last)
        with self.runtime.autocast():
            model(x).float().sum().backward()
            with torch.no_grad():
                for f in frozen:
                    f.module(resize_to(x, f.size))

    def batch_record(self) -> dict:
        """What the run's transfer_runs row records of its batch size."""
        return self.adaptive.record()

    def train_step(self, batch: Batch, index: int) -> tuple[torch.Tensor, dict]:
        """One optimiser step on `batch`, the `index`-th of its epoch; returns (loss, logs) as
        tensors, without waiting for the device to finish the step."""
        with self.runtime.autocast():
            _, named_losses, logs = self.method.forward_train(self.student, batch.x, batch.y,
                                                              batch.refs, batch.idx)
        loss = sum(named_losses.values()).float()
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is None:
            loss.backward()
            self.optimizer.step()
        else:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        self.method.after_step(self.student, self.step, index)
        self.step += 1
        return loss.detach(), logs

    def train_epoch(self, epoch: int) -> tuple[dict, str]:
        """One epoch over the trainer's own batches (`EpochRun`)."""
        run, t0 = EpochRun(self), time.perf_counter()
        for index, batch in enumerate(self.batches.epoch(epoch)):
            run.step(batch, index)
            if not run.going:
                break
        run.losses()
        return run.finish(epoch, time.perf_counter() - t0)

    def eval_model(self) -> torch.nn.Module:
        return self.method.eval_model(self.student)

    def predict(self) -> np.ndarray:
        """Eval-split predictions of the evaluated model (MCL: the slow weights)."""
        model = self.eval_model()
        model.eval()
        preds = predict_eval(model, self.entry, self.dataset, self.runtime.precision)
        self.student.train()
        return preds

    def state(self) -> dict:
        state = {"student": self.student.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "method": self.method.state_dict(), "step": self.step,
                 "batch": self.batch_record(), "oom_history": self.adaptive.history}
        if self.scaler is not None:
            state["scaler"] = self.scaler.state_dict()
        return state

    def load(self, state: dict):
        self.student.load_state_dict(state["student"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.method.load_state_dict(state.get("method", {}))
        if self.scaler is not None and "scaler" in state:
            self.scaler.load_state_dict(state["scaler"])
        self.step = state.get("step", 0)
        if "batch" in state:           # the size the run was fitted to, not a new probe's
            self.adaptive.size = state["batch"]["batch_size"]
            self.adaptive.history = list(state["oom_history"])
            self.batches.set_batch_size(self.adaptive.size)


class EpochRun:
    """One epoch of a trainer, a batch at a time: `step` while `going`, then `finish`. A
    non-finite loss ends the epoch (status `diverged`). Each step's loss is read only once the
    next step is queued, so a GPU never waits for the host between steps (a non-finite step is
    thus followed by one more, on weights that are lost anyway)."""

    def __init__(self, trainer: Trainer):
        self.trainer, self.going, self._losses = trainer, True, None
        self.steps = []                  # (loss, teacher_input or None, batch size) as queued
        trainer.student.train()

    def step(self, batch: Batch, index: int) -> None:
        loss, logs = self.trainer.train_step(batch, index)
        self.steps.append((loss, logs.get("teacher_input"), len(batch.y)))
        if len(self.steps) > 1 and not torch.isfinite(self.steps[-2][0]):
            self.going = False

    def losses(self) -> torch.Tensor:
        """The steps' losses on the host: waits for the device to finish the epoch's steps."""
        if self._losses is None:
            self._losses = (torch.stack([loss for loss, _, _ in self.steps]).cpu() if self.steps
                            else torch.zeros(0))
        return self._losses

    def finish(self, epoch: int, seconds: float) -> tuple[dict, str]:
        """The epoch's row and status; `seconds`: the time the epoch is charged (taken after
        `losses`, so that it counts the device's work)."""
        steps, losses = self.steps, self.losses()
        finite = torch.isfinite(losses)
        status = "ok" if finite.all() else "diverged"
        steps = steps[:int((~finite).nonzero()[0])] if status == "diverged" else steps
        inputs = [share for _, share, _ in steps if share is not None]
        seen = sum(n for _, _, n in steps)
        row = {"epoch": epoch, "loss": losses[:len(steps)].mean().item() if steps else math.nan,
               "teacher_input": torch.stack(inputs).float().mean().item() if inputs else math.nan,
               "images_per_s": seen / seconds if seconds > 0 else math.nan, "seconds": seconds}
        return row, status


def may_run_out_of_memory(runtime: gpu.Runtime) -> bool:
    return runtime.device.type == "cuda"


def predict_eval(model: torch.nn.Module, entry: ModelEntry, dataset: data.Dataset,
                 precision: str | None = None, size: int | None = None) -> np.ndarray:
    """The model's top-1 class on the eval split, normalised as `entry` (resized to `size`
    where given)."""
    model.eval()
    return models.predict_logits(model, dataset.eval_x, entry.mean, entry.std,
                                 precision=precision, size=size).argmax(1).numpy()
