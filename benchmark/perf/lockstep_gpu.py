"""The `gpu` benchmark's sharing figures (issue 16): lockstep groups and the harness against a
bare loop, on real-size timm models over a synthetic in-memory split (random weights).

- `lockstep_ratio`: the runs of a case, each a `Trainer` on `OnlineBatches` (loader workers, GPU
  augmentation, per-batch frozen forwards), trained in lockstep (`lockstep.run_lockstep`: one
  augmentation and one forward per distinct frozen model per batch) against the same runs one by
  one; one warm-up epoch, then one measured epoch. Cases: `methods` (kl, kl_dp, kl_dp_unsup of
  one pair: one teacher, one frozen student) and `students` (kl_dp from one teacher into four
  students of the pair's student architecture, each with its own frozen copy).
- `bare_images_per_s`: the work of the harness's KL + DP step with augmentation written as a
  bare loop (the split on the GPU, `augment`, each model normalising the batch, teacher and
  frozen-student forwards, the student's step on `losses.dp_kl`), to set against the harness.
"""
import copy
import dataclasses
import gc
import time

import torch

from benchmark.data.augment import augment
from benchmark.data.datasets import Dataset, standardize
from benchmark.methods import get_method, reference_spec, resolve_params
from benchmark.training.batches import Frozen, OnlineBatches, batch_generator, epoch_order
from benchmark.training.lockstep import RandomState, run_lockstep
from benchmark.training.trainer import Trainer
from pairs.catalog import ModelEntry

CASES = {"methods": (("kl", "kl_dp", "kl_dp_unsup"), 1), "students": (("kl_dp",), 4)}


def synthetic(n: int, size: int, num_classes: int, seed: int = 0) -> Dataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g)
    y = torch.randint(0, num_classes, (n,), generator=g)
    return Dataset("synthetic", num_classes, x, y, x[:8], y[:8], torch.arange(n), torch.arange(8))


def entry(name: str, size: int, num_classes: int) -> ModelEntry:
    return ModelEntry(name, name, "timm", num_classes, input_size=(3, size, size))


def timm_model(name: str, num_classes: int, seed: int) -> torch.nn.Module:
    import timm
    torch.manual_seed(seed)
    return timm.create_model(name, pretrained=False, num_classes=num_classes)


@dataclasses.dataclass
class BenchRun:
    """A `lockstep.Run` that keeps its epoch rows and writes nothing."""
    trainer: Trainer
    rng: RandomState
    epochs: int = 2
    rows: list = dataclasses.field(default_factory=list)

    def next_epoch(self):
        return len(self.rows) if len(self.rows) < self.epochs else None

    def end_epoch(self, row, status):
        self.rows.append(row)

    def finish(self):
        pass


def make_runs(case: str, teacher_name: str, student_name: str, runtime, dataset: Dataset,
              batch: int, seed: int = 0) -> list[BenchRun]:
    """The case's runs, sharing the teacher module and, within a student, its frozen copy."""
    methods, n_students = CASES[case]
    classes, size = dataset.num_classes, dataset.train_x.shape[-1]
    teacher = Frozen(timm_model(teacher_name, classes, seed), entry(teacher_name, size, classes))
    s_entry = entry(student_name, size, classes)
    runs = []
    for i in range(n_students):
        student0 = timm_model(student_name, classes, seed + 1 + i)
        frozen = {"teacher": teacher, "student": Frozen(copy.deepcopy(student0), s_entry)}
        for name in methods:
            params = resolve_params(name, {"batch_size": batch, "augment": True})
            method = get_method(name)(params)
            specs = {ref: reference_spec(ref) for ref in method.references}
            batches = OnlineBatches(dataset, s_entry, {r: frozen[r] for r, _ in specs.values()},
                                    specs, len(dataset.train_y), batch, seed, runtime)
            trainer = Trainer(method, copy.deepcopy(student0), s_entry, dataset, batches, params,
                              seed, runtime)
            runs.append(BenchRun(trainer, RandomState(runtime.device)))
    return runs


def lockstep_ratio(case: str, teacher: str, student: str, runtime, dataset: Dataset,
                   batch: int) -> dict:
    """Measured-epoch seconds of the case in lockstep and one by one (fresh runs each), and
    their ratio; images/s counts every run's images."""
    together = make_runs(case, teacher, student, runtime, dataset, batch)
    run_lockstep(together)
    shared = sum(run.rows[1]["seconds"] for run in together)
    del together
    _release()
    separate = 0.0
    for run in make_runs(case, teacher, student, runtime, dataset, batch):
        run_lockstep([run])
        separate += run.rows[1]["seconds"]
    _release()
    images = len(dataset.train_y) - len(dataset.train_y) % batch
    n_runs = len(CASES[case][0]) * CASES[case][1]
    return {"lockstep_s": shared, "one_by_one_s": separate, "ratio": shared / separate,
            "lockstep_images_per_s": n_runs * images / shared,
            "one_by_one_images_per_s": n_runs * images / separate}


def _release() -> None:
    """Free the runs just measured: their loaders' workers and their GPU memory."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def bare_images_per_s(teacher_name: str, student_name: str, runtime, dataset: Dataset,
                      batch: int, seed: int = 0) -> float:
    """images/s of a bare KL + DP loop doing the harness's augmented step (warm-up epoch,
    then one measured epoch)."""
    from benchmark.methods.losses import dp_kl
    classes, device = dataset.num_classes, runtime.device
    teacher = timm_model(teacher_name, classes, seed).to(device).eval().requires_grad_(False)
    student = timm_model(student_name, classes, seed + 1).to(device)
    frozen = copy.deepcopy(student).eval().requires_grad_(False)
    if runtime.channels_last and device.type == "cuda":
        for m in (teacher, student, frozen):
            m.to(memory_format=torch.channels_last)
    t_entry, s_entry = (entry(n, dataset.train_x.shape[-1], classes)
                        for n in (teacher_name, student_name))
    optimizer = torch.optim.SGD(student.parameters(), lr=1e-4, momentum=0.9, weight_decay=1e-4)
    x_all, y_all = dataset.train_x.to(device), dataset.train_y.to(device)
    memory = torch.channels_last if runtime.channels_last else torch.contiguous_format

    def epoch(e):
        for index, idx in enumerate(epoch_order(len(y_all), batch, seed, e)):
            idx = idx.to(device, non_blocking=True)
            x01 = augment(x_all[idx].float() / 255.0, batch_generator(seed, e, index))
            xs, xt = (standardize(x01, en.mean, en.std).contiguous(memory_format=memory)
                      for en in (s_entry, t_entry))
            y = y_all[idx]
            with runtime.autocast():
                with torch.no_grad():
                    zt, zf = teacher(xt).float(), frozen(xs).float()
                loss = dp_kl(student(xs).float(), zt, zf, y)[0]
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        return loss.item()

    epoch(0)
    t0 = time.perf_counter()
    epoch(1)
    return (len(y_all) - len(y_all) % batch) / (time.perf_counter() - t0)
