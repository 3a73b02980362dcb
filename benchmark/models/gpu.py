"""The fast GPU path: autocast, channels_last, frozen models without gradients, and a batch size
that adapts to out-of-memory. On a CPU every helper is a no-op, so CPU stays the tested default.
"""
import contextlib
import math
import os
from dataclasses import dataclass, field
from typing import Callable

import torch

from results.errors import InputError

_DTYPES = {"bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
           "fp16": torch.float16, "float16": torch.float16, "16": torch.float16}


def device_of(name: str | torch.device | None = None) -> torch.device:
    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@dataclass(frozen=True)
class Runtime:
    """Where and how a run computes: device, autocast precision (CUDA only), channels_last, and
    data-loader workers for on-the-fly augmentation. Not part of a unit's key: the same unit
    may run on any machine."""
    device: torch.device = torch.device("cpu")
    precision: str | None = None
    channels_last: bool = True
    workers: int = 0

    @classmethod
    def from_env(cls, precision: str | None = None) -> "Runtime":
        """`$KTBENCH_DEVICE` (default: cuda when available) and `$KTBENCH_WORKERS` (default:
        this process's torch threads less one, the share of the cores a launched task was
        given, within `splits.default_workers`)."""
        from benchmark.data.splits import default_workers
        workers = os.environ.get("KTBENCH_WORKERS")
        if workers is None:
            workers = min(default_workers(), max(0, torch.get_num_threads() - 1))
        return cls(device_of(os.environ.get("KTBENCH_DEVICE")), precision, workers=int(workers))

    def autocast(self):
        return autocast(self.precision, self.device)


def amp_dtype(precision: str | None, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for `precision` (bf16/fp16/32/None) on `device`; None: no autocast.
    Only CUDA autocasts here: bf16 where the GPU supports it, else fp16."""
    if device.type != "cuda" or precision in (None, "32", "fp32", "float32"):
        return None
    if precision not in _DTYPES:
        raise InputError(f"unknown precision {precision!r}; use bf16, fp16 or 32")
    dtype = _DTYPES[precision]
    if dtype is torch.bfloat16 and not torch.cuda.is_bf16_supported():
        dtype = torch.float16
    return dtype


def autocast(precision: str | None, device: torch.device):
    """A context: CUDA autocast at `precision`, or nothing (CPU, fp32)."""
    dtype = amp_dtype(precision, device)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def grad_scaler(precision: str | None, device: torch.device):
    """A GradScaler for fp16 on CUDA (bf16 and fp32 need none), else None."""
    if amp_dtype(precision, device) is torch.float16:
        return torch.amp.GradScaler("cuda")
    return None


def prepare(model: torch.nn.Module, device: torch.device, channels_last: bool = True,
            frozen: bool = False) -> torch.nn.Module:
    """Move to `device`, channels_last on CUDA; `frozen`: eval mode and no gradients."""
    model = model.to(device)
    if channels_last and device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    if frozen:
        model.eval()
        model.requires_grad_(False)
    return model


def to_device(x: torch.Tensor, device: torch.device, channels_last: bool = True) -> torch.Tensor:
    """A batch onto `device` (non-blocking from pinned memory), channels_last on CUDA."""
    x = x.to(device, non_blocking=True)
    if channels_last and device.type == "cuda" and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def frozen_forward(model: torch.nn.Module, x: torch.Tensor, precision: str | None = None):
    """A teacher's or frozen student's logits without gradients, as float32. `no_grad`, not
    inference mode: the outputs are distillation targets that autograd saves for backward."""
    with torch.no_grad(), autocast(precision, x.device):
        return model(x).float()


def is_oom(error: BaseException) -> bool:
    if isinstance(error, torch.cuda.OutOfMemoryError):
        return True
    return isinstance(error, RuntimeError) and "out of memory" in str(error).lower()


def decay_batch_step(batch_size: int, num_intra_steps: int = 1, no_odd: bool = False) -> int:
    """timm's `decay_batch_step`: with one intra step, the next lower power of two (a halving
    from a power of two); 0 below 1."""
    if batch_size <= 1:
        return 0
    base = int(2 ** (math.log(batch_size - 1) // math.log(2)))
    step = max(base // num_intra_steps, 1)
    batch_size = base + ((batch_size - base - 1) // step) * step
    if no_odd and batch_size % 2:
        batch_size -= 1
    return batch_size


@dataclass
class AdaptiveBatch:
    """A batch size that halves on out-of-memory and remembers what happened (`record()`)."""
    requested: int
    size: int = 0
    history: list = field(default_factory=list)   # sizes that ran out of memory

    def __post_init__(self):
        if self.size == 0:
            self.size = self.requested

    def run(self, step: Callable[[int], object], num_intra_steps: int = 1):
        """`step(batch_size)` until it fits; returns its result. Re-raises other errors, and
        the out-of-memory error when even batch size 1 does not fit."""
        while True:
            try:
                return step(self.size)
            except (RuntimeError, torch.cuda.OutOfMemoryError) as e:
                if not is_oom(e):
                    raise
                smaller = decay_batch_step(self.size, num_intra_steps)
                self.history.append(self.size)
                del e
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                if smaller < 1:
                    raise
                self.size = smaller

    def record(self) -> dict:
        """The run's record (`transfer_runs.batch_size`, `oom_retries`)."""
        return {"batch_size": self.size, "oom_retries": len(self.history)}
