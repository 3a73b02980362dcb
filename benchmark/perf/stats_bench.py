"""All-pairs complementary-knowledge statistics (issue 8, target 1).

Synthetic cached predictions of M models on N samples and K classes (ImageNet val's shape:
N = 50,000, K = 1000, 50 samples per class; accuracies 55-90% with errors correlated through a
per-sample difficulty). For every ordered pair:

- `core`: rho_pos, rho_neg and the entropies of the per-class positive and negative flips,
  through the public vectorised functions (`class_flip_counts`, `class_entropy`). Target: under
  10 s at M = 400.
- `full`: `pair_statistics`, both result tables (adds the confidence ensemble, top-p% class
  counts and the long `class_flips` table of P x K rows, built frame by frame as `run_stats`
  writes it, without the Parquet write).

Beside them, `reference_pair` is the official code's way (docs/definitions.md#complementary-knowledge, docs/compat.md): Python loops over
samples (`get_flips`, then `get_flips_per_class`) and `scipy.stats.entropy`, timed on a few
pairs; both must agree, and the per-pair speed-up has a target of 1000x.

Each measurement runs in its own subprocess, so its peak memory is its own (VmHWM), and under an
address-space cap, so a size that does not fit ends in a MemoryError there, not in the OOM killer
taking a neighbour's process.
"""
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

TARGET_M, TARGET_S, TARGET_SPEEDUP = 400, 10.0, 1000.0
FULL_SIZE = dict(n=50_000, k=1000, ms=(50, 100, 200, 400, 800))
QUICK_SIZE = dict(n=600, k=12, ms=(6, 12))
GIB = 2**30
ENTROPY_CHUNK = 4096


# ---------------------------------------------------------------- inputs and the reference

def synthetic_predictions(m: int, n: int, k: int, seed: int = 0):
    """(preds int32 [M, N], p_max float32 [M, N], labels int64 [N]); n/k samples per class."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n, dtype=np.int64) % k
    rng.shuffle(labels)
    ability = rng.uniform(0.3, 2.3, (m, 1)).astype(np.float32)      # ~55-90% top-1
    difficulty = rng.normal(0.0, 1.5, (1, n)).astype(np.float32)
    correct = rng.random((m, n), dtype=np.float32) < 1 / (1 + np.exp(difficulty - ability))
    # wrong answers lean to a few confusable neighbours of the true class, as real errors do
    offset = np.where(rng.random((m, n), dtype=np.float32) < 0.5,
                      rng.integers(1, 4, (m, n)), rng.integers(1, max(k, 2), (m, n)))
    preds = np.where(correct, labels, (labels + offset) % k).astype(np.int32)
    # confidence higher where right; ties possible (float32), as in real p_max columns
    p_max = np.clip(rng.normal(0.5, 0.2, (m, n)) + 0.3 * correct, 0.01, 1).astype(np.float32)
    return preds, p_max, labels


def all_ordered_pairs(m: int):
    teachers, students = np.divmod(np.arange(m * m), m)
    keep = teachers != students
    return teachers[keep], students[keep]


def reference_pair(student_preds, teacher_preds, labels, num_classes: int = 1000) -> dict:
    """One pair, the official code's way: a Python loop per statistic over the samples.

    `get_flips(preds_a=student, preds_b=teacher, true)`: positive = a wrong and b right,
    negative = a right and b != a, both as % of N; `get_flips_per_class`: the same conditions
    counted under the true label into 1000-long vectors; `scipy.stats.entropy` of each.
    """
    import scipy.stats
    a, b, true = student_preds, teacher_preds, labels
    p_flips = n_flips = 0
    for i in range(len(true)):
        if a[i] != true[i] and b[i] == true[i]:
            p_flips += 1
        if a[i] == true[i] and b[i] != a[i]:
            n_flips += 1
    pos_class = np.zeros(max(num_classes, 1000))
    neg_class = np.zeros(max(num_classes, 1000))
    for i in range(len(true)):
        if a[i] != true[i] and b[i] == true[i]:
            pos_class[true[i]] += 1
        if a[i] == true[i] and b[i] != a[i]:
            neg_class[true[i]] += 1
    return {"pos_flips": p_flips / len(true) * 100, "neg_flips": n_flips / len(true) * 100,
            "pos_entropy": float(scipy.stats.entropy(pos_class)),
            "neg_entropy": float(scipy.stats.entropy(neg_class))}


def core_statistics(preds, labels, num_classes, teachers, students) -> dict:
    """rho_pos, rho_neg (% of N) and per-class flip entropies of every pair, vectorised."""
    from benchmark.measures.stats import class_entropy, class_flip_counts
    pos, neg = class_flip_counts(preds == labels, labels, num_classes, teachers, students)
    n = labels.size
    out = {"pos_flips": pos.sum(axis=1, dtype=np.int64) / n * 100,
           "neg_flips": neg.sum(axis=1, dtype=np.int64) / n * 100,
           "pos_entropy": np.empty(len(pos)), "neg_entropy": np.empty(len(pos))}
    # entropy in chunks of pairs, as pair_statistics does: one call over all pairs would hold a
    # float64 temporary of P x K (5 GiB at M = 800)
    for start in range(0, len(pos), ENTROPY_CHUNK):
        rows = slice(start, start + ENTROPY_CHUNK)
        out["pos_entropy"][rows] = class_entropy(pos[rows])
        out["neg_entropy"][rows] = class_entropy(neg[rows])
    return out


def full_statistics(preds, p_max, labels, num_classes, teachers, students) -> dict:
    """`pair_statistics` (both tables); returns the pair_stats columns the reference checks."""
    from benchmark.measures.stats import pair_statistics
    names = [f"m{i}" for i in range(len(preds))]
    pair_stats, class_flips = pair_statistics(preds, p_max, labels, num_classes, teachers,
                                              students, names, "synthetic")
    rows = sum(len(frame) for frame in class_flips.frames())
    assert rows == len(teachers) * num_classes
    return {c: pair_stats[c].to_numpy() for c in
            ("pos_flips", "neg_flips", "pos_entropy", "neg_entropy")}


def check_agreement(vectorised: dict, references: list[dict], rows) -> float:
    """Largest |difference| between the reference's and the vectorised figures (rows: the
    reference pairs' indices among all pairs); raises if any exceeds 1e-9."""
    worst = 0.0
    for ref, row in zip(references, rows):
        for column, value in ref.items():
            diff = abs(float(vectorised[column][row]) - value)
            if not diff <= 1e-9:     # nan-safe
                raise AssertionError(f"pair {row}: {column} is {vectorised[column][row]} "
                                     f"vectorised but {value} in the reference")
            worst = max(worst, diff)
    return worst


