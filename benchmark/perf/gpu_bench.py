"""KL+DP steps of real-size timm pairs on a GPU (issue 8, target 5). Skipped without CUDA.

ImageNet-size models (random weights, 1000 classes) at 224 px, batch 128, bf16 autocast and
channels_last, on one fixed random batch already on the device (no data loading). Per pair:

- `plain`: the student's own training step (cross-entropy, SGD);
- `kl_dp_online`: KL+DP as on augmented ImageNet: teacher and frozen initial student forward the
  same batch (no grad), the student trains on `losses.dp_kl` (the harness's loss);
- `kl_dp_cached`: KL+DP with the frozen models' logits given (the harness's path on a transfer
  split without augmentation, where `loading.train_outputs` computes them once).

Then the harness itself, end to end: `trainer.Trainer` on `batches.OnlineBatches` over an
in-memory uint8 split (loader workers, pinned memory, per-batch teacher and frozen-student
forwards, each model normalising the batch itself), one epoch of `HARNESS_BATCHES` batches after
a warm-up epoch: `harness_identity` without augmentation, `harness_augmented` with docs/protocol.md#training's
augmentation on the GPU (`benchmark.data.augment`: what a real run pays).

On `SHARING_PAIRS` (issue 16, `lockstep_gpu`): the augmented harness against a bare loop doing
the same work (`harness_over_bare`, target >= 0.9), and lockstep groups against their runs one by
one (`lockstep_time_ratio`: kl, kl_dp, kl_dp_unsup of the pair <= 0.7; kl_dp into four students
<= 0.6), with the images/s of both.

Blocks of steps alternate between the variants; the figures are medians over blocks, with
CUDA synchronised around each block. `--device cpu` (or `quick`) dry-runs the code path with
timm's tiny test models at 32 px, no autocast: it measures nothing real.
"""
import copy
import time

import numpy as np
import torch
import torch.nn.functional as F

from benchmark.models.gpu import Runtime
from benchmark.data.splits import default_workers
from benchmark.perf import lockstep_gpu

PAIRS = (("resnet50", "resnet18"), ("convnext_tiny", "resnet50"),
         ("vit_small_patch16_224", "resnet50"), ("resnet50", "vit_small_patch16_224"))
QUICK_PAIRS = (("test_resnet", "test_efficientnet"),)
VARIANTS = ("plain", "kl_dp_online", "kl_dp_cached")
HARNESS_BATCHES = 20
# issue 16: lockstep and harness-over-bare figures on these pairs; targets on the lockstep time
# over the one-by-one time (the CPU benchmark's, `sharing`)
SHARING_PAIRS = (("resnet50", "resnet18"), ("convnext_tiny", "resnet50"))
LOCKSTEP_TARGETS = {"methods": 0.7, "students": 0.6}


def _model(name: str, device, channels_last: bool, num_classes: int):
    import timm
    model = timm.create_model(name, pretrained=False, num_classes=num_classes).to(device)
    return model.to(memory_format=torch.channels_last) if channels_last else model


def make_steps(teacher_name, student_name, device, batch, size, amp, channels_last,
               num_classes=1000, seed=0):
    """{variant: step()} closures over one student per variant (so optimiser state and BN
    statistics never mix), one teacher and one frozen initial student."""
    from benchmark.methods.losses import dp_kl
    torch.manual_seed(seed)
    teacher = _model(teacher_name, device, channels_last, num_classes).eval().requires_grad_(False)
    student0 = _model(student_name, device, channels_last, num_classes)
    frozen = copy.deepcopy(student0).eval().requires_grad_(False)
    memory = torch.channels_last if channels_last else torch.contiguous_format
    x = torch.randn(batch, 3, size, size, device=device).contiguous(memory_format=memory)
    y = torch.randint(0, num_classes, (batch,), device=device)
    autocast = dict(device_type=torch.device(device).type, dtype=torch.bfloat16, enabled=amp)
    with torch.no_grad(), torch.autocast(**autocast):
        cached = (teacher(x).float(), frozen(x).float())

    def trainer(loss_fn):
        student = copy.deepcopy(student0).train()
        opt = torch.optim.SGD(student.parameters(), lr=1e-4, momentum=0.9, weight_decay=1e-4)

        def step():
            with torch.autocast(**autocast):
                logits = student(x)
            loss = loss_fn(logits.float())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return step

    def online(logits):
        with torch.no_grad(), torch.autocast(**autocast):
            zt, zf = teacher(x).float(), frozen(x).float()
        return dp_kl(logits, zt, zf, y)[0]

    return {"plain": trainer(lambda logits: F.cross_entropy(logits, y)),
            "kl_dp_online": trainer(online),
            "kl_dp_cached": trainer(lambda logits: dp_kl(logits, *cached, y)[0])}


def time_blocks(steps: dict, device, block: int, blocks: int, warmup: int) -> dict:
    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)
    for step in steps.values():
        for _ in range(warmup):
            step()
    sync()
    seconds = {k: [] for k in steps}
    names = list(steps)
    for b in range(blocks):
        for name in (names if b % 2 == 0 else names[::-1]):
            t0 = time.perf_counter()
            for _ in range(block):
                steps[name]()
            sync()
            seconds[name].append((time.perf_counter() - t0) / block)
    return seconds


