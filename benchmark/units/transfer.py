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
import socket
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from benchmark import data, models, trackers

from benchmark.models import gpu
from benchmark.training.batches import CachedBatches, Frozen, OnlineBatches
from benchmark.models.loading import load_model, random_init_model, train_outputs
from benchmark.methods import TransferMethod, get_method, reference_spec
from benchmark.measures.metrics import transfer_metrics
from benchmark.training.trainer import Trainer, predict_eval
from benchmark.units import checkpoint
from benchmark.units.checkpoint import checkpoint_path, save_student, student_path
from benchmark.version import code_version
from pairs.catalog import ModelEntry, get_zoo
from results import TABLES, metric_column, predictions_matrix, write_part

# single-teacher units of these methods keep their final student (results/students/<key>), the
# ingredients of multi-teacher soups
KEEP_STUDENT_METHODS = ("kl_dp", "kl_dp_unsup")
_STEP_METRICS = ("dist_delta", "knowledge_gain", "knowledge_loss")
# units planned before these params existed ran unaugmented, in fp32; their keys stay as planned
_PARAMS_OF_OLDER_PLANS = {"augment": False, "precision": "32"}


def unit_teachers(unit: dict) -> list[str]:
    """A unit's teachers in plan order: the `teachers` list, or its single `teacher`."""
    listed = unit.get("teachers") or unit["teacher"]
    return [t for t in str(listed).split(",") if t]


@dataclasses.dataclass
class Source:
    """A model playing a role: a catalog entry (pretrained, or the architecture randomly
    initialised from `init_seed`), or a live `module` normalised as `entry`."""
    entry: ModelEntry
    init_seed: int | None = None
    module: torch.nn.Module | None = None

    def load(self, cache: Path) -> torch.nn.Module:
        if self.module is not None:
            return self.module
        if self.init_seed is not None:
            return random_init_model(self.entry, self.init_seed)
        with torch.random.fork_rng(devices=[]):     # building a model draws random weights
            return load_model(self.entry, cache)


def n_train(params: dict, dataset: data.Dataset) -> int:
    """How many samples of the transfer split a run uses (the first `train_samples`, 0 = all)."""
    return min(params["train_samples"] or len(dataset.train_y), len(dataset.train_y))


def make_batches(method: TransferMethod, sources: dict[str, Source], entry: ModelEntry,
                 dataset: data.Dataset, params: dict, seed: int, cache: Path,
                 runtime: gpu.Runtime) -> CachedBatches | OnlineBatches:
    """The run's batches with the method's references: per augmented batch (params `augment`),
    else precomputed over the split (a live module's over the first n_train samples only: they
    are not cached). Leaves torch's global RNG untouched, so whether an output was cached never
    changes a run."""
    specs = {name: reference_spec(name) for name in method.references}
    for role, _ in specs.values():
        if role not in sources:
            raise ValueError(f"method {method.name!r} needs the {role!r} model, which this run "
                             f"does not have (roles: {', '.join(sources)})")
    n = n_train(params, dataset)
    if params["augment"]:
        frozen = {role: Frozen(sources[role].load(cache), sources[role].entry)
                  for role, _ in specs.values()}
        return OnlineBatches(dataset, entry, frozen, specs, n, params["batch_size"], seed, runtime)
    refs = {}
    for name, (role, kind) in specs.items():
        src = sources[role]
        if src.module is not None:
            refs[name] = models.predict_outputs(src.module, dataset.train_x[:n], src.entry.mean,
                                                src.entry.std, kind)
        else:
            refs[name] = train_outputs(src.entry, dataset.name, cache, kind, src.init_seed,
                                       runtime)
    return CachedBatches(dataset, entry, refs, n, params["batch_size"], seed, runtime)


@dataclasses.dataclass
class RunContext:
    """What every run of a unit shares: models, data and the measured starting predictions."""
    unit: dict
    student_entry: ModelEntry
    teachers: list[ModelEntry]
    params: dict
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


def load_context(unit: dict, results_dir, cache: Path) -> RunContext:
    started, wall0 = datetime.now(timezone.utc), time.perf_counter()
    zoo = get_zoo(unit["zoo"])
    student_entry = zoo.get(unit["student"])
    teachers = [zoo.get(t) for t in unit_teachers(unit)]
    names = list(dict.fromkeys([student_entry.name] + [t.name for t in teachers]))
    labels, preds, _ = predictions_matrix(results_dir, unit["dataset"], names)
    preds = dict(zip(names, preds))
    dataset = data.load_dataset(unit["dataset"], cache)
    if unit["compat"]:
        preds.update(student_normalised_preds(teachers, student_entry, dataset, cache))
    return RunContext(unit=unit, student_entry=student_entry, teachers=teachers,
                      params={**_PARAMS_OF_OLDER_PLANS, **json.loads(unit["params"])},
                      seed=int(unit["seed"]),
                      compat=unit["compat"] or None, dataset=dataset, labels=labels,
                      preds=preds, started=started, wall0=wall0)


