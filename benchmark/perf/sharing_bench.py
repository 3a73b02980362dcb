"""Teacher sharing (issue 8, target 3): transfer units that share a teacher, run in one task
against one by one.

`shared`: one `jobs.run_task` over all the units, as a launch packs them (sorted by teacher):
the frozen models' outputs on the transfer split are computed once per process
(`loading.train_logits` / `train_outputs`, cached by model fingerprint), so the teacher's forward
pass over the split is paid once. `separate`: one `run_task` per unit with that cache cleared
before each, as when every unit is its own job. Both start from the same cached predictions in a
fresh results folder; their transfer results must be identical.

Two unit sizes: `short` (1 epoch over 2048 samples, the tiny zoo's size: the teacher's pass over
the 12k-sample split weighs most) and `zoo` (the micro zoo's defaults: 2 epochs over 12k).
Repetitions alternate the two modes; the speed-up is the median separate / shared.
"""
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


def output_cache() -> dict:
    """The per-process cache of frozen models' outputs in benchmark.models.loading."""
    from benchmark.models import loading
    for name in ("_TRAIN_OUTPUTS", "_TRAIN_LOGITS"):
        if isinstance(getattr(loading, name, None), dict):
            return getattr(loading, name)
    raise RuntimeError("benchmark.models.loading has no output cache this benchmark knows")


class CountForwardPasses:
    """Counts, per model name, the frozen-output computations (cache misses) of `loading`."""

    def __init__(self):
        from benchmark.models import loading
        self.loading, self.counts = loading, {}

    def __enter__(self):
        original = self.original = self.loading.load_model

        def counting(entry, cache):
            self.counts[entry.name] = self.counts.get(entry.name, 0) + 1
            return original(entry, cache)
        self.loading.load_model = counting
        return self

    def __exit__(self, *exc):
        self.loading.load_model = self.original


def prepare(zoo, teacher, students, params, cache, folder: Path, method: str = METHOD):
    """The transfer units and a results folder holding the models' cached predictions."""
    from benchmark.launch.pending import pending_units
    from benchmark.methods import resolve_params
    from benchmark.units.predict import run_predict
    from pairs.plan import make_plan
    methods = {method: resolve_params(method, zoo.transfer_defaults, params)}
    plan = make_plan(zoo, [(teacher, s) for s in students], methods, [0])
    base = folder / "base"
    units = pending_units(plan, base)
    for unit in units["predict"]:
        run_predict(unit, base, cache)
    return units["transfer"], base


def run_mode(mode: str, units, base: Path, folder: Path, cache, threads: int, rep: int):
    """Seconds to run the units in `mode`, frozen-output computations per model, and each
    unit's final student accuracy."""
    from benchmark.launch.jobs import run_task
    from results import read_table
    results = folder / f"{mode}-{rep}"
    shutil.copytree(base, results)
    cache_dict = output_cache()
    with CountForwardPasses() as counter:
        t0 = time.perf_counter()
        if mode == "shared":
            cache_dict.clear()
            counts = run_task(units, str(results), str(cache), threads)
        else:
            counts = {}
            for unit in units:
                cache_dict.clear()
                for k, v in run_task([unit], str(results), str(cache), threads).items():
                    counts[k] = counts.get(k, 0) + v
        seconds = time.perf_counter() - t0
    if counts.get("ok", 0) + counts.get("diverged", 0) != len(units):
        raise RuntimeError(f"{mode}: units did not all complete: {counts}")
    runs = read_table(results, "transfer_runs").set_index("key")["student_acc"]
    shutil.rmtree(results, ignore_errors=True)
    return seconds, dict(counter.counts), runs


def run(config, record):
    import torch

    from benchmark.models.loading import train_logits
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
        _run(config, record, zoo, teacher, students, threads, sizes, train_logits)
    finally:
        torch.set_num_threads(torch_threads)
        output_cache().clear()


def _run(config, record, zoo, teacher, students, threads, sizes, train_logits):
    # what one teacher pass over the transfer split costs, for scale
    output_cache().clear()
    t0 = time.perf_counter()
    train_logits(zoo.get(teacher), zoo.dataset, config.cache)
    teacher_pass = time.perf_counter() - t0
    output_cache().clear()
    base_params = dict(zoo=zoo.name, teacher=teacher, students=list(students), method=METHOD,
                       threads=threads)
    record.add("teacher pass", "seconds", teacher_pass, "s", **base_params)
    with tempfile.TemporaryDirectory(prefix="ktbench-sharing-") as tmp:
        for size, overrides in sizes.items():
            folder = Path(tmp) / size
            units, base = prepare(zoo, teacher, students, overrides, config.cache, folder)
            reps = config.repeats or (1 if config.quick or size == "zoo" else 2)
            times = {"shared": [], "separate": []}
            passes, accs = {}, {}
            for rep in range(reps):
                order = ("shared", "separate") if rep % 2 == 0 else ("separate", "shared")
                for mode in order:
                    seconds, counts, acc = run_mode(mode, units, base, folder, config.cache,
                                                    threads, rep)
                    times[mode].append(seconds)
                    passes[mode], accs[mode] = counts, acc
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
            diff = (accs["shared"] - accs["separate"].reindex(accs["shared"].index)).abs().max()
            record.add(case, "max_student_acc_diff", float(diff), "points", "<= 0", **params)