def harness_images_per_s(teacher_name, student_name, runtime, batch, size, n_batches,
                         augment: bool, num_classes=1000, seed=0) -> float:
    """images/s of the harness's KL+DP epoch (`trainer.Trainer` on `OnlineBatches`)."""
    from benchmark.training.batches import Frozen, OnlineBatches
    from benchmark.methods import get_method, resolve_params
    from benchmark.training.trainer import Trainer
    entries = {name: lockstep_gpu.entry(name, size, num_classes)
               for name in (teacher_name, student_name)}
    torch.manual_seed(seed)
    dataset = lockstep_gpu.synthetic(batch * n_batches, size, num_classes, seed)
    teacher = _model(teacher_name, "cpu", False, num_classes)
    student = _model(student_name, "cpu", False, num_classes)
    frozen = {"teacher": Frozen(teacher, entries[teacher_name]),
              "student": Frozen(copy.deepcopy(student), entries[student_name])}
    params = resolve_params("kl_dp", {"batch_size": batch, "augment": True})
    batches = OnlineBatches(dataset, entries[student_name], frozen,
                            {"teacher": ("teacher", "logits"), "frozen": ("student", "logits")},
                            len(dataset.train_y), batch, seed, runtime, augmented=augment)
    trainer = Trainer(get_method("kl_dp")(params), student, entries[student_name], dataset,
                      batches, params, seed, runtime)
    trainer.train_epoch(0)                    # warm-up: cudnn autotuning, worker start
    row, _ = trainer.train_epoch(1)
    return row["images_per_s"]


def sharing_figures(record, teacher, student, runtime, batch, size, n_batches, dry, params,
                    harness: float):
    """Issue 16 on a pair: the harness's augmented step (`harness` images/s) against a bare
    loop doing the same work, and the lockstep cases against their runs one by one
    (`lockstep_gpu`)."""
    case = f"{teacher}->{student}"
    dataset = lockstep_gpu.synthetic(batch * n_batches, size, 1000)
    bare = lockstep_gpu.bare_images_per_s(teacher, student, runtime, dataset, batch)
    record.add(case, "bare_augmented_images_per_s", bare, "img/s", **params)
    record.add(case, "harness_over_bare", harness / bare, "x", "" if dry else ">= 0.9", **params)
    for name, target in LOCKSTEP_TARGETS.items():
        figures = lockstep_gpu.lockstep_ratio(name, teacher, student, runtime, dataset, batch)
        for metric in ("lockstep_images_per_s", "one_by_one_images_per_s"):
            record.add(f"{case} {name}", metric, figures[metric], "img/s", **params)
        record.add(f"{case} {name}", "lockstep_time_ratio", figures["ratio"], "x",
                   "" if dry else f"<= {target:g}", **params)


def run(config, record):
    device = config.device or ("cuda" if torch.cuda.is_available() else None)
    if device is None:
        record.add("skipped", "no_cuda", float("nan"), "",
                   reason="torch.cuda.is_available() is False")
        return
    dry = config.quick or torch.device(device).type != "cuda"
    if dry:
        pairs, batch, size, amp, channels_last = QUICK_PAIRS, 8, 32, False, True
        block, blocks, warmup = 1, config.repeats or 1, 1
    else:
        torch.backends.cudnn.benchmark = True
        pairs, batch, size, amp, channels_last = PAIRS, 128, 224, True, True
        block, blocks, warmup = 10, config.repeats or 6, 5
    gpu = torch.cuda.get_device_name() if torch.device(device).type == "cuda" else device
    for teacher, student in pairs:
        steps = make_steps(teacher, student, device, batch, size, amp, channels_last)
        seconds = time_blocks(steps, device, block, blocks, warmup)
        plain = np.array(seconds["plain"])
        params = dict(teacher=teacher, student=student, batch=batch, img_size=size, amp=amp,
                      amp_dtype="bfloat16" if amp else "", channels_last=channels_last,
                      device=gpu, dry_run=dry, block=block, blocks=blocks)
        case = f"{teacher}->{student}"
        del steps
        runtime = Runtime(torch.device(device), "bf16" if amp else None, channels_last,
                          workers=0 if dry else default_workers())
        params["workers"] = runtime.workers
        for label, augment in (("harness_identity", False), ("harness_augmented", True)):
            rate = harness_images_per_s(teacher, student, runtime, batch, size,
                                        2 if dry else HARNESS_BATCHES, augment)
            seconds[label] = [batch / rate]         # one epoch: no pairing with `plain`
        for variant in VARIANTS + ("harness_identity", "harness_augmented"):
            s = np.array(seconds[variant])
            record.add(case, f"{variant}_images_per_s", batch / float(np.median(s)), "img/s",
                       **params)
            if variant != "plain":
                paired = s / plain if len(s) == len(plain) else s / np.median(plain)
                record.add(case, f"{variant}_over_plain", float(np.median(paired)), "x",
                           **params)
        if dry or (teacher, student) in SHARING_PAIRS:
            sharing_figures(record, teacher, student, runtime, batch, size,
                            2 if dry else HARNESS_BATCHES, dry, params,
                            batch / seconds["harness_augmented"][0])
        if torch.device(device).type == "cuda":
            record.add(case, "max_memory_allocated", torch.cuda.max_memory_allocated() / 2**30,
                       "GiB", **params)
            torch.cuda.reset_peak_memory_stats()
            torch.cuda.empty_cache()
