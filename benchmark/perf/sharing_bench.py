"""Sharing frozen models (issues 8 and 16): transfer units run in one task against one by one.

`shared`: one `jobs.run_task` over all the units, as a launch packs them (sorted by teacher).
`separate`: one `run_task` per unit with the frozen-output cache cleared before each, as when
every unit is its own job. Both start from the same cached predictions in a fresh results
folder; their transfer results must be identical. Two kinds of case, on the CPU (one torch
thread, no loader workers: the process's CPU time is all the work):

- cached outputs (`short`, `zoo`; the micro zoo's default, augmentation off): the teacher's
  outputs over the samples the units use are computed once per process
  (`loading.train_outputs`), so its pass is paid once per task. `short`: 1 epoch over 2048
  samples; `zoo`: the zoo's defaults (2 epochs over 12k).
- lockstep groups (augmentation on, the paper's protocol; 1 epoch over the 12k split): units
  with the same batches train in lockstep (`benchmark.units.group`), one forward per distinct
  frozen model per batch. `methods`: kl, kl_dp and kl_dp_unsup of one pair; `students`: kl_dp from
  one teacher into four students, the teacher's forward at least three times a student's
  (measured). Targets on the CPU time shared / separate; the frozen forward passes are counted
  (`batches.FORWARD_PASSES`: one per distinct frozen model per batch when shared), and the
  ratio sharing would reach if it saved exactly the passes it did not repeat, at their measured
  cost, is reported beside it: the bound the models' costs set (a student's own step and frozen
  pass are paid per unit either way).

Repetitions alternate the two modes; ratios are medians. On a GPU machine these cases still run
on the CPU; the GPU figures are the `gpu` benchmark's.
"""
import contextlib
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

TEACHER = "regnetx_002"    # the micro zoo's largest model: the pass worth sharing
STUDENTS = ("efficientnet_short", "efficientnet_long", "byobnet", "resnet_short_shift")
QUICK_TEACHER, QUICK_STUDENTS = "resnet_tiny", ("efficientnet_tiny", "resmlp_tiny")
METHOD = "kl_dp"           # needs the teacher's and the frozen student's outputs
SIZES = {"short": dict(epochs=1, train_samples=2048), "zoo": {}}
# lockstep cases: (teacher, students, methods, target on CPU time shared / separate)
LOCKSTEP_TEACHER = "mixer_micro"     # the micro zoo's costliest forward pass
LOCKSTEP = {
    "methods": (LOCKSTEP_TEACHER, STUDENTS[:1], ("kl", "kl_dp", "kl_dp_unsup"), 0.7),
    "students": (LOCKSTEP_TEACHER, STUDENTS, (METHOD,), 0.6),
}
LOCKSTEP_PARAMS = dict(epochs=1, augment=True)
FORWARD_COST_TARGET = 3.0            # `students`: teacher forward / each student's, at least


class CountForwardPasses:
    """Counts, per model name, the frozen-output computations (cache misses) of `loading`."""

    def __init__(self):
        from benchmark.models import loading
        self.loading, self.counts = loading, {}

    def __enter__(self):
        original = self.original = self.loading.load_model

        def counting(entry, cache, results=None):
            self.counts[entry.name] = self.counts.get(entry.name, 0) + 1
            return original(entry, cache, results)
        self.loading.load_model = counting
        return self

    def __exit__(self, *exc):
        self.loading.load_model = self.original


def prepare(zoo, teacher, students, params, cache, folder: Path, method: str = METHOD,
            methods: tuple = ()):
    """The transfer units (of `methods`, default `method` alone) and a results folder holding
    the models' cached predictions."""
    from benchmark.launch.pending import pending_units
    from benchmark.methods import resolve_params
    from benchmark.units.predict import run_predict
    from pairs.plan import make_plan
    resolved = {m: resolve_params(m, zoo.transfer_defaults, params) for m in methods or (method,)}
    plan = make_plan(zoo, [(teacher, s) for s in students], resolved, [0])
    base = folder / "base"
    units = pending_units(plan, base)
    for unit in units["predict"]:
        run_predict(unit, base, cache)
    return units["transfer"], base