def student_normalised_preds(teachers: list[ModelEntry], student: ModelEntry,
                             dataset: data.Dataset, cache: Path) -> dict[str, np.ndarray]:
    """The official evaluation's teacher predictions (compat, docs/compat.md): each teacher's eval
    inputs normalised with the *student's* mean/std; only teachers whose own differ."""
    preds = {}
    for teacher in teachers:
        if (tuple(teacher.mean), tuple(teacher.std)) != (tuple(student.mean), tuple(student.std)):
            model = Source(teacher).load(cache)
            preds[teacher.name] = predict_eval(model, student, dataset)
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
                               - ctx.params["diverge_margin"]):
        status = "diverged"
    trackers.log_epoch(ctx.unit, row)        # a copy to the unit's trackers (`--log`), if any
    return row, status


def train_run(ctx: RunContext, method: TransferMethod, sources: dict[str, Source],
              metric_teacher: str, results_dir, cache: Path) -> tuple[list, str, Trainer]:
    """Train (or resume) one single-method run to its last epoch; returns (rows, status,
    trainer). The checkpoint is left in place (the caller removes it once results are written)."""
    runtime = gpu.Runtime.from_env(ctx.params["precision"])
    batches = make_batches(method, sources, ctx.student_entry, ctx.dataset, ctx.params, ctx.seed,
                           cache, runtime)
    torch.manual_seed(ctx.seed)
    student = load_model(ctx.student_entry, cache)
    trainer = Trainer(method, student, ctx.student_entry, ctx.dataset, batches, ctx.params,
                      ctx.seed, runtime)
    ckpt_file = checkpoint_path(results_dir, ctx.unit["key"])
    rows, status = [], "ok"
    if ckpt_file.is_file():
        state = torch.load(ckpt_file, weights_only=True, map_location="cpu")
        trainer.load(state)
        torch.set_rng_state(state["rng"])
        rows, status = state["rows"], state["status"]
    else:
        trainer.fit_batch_size()
    while len(rows) < ctx.params["epochs"] and status == "ok":
        row, status = trainer.train_epoch(len(rows))
        row, status = evaluate_epoch(ctx, trainer.predict(), row, status, metric_teacher)
        rows.append(row)
        checkpoint.save_checkpoint(ckpt_file, {**trainer.state(), "rng": torch.get_rng_state(),
                                     "rows": rows, "status": status})
    return rows, status, trainer


def write_results(ctx: RunContext, rows: list, status: str, results_dir, job_id: str = "",
                  epochs: int | None = None, batch: dict | None = None) -> None:
    """The unit's transfer_epochs rows, then its transfer_runs row (the mark of completion);
    `batch`: the trainer's `batch_record()` (default: the planned batch size, no halving)."""
    unit = ctx.unit
    frame = pd.DataFrame(rows).assign(key=unit["key"])
    write_part(results_dir, "transfer_epochs", frame[TABLES["transfer_epochs"].names], unit["key"])
    last = rows[-1]
    teacher = ctx.teachers[0].name
    acc_t, acc_s = ctx.acc(teacher), ctx.acc(ctx.student_entry.name)
    run = {
        **{k: unit[k] for k in ("key", "plan", "teacher", "student", "method", "params",
                                "seed", "dataset")},
        "teachers": ",".join(t.name for t in ctx.teachers), "mode": unit.get("mode") or "",
        "compat": unit["compat"] or "", "status": status,
        "epochs": len(rows) if epochs is None else epochs,
        "acc_t": acc_t, "acc_s": acc_s, "ts_diff": acc_t - acc_s,
        **{k: last[k] for k in ("student_acc", "dist_delta", "knowledge_gain", "knowledge_loss",
                                "transfer_rate")},
        "error": "", "wall_s": time.perf_counter() - ctx.wall0, "host": socket.gethostname(),
        "job_id": job_id, "code_version": code_version(),
        "started_at": ctx.started, "finished_at": datetime.now(timezone.utc),
        **(batch or {"batch_size": ctx.params["batch_size"], "oom_retries": 0}),
    }
    write_part(results_dir, "transfer_runs", pd.DataFrame([run]), unit["key"])
    trackers.finish_unit(unit, status)


def run_transfer(unit: dict, results_dir, cache: Path, job_id: str = "",
                 keep_student: bool | None = None) -> str:
    """Run (or resume) one transfer unit; returns its status (`ok` or `diverged`).

    `keep_student` saves the final (evaluated) student to `student_path`; by default only
    single-teacher units of KEEP_STUDENT_METHODS do (the ingredients of soups).
    """
    ctx = load_context(unit, results_dir, cache)
    teacher = ctx.teachers[0]
    method = get_method(unit["method"])(ctx.params, ctx.compat)
    sources = {"teacher": Source(teacher), "student": Source(ctx.student_entry),
               "random_teacher": Source(teacher, init_seed=ctx.seed)}
    rows, status, trainer = train_run(ctx, method, sources, teacher.name, results_dir, cache)
    if keep_student or (keep_student is None and unit["method"] in KEEP_STUDENT_METHODS):
        save_student(student_path(results_dir, unit["key"]), trainer.eval_model())
    write_results(ctx, rows, status, results_dir, job_id, batch=trainer.batch_record())
    checkpoint_path(results_dir, unit["key"]).unlink(missing_ok=True)
    return status


def snapshot(model: torch.nn.Module, state: dict | None = None) -> torch.nn.Module:
    """A frozen copy of `model` (with `state` loaded, if given), in eval mode."""
    copied = copy.deepcopy(model)
    if state is not None:
        copied.load_state_dict(state)
    for p in copied.parameters():
        p.requires_grad_(False)
    return copied.eval()
