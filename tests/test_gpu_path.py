"""The GPU helpers on a CPU: OOM-adaptive batch size, no-op autocast, frozen models."""
import pytest
import torch

from benchmark.models import gpu


def _fake_step(limit, error):
    calls = []

    def step(batch_size):
        calls.append(batch_size)
        if batch_size > limit:
            raise error
        return batch_size * 10
    return step, calls


@pytest.mark.parametrize("error", [torch.cuda.OutOfMemoryError("CUDA out of memory. Tried"),
                                   RuntimeError("CUDA error: out of memory")])
def test_batch_halves_on_oom_and_is_recorded(error):
    step, calls = _fake_step(40, error)
    adaptive = gpu.AdaptiveBatch(256)
    assert adaptive.run(step) == 320
    assert calls == [256, 128, 64, 32]
    assert adaptive.record() == dict(batch_size=32, oom_retries=3)
    assert adaptive.run(step) == 320 and calls[-1] == 32                # remembered, no retry
    from_96 = gpu.AdaptiveBatch(96)
    from_96.run(_fake_step(90, error)[0])
    assert from_96.size == 64                                           # 96 -> 64, timm's step


def test_other_errors_and_size_one_are_not_swallowed():
    step, calls = _fake_step(0, torch.cuda.OutOfMemoryError("out of memory"))
    with pytest.raises(torch.cuda.OutOfMemoryError):
        gpu.AdaptiveBatch(4).run(step)
    assert calls == [4, 2, 1]
    step, calls = _fake_step(0, RuntimeError("shape mismatch"))
    with pytest.raises(RuntimeError, match="shape"):
        gpu.AdaptiveBatch(4).run(step)
    assert calls == [4]


def test_decay_batch_step_matches_timm():
    from timm.utils import decay_batch_step
    for n in range(0, 300):
        for k in (1, 2, 4):
            assert gpu.decay_batch_step(n, k) == decay_batch_step(n, k)


def test_cpu_path_is_plain_fp32():
    cpu = torch.device("cpu")
    assert gpu.device_of(None).type in ("cpu", "cuda")
    assert gpu.amp_dtype("bf16", cpu) is None and gpu.grad_scaler("fp16", cpu) is None
    with pytest.raises(ValueError):
        gpu.amp_dtype("int8", torch.device("cuda"))
    model = gpu.prepare(torch.nn.Linear(3, 2), cpu, frozen=True)
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    x = gpu.to_device(torch.randn(4, 3), cpu)
    with gpu.autocast("bf16", cpu):
        out = gpu.frozen_forward(model, x, "bf16")
    assert out.dtype == torch.float32 and not out.requires_grad
    assert torch.allclose(out, model(x).detach())


def test_runtime_from_the_environment(monkeypatch):
    from benchmark.data.splits import default_workers
    monkeypatch.delenv("KTBENCH_WORKERS", raising=False)
    monkeypatch.setenv("KTBENCH_DEVICE", "cpu")
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(3)                  # a launched task's share of the cores
        runtime = gpu.Runtime.from_env("bf16")
        assert runtime.workers == min(default_workers(), 2)
    finally:
        torch.set_num_threads(threads)
    assert runtime.device == torch.device("cpu") and runtime.precision == "bf16"
    monkeypatch.setenv("KTBENCH_WORKERS", "5")
    assert gpu.Runtime.from_env().workers == 5
    with runtime.autocast():                      # no autocast on a CPU
        assert not torch.is_autocast_enabled()
