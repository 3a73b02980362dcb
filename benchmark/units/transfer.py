"""The transfer unit: one (teacher, student, method, params, seed) training run.

SGD over the transfer split, evaluation after every epoch with the paper's metrics, a
checkpoint after every epoch (a restarted unit resumes from it and ends with the same numbers),
and the epoch and run rows written only when the run is complete. Units with a multi-teacher
`mode` (sequential, parallel, soup) are run by `benchmark.units.multi` with the same pieces.

The frozen outputs a method needs (its `references`) come with each batch (`benchmark.training.batches`):
computed once over the unaugmented transfer split, or per augmented batch (params `augment`).
Each reference name maps to a (model role, output kind); a role is played by a catalog entry
(pretrained, or randomly initialised from the unit's seed) or, in a sequential multi-teacher
step, by a snapshot of the student. Device and precision: `gpu.Runtime` (CUDA when available,
autocast at params `precision`).
"""
import copy
import dataclasses
import json
import math
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from benchmark import data, models, trackers
from benchmark.data.feeding import load_for, teacher_size

from benchmark.models import gpu
from benchmark.training.batches import CachedBatches, Frozen, OnlineBatches
from benchmark.models.loading import load_model, random_init_model, train_outputs
from benchmark.methods import TransferMethod, get_method, reference_spec
from benchmark.methods.training import TrainingConfig
from benchmark.measures.metrics import transfer_metrics
from benchmark.training.lockstep import RandomState, run_lockstep
from benchmark.training.trainer import Trainer, predict_eval
from benchmark.units import checkpoint
from benchmark.units.checkpoint import checkpoint_path, kept_bytes, save_student, student_path
from benchmark.units.unit import RunOptions, TransferUnit
from pairs.catalog import ModelEntry, get_zoo
from results import TABLES, ResultsLayout, metric_column, predictions_matrix, write_part
from results.schema import TRANSFER_RATES

_STEP_METRICS = ("dist_delta", "knowledge_gain", "knowledge_loss")
# units planned before these params existed ran unaugmented, in fp32; their keys stay as planned
_PARAMS_OF_OLDER_PLANS = {"augment": False, "precision": "32"}


@dataclasses.dataclass
class Source:
    """A model playing a role: a catalog entry (pretrained, or the architecture randomly
    initialised from `init_seed`), or a live `module` normalised as `entry`."""
    entry: ModelEntry
    init_seed: int | None = None
    module: torch.nn.Module | None = None

    @property
    def key(self) -> tuple:
        """Sources with equal keys are the same model: a lockstep group loads it once."""
        if self.module is not None:
            return ("module", id(self.module))
        return self.entry.fingerprint(), self.init_seed

    @property
    def label(self) -> str:
        if self.init_seed is None:
            return self.entry.name
        return f"{self.entry.name} (random init, seed {self.init_seed})"

    def load(self, cache: Path, results: ResultsLayout,
             loaded: dict | None = None) -> torch.nn.Module:
        """The model (`results`: where a probed model's head is); `loaded` (source key ->
        module) shares one module between the runs of a lockstep group."""
        if self.module is not None:
            return self.module
        if loaded is not None and self.key in loaded:
            return loaded[self.key]
        if self.init_seed is not None:
            module = random_init_model(self.entry, self.init_seed)
        else:
            with torch.random.fork_rng(devices=[]):     # building a model draws random weights
                module = load_model(self.entry, cache, results)
        if loaded is not None:
            loaded[self.key] = module
        return module


def n_train(training: TrainingConfig, dataset: data.Dataset) -> int:
    """How many samples of the transfer split a run uses (the first `train_samples`, 0 = all)."""
    return min(training.train_samples or len(dataset.train_y), len(dataset.train_y))