def run_mode(mode: str, units, base: Path, folder: Path, cache, threads: int, rep: int,
             clock=time.perf_counter):
    """Seconds (by `clock`) to run the units in `mode`, frozen-output computations per model,
    each unit's final student accuracy, and the per-batch frozen forward passes per model."""
    from benchmark.launch.jobs import run_task
    from benchmark.training.batches import FORWARD_PASSES
    from results import read_table
    results = folder / f"{mode}-{rep}"
    shutil.copytree(base, results)
    from benchmark.models.loading import clear_train_outputs
    FORWARD_PASSES.clear()
    with CountForwardPasses() as counter:
        t0 = clock()
        if mode == "shared":
            clear_train_outputs()
            counts = run_task(units, str(results), str(cache), threads)
        else:
            counts = {}
            for unit in units:
                clear_train_outputs()
                outcome = run_task([unit], str(results), str(cache), threads)
                for k, v in outcome.items():
                    if k != "errors":       # the failed units' messages, not a count
                        counts[k] = counts.get(k, 0) + v
        seconds = clock() - t0
    if counts.get("ok", 0) + counts.get("diverged", 0) != len(units):
        raise RuntimeError(f"{mode}: units did not all complete: {counts}")
    runs = read_table(results, "transfer_runs").set_index("key")["student_acc"]
    shutil.rmtree(results, ignore_errors=True)
    return seconds, dict(counter.counts), runs, dict(FORWARD_PASSES)


@contextlib.contextmanager
def on_the_cpu():
    """Runs on the CPU, loader work in process (its CPU time is the process's)."""
    saved = {k: os.environ.get(k) for k in ("KTBENCH_DEVICE", "KTBENCH_WORKERS")}
    os.environ.update(KTBENCH_DEVICE="cpu", KTBENCH_WORKERS="0")
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def run(config, record):
    import torch

    from benchmark.models.loading import clear_train_outputs
    from benchmark.models.microzoo import ensure_zoo_weights
    from pairs import get_zoo
    zoo = get_zoo("tiny" if config.quick else "micro")
    teacher, students = (QUICK_TEACHER, QUICK_STUDENTS) if config.quick else (TEACHER, STUDENTS)
    ensure_zoo_weights(zoo, config.cache, progress=False)
    threads = config.threads or 1
    sizes = {"short": dict(epochs=1, train_samples=256)} if config.quick else SIZES
    torch_threads = torch.get_num_threads()
    try:
        torch.set_num_threads(threads)
        with on_the_cpu():
            _run(config, record, zoo, teacher, students, threads, sizes)
            for case in LOCKSTEP:
                lockstep_case(config, record, zoo, case, threads)
    finally:
        torch.set_num_threads(torch_threads)
        clear_train_outputs()


def _run(config, record, zoo, teacher, students, threads, sizes):
    from benchmark.models.loading import clear_train_outputs, train_logits
    # what one teacher pass over the transfer split costs, for scale
    clear_train_outputs()
    t0 = time.perf_counter()
    train_logits(zoo.get(teacher), zoo.dataset, config.cache)
    teacher_pass = time.perf_counter() - t0
    clear_train_outputs()
    base_params = dict(zoo=zoo.name, teacher=teacher, students=list(students), method=METHOD,
                       threads=threads)
    record.add("teacher pass", "seconds", teacher_pass, "s", **base_params)
    with tempfile.TemporaryDirectory(prefix="ktbench-sharing-") as tmp:
        for size, overrides in sizes.items():
            folder = Path(tmp) / size
            units, base = prepare(zoo, teacher, students, overrides, config.cache, folder)
            reps = config.repeats or (1 if config.quick or size == "zoo" else 2)
            times, passes, accs, _ = compare(units, base, folder, config.cache, threads, reps)
            shared, separate = np.array(times["shared"]), np.array(times["separate"])
            params = dict(base_params, size=size, units=len(units), reps=reps, **overrides)
            case = f"{size}: {len(units)} units, 1 teacher"
            record.add(case, "shared_s", float(np.median(shared)), "s", **params)
            record.add(case, "separate_s", float(np.median(separate)), "s", **params)
            record.add(case, "speedup", float(np.median(separate / shared)), "x", **params)
            record.add(case, "teacher_passes_shared", passes["shared"].get(teacher, 0), "",
                       "<= 1", **params)
            record.add(case, "teacher_passes_separate", passes["separate"].get(teacher, 0), "",
                       **params)
            record.add(case, "max_student_acc_diff", _acc_diff(accs), "points", "<= 0",
                       **params)