# ---------------------------------------------------------------- one measurement (subprocess)

def _vm_kib(field: str) -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss   # KiB on Linux


def measure(task: dict) -> dict:
    """Time one variant (`core` or `full`) at one size, `reps` times; with `ref_pairs`, also the
    reference on that many pairs and the agreement. Meant to run in a fresh process."""
    import scipy.stats  # noqa: F401  (imports and first calls stay out of the timings)
    m, n, k = task["m"], task["n"], task["k"]
    warm = synthetic_predictions(3, 2 * k, k)
    core_statistics(warm[0], warm[2], k, *all_ordered_pairs(3))
    full_statistics(*warm, k, *all_ordered_pairs(3))
    preds, p_max, labels = synthetic_predictions(m, n, k, task.get("seed", 0))
    teachers, students = all_ordered_pairs(m)
    rss_base = _vm_kib("VmRSS")
    walls, cpus, result = [], [], None
    for _ in range(task["reps"]):
        result = None                     # free the previous repetition's arrays first
        w0, c0 = time.perf_counter(), time.process_time()
        if task["variant"] == "core":
            result = core_statistics(preds, labels, k, teachers, students)
        else:
            result = full_statistics(preds, p_max, labels, k, teachers, students)
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    out = {"pairs": len(teachers), "wall_s": walls, "cpu_s": cpus,
           "peak_rss_gib": _vm_kib("VmHWM") / 2**20, "base_rss_gib": rss_base / 2**20}
    if task.get("ref_pairs"):
        rows = np.random.default_rng(1).choice(len(teachers), task["ref_pairs"], replace=False)
        references, ref_walls, ref_cpus = [], [], []
        for row in rows:
            t, s = teachers[row], students[row]
            w0, c0 = time.perf_counter(), time.process_time()
            references.append(reference_pair(preds[s], preds[t], labels, k))
            ref_walls.append(time.perf_counter() - w0)
            ref_cpus.append(time.process_time() - c0)
        out["ref_s_per_pair"], out["ref_cpu_s_per_pair"] = ref_walls, ref_cpus
        out["max_abs_diff"] = check_agreement(result, references, rows)
    return out