def make_batches(method: TransferMethod, sources: dict[str, Source], entry: ModelEntry,
                 dataset: data.Dataset, training: TrainingConfig, seed: int, cache: Path,
                 results: ResultsLayout, runtime: gpu.Runtime,
                 loaded: dict | None = None) -> CachedBatches | OnlineBatches:
    """The run's batches with the method's references: per augmented batch (`augment`),
    else precomputed over the first n_train samples of the split (a stored model's cached for
    the task's next units, a live module's not). Leaves torch's global RNG untouched, so whether
    an output was cached never changes a run. `loaded`: frozen models already loaded by the
    run's group (`Source.load`)."""
    specs = {name: reference_spec(name) for name in method.references}
    for role, _ in specs.values():
        if role not in sources:
            raise ValueError(f"method {method.name!r} needs the {role!r} model, which this run "
                             f"does not have (roles: {', '.join(sources)})")
    n = n_train(training, dataset)
    if training.augment:
        frozen = {role: Frozen(sources[role].load(cache, results, loaded), sources[role].entry,
                               sources[role].label, teacher_size(sources[role].entry,
                                                                 dataset.name))
                  for role, _ in specs.values()}
        return OnlineBatches(dataset, entry, frozen, specs, n, training.batch_size, seed, runtime)
    refs = {}
    for name, (role, kind) in specs.items():
        src = sources[role]
        size = teacher_size(src.entry, dataset.name)
        if src.module is not None:
            refs[name] = models.predict_outputs(src.module, dataset.train_x[:n], src.entry.mean,
                                                src.entry.std, kind, size=size)
        else:
            refs[name] = train_outputs(src.entry, dataset, cache, kind, src.init_seed,
                                       runtime, n, size, results)
    return CachedBatches(dataset, entry, refs, n, training.batch_size, seed, runtime)


@dataclasses.dataclass
class RunContext:
    """What every run of a unit shares: models, data and the measured starting predictions."""
    unit: TransferUnit
    options: RunOptions
    student_entry: ModelEntry
    teachers: list[ModelEntry]
    params: dict                          # the method's and the training's, flat
    training: TrainingConfig
    seed: int
    compat: str | None
    dataset: data.Dataset
    labels: np.ndarray
    preds: dict[str, np.ndarray]          # eval predictions of the student (initial) and teachers
    started: datetime
    wall0: float

    @property
    def zero_preds(self) -> np.ndarray:
        return self.preds[self.student_entry.name]

    def acc(self, name: str) -> float:
        return 100.0 * float(np.mean(self.preds[name] == self.labels))


def unit_params(unit: TransferUnit) -> dict:
    """A unit's params as it runs them (those of a plan older than a param: as it was planned)."""
    return {**_PARAMS_OF_OLDER_PLANS, **json.loads(unit.params)}


def load_context(unit: TransferUnit, results_dir, cache: Path,
                 options: RunOptions = RunOptions()) -> RunContext:
    started, wall0 = datetime.now(timezone.utc), time.perf_counter()
    params = unit_params(unit)
    zoo = get_zoo(unit.zoo)
    student_entry = zoo.get(unit.student)
    teachers = [zoo.get(t) for t in unit.teacher_names]
    names = list(dict.fromkeys([student_entry.name] + [t.name for t in teachers]))
    labels, preds, _ = predictions_matrix(results_dir, unit.dataset, names)
    preds = dict(zip(names, preds))
    dataset = load_for(student_entry, unit.dataset, cache)   # a run is fed its student's decode
    if unit.compat:
        preds.update(student_normalised_preds(teachers, student_entry, dataset, cache,
                                              ResultsLayout(results_dir)))
    return RunContext(unit=unit, options=options, student_entry=student_entry,
                      teachers=teachers, params=params, training=TrainingConfig.of(params),
                      seed=unit.seed,
                      compat=unit.compat or None, dataset=dataset, labels=labels,
                      preds=preds, started=started, wall0=wall0)