def compare(units, base, folder, cache, threads, reps, clock=time.perf_counter):
    """Both modes `reps` times, alternating: {mode: [seconds]}, and per mode, of the last
    repetition, the load_model counts, student accuracies and per-batch frozen forwards."""
    times, passes, accs, forwards = {"shared": [], "separate": []}, {}, {}, {}
    for rep in range(reps):
        for mode in (("shared", "separate") if rep % 2 == 0 else ("separate", "shared")):
            seconds, passes[mode], accs[mode], forwards[mode] = run_mode(
                mode, units, base, folder, cache, threads, rep, clock)
            times[mode].append(seconds)
    return times, passes, accs, forwards


def _acc_diff(accs: dict) -> float:
    return float((accs["shared"] - accs["separate"].reindex(accs["shared"].index)).abs().max())


def lockstep_case(config, record, zoo, case: str, threads: int):
    """A lockstep case: CPU time shared / separate, and what it would be if sharing saved
    exactly the frozen passes it did not repeat (their measured cost); frozen forwards per batch
    in each mode."""
    from benchmark.units.group import frozen_models
    teacher, students, methods, target = LOCKSTEP[case]
    params = dict(LOCKSTEP_PARAMS)
    if config.quick:
        teacher, students, params = QUICK_TEACHER, QUICK_STUDENTS[:len(students)], dict(
            params, train_samples=256)
    reps = config.repeats or (1 if config.quick else 2)
    with tempfile.TemporaryDirectory(prefix="ktbench-lockstep-") as tmp:
        units, base = prepare(zoo, teacher, students, params, config.cache, Path(tmp),
                              methods=methods)
        times, _, accs, forwards = compare(units, base, Path(tmp), config.cache, threads, reps,
                                           clock=time.process_time)
    n_batches = n_batches_of(units[0], zoo, config.cache)
    frozen = len({name for u in units for name in frozen_models(u)})
    shared_s, separate_s = np.median(times["shared"]), np.median(times["separate"])
    ratio = float(np.median(np.array(times["shared"]) / np.array(times["separate"])))
    # what sharing can save: the frozen passes it did not repeat, at their measured cost
    cost = forward_costs(zoo, set(forwards["separate"]), config.cache)
    saved = sum((n - forwards["shared"].get(name, 0)) * cost[name]
                for name, n in forwards["separate"].items())
    info = dict(zoo=zoo.name, teacher=teacher, students=list(students), methods=list(methods),
                units=len(units), threads=threads, reps=reps, batches=n_batches, **params)
    label = f"lockstep {case}: {len(units)} units"
    record.add(label, "cpu_s_shared", float(shared_s), "s", **info)
    record.add(label, "cpu_s_separate", float(separate_s), "s", **info)
    record.add(label, "cpu_time_ratio", ratio, "x", "" if config.quick else f"<= {target:g}",
               **info)
    record.add(label, "cpu_time_ratio_if_only_passes_saved", 1 - saved / separate_s, "x",
               **info)
    record.add(label, "frozen_forwards_per_batch_shared",
               sum(forwards["shared"].values()) / n_batches, "", f"<= {frozen}", **info)
    record.add(label, "frozen_forwards_per_batch_separate",
               sum(forwards["separate"].values()) / n_batches, "", **info)
    record.add(label, "max_student_acc_diff", _acc_diff(accs), "points", "<= 0", **info)
    if case == "students":
        record.add(label, "teacher_over_student_forward",
                   cost[teacher] / max(cost[s] for s in students), "x",
                   "" if config.quick else f">= {FORWARD_COST_TARGET:g}", **info)


def n_batches_of(unit, zoo, cache) -> int:
    """The batches a unit trains on, all epochs."""
    from benchmark import data
    from benchmark.training.batches import epoch_order
    from benchmark.methods.training import TrainingConfig
    from benchmark.units.transfer import n_train, unit_params
    training = TrainingConfig.of(unit_params(unit))
    n = n_train(training, data.load_dataset(zoo.dataset, cache))
    return sum(len(epoch_order(n, training.batch_size, unit.seed, e))
               for e in range(training.epochs))


def forward_costs(zoo, names, cache, batch_size: int = 128, reps: int = 5) -> dict:
    """CPU seconds of one frozen forward pass of each named model on a batch."""
    import torch

    from benchmark.models.loading import load_model

    def cost(name):
        entry = zoo.get(name)
        model = load_model(entry, cache).eval()
        x = torch.randn(batch_size, *entry.input_size)
        with torch.no_grad():
            model(x)
            t0 = time.process_time()
            for _ in range(reps):
                model(x)
        return (time.process_time() - t0) / reps
    return {name: cost(name) for name in names}
