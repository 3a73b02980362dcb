"""Multi-teacher transfer units (docs/methods.md#multi-teacher): `sequential`, `sequential_desc`, `parallel`, `soup`.

A multi-teacher unit is a plan row with a `mode` and a comma-joined `teachers` list (its `teacher`
column is the first of them; metrics against "the teacher" use that one, as the official code
uses `teachers[0]`, except in sequential steps, which use the step's teacher).

- `sequential` / `sequential_desc`: the teachers ordered by measured accuracy, weakest first
  (the paper's default `asc`) or strongest first; ties keep the listed order. Each teacher gets a
  full single-teacher run of the unit's method (`epochs` epochs each, so the budget is
  n_teachers x epochs). Between teachers the optimiser is rebuilt and the frozen student (the
  retention target of DP) is reset to the current student. Epoch rows carry the step, its teacher
  and `*_step` metrics against the predictions at the start of the step.
- `parallel`: every batch through all teachers and the frozen initial student; each sample is
  distilled (KL) from the single most confident source: true-class probability with `kl_dp`,
  max softmax with `kl_dp_unsup` (`multi_dp_targets`; ties to the frozen student, then to the
  earlier teacher). `teacher_input` is the share routed to any teacher.
- `soup`: the uniform average of the final students of the single-teacher runs of the same
  method, params and seed, one per teacher, evaluated without training. Those single-teacher
  units keep their final student in `results/students/<key>.safetensors` (a launch marks them:
  `--keep-students`, by default the ingredients of the plan's soups); a soup whose ingredient is
  missing runs that unit itself first, recording its results under its own key and keeping its
  student, so a soup is correct in any launch order (a single-teacher unit that completed
  without keeping its student is run again, to the same numbers).
"""
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

from benchmark.models import gpu
from benchmark.models.loading import load_model
from benchmark.methods.losses import distill_kl, multi_dp_targets
from benchmark.methods import TransferMethod, get_method, partition_methods
from benchmark.training.trainer import Trainer, predict_eval
from benchmark.units import checkpoint
from benchmark.units.checkpoint import checkpoint_path, student_path
from benchmark.units.transfer import (Source, UnitRun, evaluate_epoch, load_context,
                                     make_batches, run_alone, run_transfer, snapshot,
                                     write_results)
from benchmark.units.unit import RunOptions, TransferUnit, transfer_units
from pairs.multi import check_mode
from results import ResultsLayout


def run_multi(unit: TransferUnit, results_dir, cache: Path, job_id: str = "",
              options: RunOptions = RunOptions()) -> str:
    check_mode(unit.mode, unit.method, partition_methods())
    runner = {"parallel": run_parallel, "soup": run_soup}.get(unit.mode, run_sequential)
    return runner(unit, results_dir, cache, job_id, options)


# ------------------------------------------------------------------------------------ parallel

class ParallelDataPartition(TransferMethod):
    """KL from the most confident of the frozen student and K teachers, per sample."""
    name = "parallel"
    description = "multi-teacher DP: per sample, the most confident source"

    def __init__(self, params, compat=None, n_teachers: int = 1, supervised: bool = True):
        super().__init__(params, compat)
        if compat and params["topk"] is not None:
            raise ValueError("parallel multi-teacher transfer under compat 'fantasticgains' needs "
                             "topk None (the official code refuses k != 1000)")
        self.n_teachers, self.supervised = n_teachers, supervised
        self.references = tuple(f"teacher{i}" for i in range(n_teachers)) + ("frozen",)

    def forward_train(self, student, x, y, refs, idx=None):
        logits = student(x)
        target, source = multi_dp_targets([refs[f"teacher{i}"] for i in range(self.n_teachers)],
                                          refs["frozen"], y if self.supervised else None)
        loss = distill_kl(logits, target, T=self.params["T"], topk=self.params["topk"],
                          compat=self.compat)
        return logits, {"kl": loss}, {"teacher_input": 100.0 * (source >= 0).float().mean()}


def parallel_run(unit: TransferUnit, results_dir, cache, job_id="",
                 options: RunOptions = RunOptions(), loaded=None) -> UnitRun:
    """A parallel unit's run (`loaded`: frozen models shared with its lockstep group)."""
    ctx = load_context(unit, results_dir, cache, options)
    method = ParallelDataPartition(ctx.params, ctx.compat, n_teachers=len(ctx.teachers),
                                   supervised=get_method(unit.method).supervised)
    sources = {"student": Source(ctx.student_entry),
               **{f"teacher{i}": Source(t) for i, t in enumerate(ctx.teachers)}}
    return UnitRun(ctx, method, sources, ctx.teachers[0].name, results_dir, cache, job_id,
                   loaded=loaded)


def run_parallel(unit, results_dir, cache, job_id="", options=RunOptions()):
    return run_alone(parallel_run(unit, results_dir, cache, job_id, options))


# ---------------------------------------------------------------------------------- sequential