def _worker_main(argv):
    task = json.loads(argv[0])
    if task.get("mem_cap_bytes"):
        cap = int(task["mem_cap_bytes"])
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    try:
        out = measure(task)
    except MemoryError:
        out = {"error": "MemoryError"}
    print("RESULT " + json.dumps(out), flush=True)


def run_measurement(task: dict, timeout: float = 1800) -> dict:
    """`measure(task)` in a fresh Python process; {"error": ...} if it could not finish."""
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    proc = subprocess.run([sys.executable, "-m", "benchmark.perf.stats_bench", json.dumps(task)],
                          capture_output=True, text=True, timeout=timeout, env=env)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
    return {"error": f"exit code {proc.returncode}: {' | '.join(tail)}"}


def _mem_available_bytes() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 8 * GIB


def memory_cap_bytes() -> int:
    """Address-space cap for one measurement: $KTBENCH_BENCH_MEM_GIB, else 60% of the memory
    available now (the machine is shared), at most 16 GiB."""
    if os.environ.get("KTBENCH_BENCH_MEM_GIB"):
        return int(float(os.environ["KTBENCH_BENCH_MEM_GIB"]) * GIB)
    return int(min(16 * GIB, 0.6 * _mem_available_bytes()))


def class_flips_bytes(m: int, k: int) -> int:
    """Size of the per-class flip counts pair_statistics keeps: P x K uint8 pos and neg (50
    samples a class); the rows are built a few million at a time."""
    return m * (m - 1) * k * 2


# ---------------------------------------------------------------- the benchmark

def run(config, record):
    size = QUICK_SIZE if config.quick else FULL_SIZE
    n, k = size["n"], size["k"]
    target_m = size["ms"][-1] if config.quick else TARGET_M
    cap = memory_cap_bytes()
    base = dict(n=n, k=k, threads="BLAS 1 (as stats.py sets it)",
                mem_cap_gib=round(cap / GIB, 1))
    for m in size["ms"]:
        for variant in ("core", "full"):
            at_target = m == target_m
            reps = config.repeats or (3 if at_target else 1 if m > TARGET_M else 2)
            task = dict(m=m, n=n, k=k, variant=variant, reps=reps, mem_cap_bytes=cap,
                        ref_pairs=(3 if at_target else 0))
            result = run_measurement(task)
            case = f"{variant} M={m}"
            params = dict(base, m=m, variant=variant, reps=reps)
            if "error" in result:
                params["class_flips_gib"] = round(class_flips_bytes(m, k) / GIB, 1)
                record.add(case, "failed", float("nan"), "", error=result["error"], **params)
                continue
            pairs = result["pairs"]
            wall, cpu = float(np.median(result["wall_s"])), float(np.median(result["cpu_s"]))
            target = f"<= {TARGET_S:g}" if at_target and variant == "core" and not config.quick \
                else ""
            record.add(case, "wall_s", wall, "s", target, pairs=pairs, **params)
            record.add(case, "cpu_s", cpu, "s", pairs=pairs, **params)
            record.add(case, "us_per_pair", wall / pairs * 1e6, "us", **params)
            record.add(case, "cpu_us_per_pair", cpu / pairs * 1e6, "us", **params)
            record.add(case, "peak_rss", result["peak_rss_gib"], "GiB",
                       base_rss_gib=round(result["base_rss_gib"], 3), **params)
            record.add(case, "peak_rss_over_inputs",
                       result["peak_rss_gib"] - result["base_rss_gib"], "GiB", **params)
            if "ref_s_per_pair" in result:
                ref = float(np.median(result["ref_s_per_pair"]))
                record.add(case, "reference_s_per_pair", ref, "s",
                           ref_pairs=len(result["ref_s_per_pair"]), **params)
                record.add(case, "max_abs_diff_vs_reference", result["max_abs_diff"], "",
                           "<= 1e-9", **params)
                record.add(case, "speedup_per_pair", ref / (wall / pairs), "x",
                           f">= {TARGET_SPEEDUP:g}" if not config.quick else "", **params)
                ref_cpu = float(np.median(result["ref_cpu_s_per_pair"]))
                record.add(case, "speedup_per_pair_cpu", ref_cpu / (cpu / pairs), "x", **params)


if __name__ == "__main__":
    _worker_main(sys.argv[1:])