def student_normalised_preds(teachers: list[ModelEntry], student: ModelEntry,
                             dataset: data.Dataset, cache: Path,
                             results: ResultsLayout) -> dict[str, np.ndarray]:
    """The official evaluation's teacher predictions (compat, docs/compat.md): each teacher's eval
    inputs normalised with the *student's* mean/std; only teachers whose own differ."""
    preds = {}
    for teacher in teachers:
        if (tuple(teacher.mean), tuple(teacher.std)) != (tuple(student.mean), tuple(student.std)):
            model = Source(teacher).load(cache, results)
            preds[teacher.name] = predict_eval(model, student, dataset,
                                               size=teacher_size(teacher, dataset.name))
    return preds


def evaluate_epoch(ctx: RunContext, dist_preds: np.ndarray, row: dict, status: str,
                   teacher: str, step: int = 0, zero_step_preds: np.ndarray | None = None
                   ) -> tuple[dict, str]:
    """The epoch row's metrics against `teacher` (and, for a multi-teacher step, against the
    predictions at the start of the step); status becomes `diverged` when accuracy fell more
    than diverge_margin points below the student's start."""
    args = (ctx.preds[teacher], ctx.labels, ctx.dataset.num_classes)
    metrics = transfer_metrics(ctx.zero_preds, dist_preds, *args, compat=ctx.compat)
    row.update({metric_column(k): v for k, v in metrics.items()})
    if zero_step_preds is not None:
        metrics = transfer_metrics(zero_step_preds, dist_preds, *args, compat=ctx.compat)
    row.update({f"{k}_step": metrics[k] for k in _STEP_METRICS}, step=step, step_teacher=teacher)
    acc = row["student_acc"]
    if status == "ok" and not (math.isfinite(acc)
                               and acc >= ctx.acc(ctx.student_entry.name)
                               - ctx.training.diverge_margin):
        status = "diverged"
    trackers.log_epoch(ctx.unit, ctx.options, row)   # a copy to the unit's trackers (`--log`)
    return row, status


class UnitRun:
    """One unit's training run, as `lockstep.run_lockstep` drives it, alone or in a group: built,
    or resumed from its checkpoint; after every epoch evaluated and checkpointed; once its last
    epoch (or divergence) is recorded, finished: its student kept if `keep_student`, its results
    written and its checkpoint removed. `loaded`: frozen models shared with its group."""

    def __init__(self, ctx: RunContext, method: TransferMethod, sources: dict[str, Source],
                 metric_teacher: str, results_dir, cache: Path, job_id: str = "",
                 keep_student: bool = False, loaded: dict | None = None):
        self.ctx, self.metric_teacher, self.keep_student = ctx, metric_teacher, keep_student
        self.results_dir, self.job_id = results_dir, job_id
        runtime = gpu.Runtime.from_env(ctx.training.precision)
        layout = ResultsLayout(results_dir)
        batches = make_batches(method, sources, ctx.student_entry, ctx.dataset, ctx.training,
                               ctx.seed, cache, layout, runtime, loaded)
        torch.manual_seed(ctx.seed)
        student = load_model(ctx.student_entry, cache, layout)
        self.trainer = Trainer(method, student, ctx.student_entry, ctx.dataset, batches,
                               ctx.params, ctx.seed, runtime)
        self.ckpt_file = checkpoint_path(results_dir, ctx.unit.key)
        self.rows, self.status, self.resumed = [], "ok", self.ckpt_file.is_file()
        if self.resumed:
            state = torch.load(self.ckpt_file, weights_only=True, map_location="cpu")
            self.trainer.load(state)
            torch.set_rng_state(state["rng"])
            self.rows, self.status = state["rows"], state["status"]
        self.rng = RandomState(runtime.device)

    @property
    def key(self) -> str:
        return self.ctx.unit.key

    def next_epoch(self) -> int | None:
        return len(self.rows) if (len(self.rows) < self.ctx.training.epochs
                                  and self.status == "ok") else None

    def end_epoch(self, row: dict, status: str) -> None:
        row, self.status = evaluate_epoch(self.ctx, self.trainer.predict(), row, status,
                                          self.metric_teacher)
        self.rows.append(row)
        checkpoint.save_checkpoint(self.ckpt_file, {**self.trainer.state(),
                                                    "rng": torch.get_rng_state(),
                                                    "rows": self.rows, "status": self.status})

    def finish(self) -> None:
        if self.keep_student:
            save_student(student_path(self.results_dir, self.key), self.trainer.eval_model())
        write_results(self.ctx, self.rows, self.status, self.results_dir, self.job_id,
                      batch=self.trainer.batch_record())
        self.ckpt_file.unlink(missing_ok=True)