def teacher_order(names: list[str], accuracy: dict[str, float], descending: bool) -> list[str]:
    """Teachers by accuracy, ascending (weakest first) or descending; ties keep list order."""
    return sorted(names, key=lambda n: -accuracy[n] if descending else accuracy[n])


def run_sequential(unit, results_dir, cache, job_id="", options=RunOptions()):
    ctx = load_context(unit, results_dir, cache, options)
    order = teacher_order([t.name for t in ctx.teachers], {n: ctx.acc(n) for n in ctx.preds},
                          descending=unit.mode == "sequential_desc")
    entries = {t.name: t for t in ctx.teachers}
    epochs = ctx.training.epochs
    method_cls = get_method(unit.method)
    runtime = gpu.Runtime.from_env(ctx.training.precision)
    torch.manual_seed(ctx.seed)
    # on the run's device from the start: each step's frozen snapshot (and the outputs it gives)
    # then lives there whether the run was resumed or not
    layout = ResultsLayout(results_dir)
    student = gpu.prepare(load_model(ctx.student_entry, cache, layout), runtime.device,
                          runtime.channels_last)
    ckpt_file = checkpoint_path(results_dir, unit.key)
    rows, status, resume, batch = [], "ok", None, None
    if ckpt_file.is_file():
        resume = torch.load(ckpt_file, weights_only=True, map_location="cpu")
        rows, status, batch = resume["rows"], resume["status"], resume.get("batch")
        student.load_state_dict(resume["student"])
        if len(rows) % epochs == 0:      # saved at the end of a step: the next one starts afresh
            torch.set_rng_state(resume["rng"])
            resume = None
    while len(rows) < epochs * len(order) and status == "ok":
        step = len(rows) // epochs
        teacher = entries[order[step]]
        # the retention target: the student as it entered this step
        frozen = snapshot(student, resume["frozen"] if resume is not None else None)
        zero_step = predict_eval(frozen, ctx.student_entry, ctx.dataset, runtime.precision)
        method = method_cls(ctx.params, ctx.compat)
        sources = {"teacher": Source(teacher), "student": Source(ctx.student_entry, module=frozen),
                   "random_teacher": Source(teacher, init_seed=ctx.seed)}
        batches = make_batches(method, sources, ctx.student_entry, ctx.dataset, ctx.training,
                               ctx.seed, cache, layout, runtime)
        trainer = Trainer(method, student, ctx.student_entry, ctx.dataset, batches, ctx.params,
                          ctx.seed, runtime)
        if resume is not None:
            trainer.load(resume)
            torch.set_rng_state(resume["rng"])
            resume = None
        else:
            trainer.fit_batch_size()
        batch = trainer.batch_record()
        frozen_state = frozen.state_dict()
        while len(rows) < epochs * (step + 1) and status == "ok":
            row, status = trainer.train_epoch(len(rows))
            row, status = evaluate_epoch(ctx, trainer.predict(), row, status, teacher.name,
                                         step=step, zero_step_preds=zero_step)
            rows.append(row)
            checkpoint.save_checkpoint(ckpt_file, {**trainer.state(), "rng": torch.get_rng_state(),
                                         "frozen": frozen_state, "rows": rows, "status": status})
    write_results(ctx, rows, status, results_dir, job_id, batch=batch)
    ckpt_file.unlink(missing_ok=True)
    return status


# ---------------------------------------------------------------------------------------- soup

def single_units(unit: TransferUnit) -> list[TransferUnit]:
    """The single-teacher units a soup averages (`pairs.plan.soup_singles`), as units."""
    from pairs.catalog import get_zoo
    from pairs.plan import soup_singles
    return transfer_units(soup_singles(get_zoo(unit.zoo), unit).assign(plan=unit.plan))


def soup_state(states: list[dict]) -> dict:
    """The uniform average of state dicts (the official `soup_student_weights`); integer entries
    (BatchNorm's batch counters) are averaged as floats and cast back."""
    return {key: torch.stack([s[key].double() for s in states]).mean(0).to(states[0][key].dtype)
            for key in states[0]}


def run_soup(unit, results_dir, cache, job_id="", options=RunOptions()):
    ctx = load_context(unit, results_dir, cache, options)
    t0 = time.perf_counter()
    states = []
    for single in single_units(unit):
        path = student_path(results_dir, single.key)
        if not path.is_file():
            run_transfer(single, results_dir, cache, job_id, options.keeping(single))
        states.append(load_file(path))
    student = load_model(ctx.student_entry, cache, ResultsLayout(results_dir))
    student.load_state_dict(soup_state(states))
    preds = predict_eval(student, ctx.student_entry, ctx.dataset)
    seconds = time.perf_counter() - t0
    row = {"epoch": ctx.training.epochs - 1, "loss": np.nan, "teacher_input": np.nan,
           "images_per_s": np.nan, "seconds": seconds}
    row, status = evaluate_epoch(ctx, preds, row, "ok", ctx.teachers[0].name)
    write_results(ctx, [row], status, results_dir, job_id, epochs=ctx.training.epochs)
    return status