def run_alone(run: UnitRun) -> str:
    """Train one run to its end (its batch size fitted first, unless resumed); its status."""
    if not run.resumed:
        run.trainer.fit_batch_size()
    run_lockstep([run])
    return run.status


def write_results(ctx: RunContext, rows: list, status: str, results_dir, job_id: str = "",
                  epochs: int | None = None, batch: dict | None = None) -> None:
    """The unit's transfer_epochs rows, then its transfer_runs row (the mark of completion);
    `batch`: the trainer's `batch_record()` (default: the planned batch size, no halving)."""
    unit = ctx.unit
    # rows of a checkpoint written before a column existed lack it: NaN there
    frame = pd.DataFrame(rows).assign(key=unit.key).reindex(
        columns=TABLES["transfer_epochs"].names)
    write_part(results_dir, "transfer_epochs", frame, unit.key)
    last = rows[-1]
    acc_t, acc_s = ctx.acc(ctx.teachers[0].name), ctx.acc(ctx.student_entry.name)
    run = unit.run_row(
        status, job_id=job_id, started_at=ctx.started, finished_at=datetime.now(timezone.utc),
        disk_bytes=kept_bytes(results_dir, unit.key, checkpoint=False),
        epochs=len(rows) if epochs is None else epochs,
        acc_t=acc_t, acc_s=acc_s, ts_diff=acc_t - acc_s,
        **{k: last[k] for k in ("student_acc", "dist_delta", "knowledge_gain", "knowledge_loss",
                                "transfer_rate")},
        **{k: last.get(k, np.nan) for k in TRANSFER_RATES},   # NaN: an older checkpoint's row
        error="", wall_s=time.perf_counter() - ctx.wall0,
        **(batch or {"batch_size": ctx.training.batch_size, "oom_retries": 0}))
    write_part(results_dir, "transfer_runs", pd.DataFrame([run]), unit.key)
    trackers.finish_unit(unit, status)


def transfer_run(unit: TransferUnit, results_dir, cache: Path, job_id: str = "",
                 options: RunOptions = RunOptions(), loaded: dict | None = None) -> UnitRun:
    """A single-teacher unit's run; it saves its final (evaluated) student to `student_path`
    when the options keep it (`launch --keep-students`)."""
    ctx = load_context(unit, results_dir, cache, options)
    teacher = ctx.teachers[0]
    method = get_method(unit.method)(ctx.params, ctx.compat)
    sources = {"teacher": Source(teacher), "student": Source(ctx.student_entry),
               "random_teacher": Source(teacher, init_seed=ctx.seed)}
    return UnitRun(ctx, method, sources, teacher.name, results_dir, cache, job_id,
                   options.keeps(unit), loaded)


def run_transfer(unit: TransferUnit, results_dir, cache: Path, job_id: str = "",
                 options: RunOptions = RunOptions()) -> str:
    """Run (or resume) one transfer unit alone; returns its status (`ok` or `diverged`)."""
    return run_alone(transfer_run(unit, results_dir, cache, job_id, options))


def snapshot(model: torch.nn.Module, state: dict | None = None) -> torch.nn.Module:
    """A frozen copy of `model` (with `state` loaded, if given), in eval mode."""
    copied = copy.deepcopy(model)
    if state is not None:
        copied.load_state_dict(state)
    for p in copied.parameters():
        p.requires_grad_(False)
    return copied.eval()
