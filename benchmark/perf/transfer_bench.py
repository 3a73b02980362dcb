"""The harness's transfer step against a bare PyTorch loop (issue 8, target 2).

Harness: `trainer.Trainer` (its own loop: batches from `batches.CachedBatches`, the method's
`forward_train`, the SGD step, its bookkeeping), with the frozen models' logits precomputed by
`loading.train_logits` as `run_transfer` does on an unaugmented split. Bare: the same math
written directly in PyTorch (normalise, forward, KL or KL+DP loss, zero_grad, backward, step) on
the same batches, from the same initial weights, with its own optimiser. Both students follow the
same trajectory, which is checked at the end.

Repetitions alternate A B, B A, ... (each one epoch of `steps` batches), one warm-up first;
the figure is the median of the per-repetition time ratios harness / bare (target <= 1.05).
"""
import copy
import time

import numpy as np
import torch
import torch.nn.functional as F

TARGET_RATIO = 1.05
# (teacher, student): a fast and a slower student of the micro zoo
PAIRS = (("regnetx_002", "efficientnet_short"), ("byobnet", "resnet_long"))
QUICK_PAIRS = (("resnet_tiny", "efficientnet_tiny"),)
METHODS = ("kl", "kl_dp")


def bare_loss(method: str, logits, y, refs, T: float):
    """The methods' losses written out: KL(softmax(t/T) || softmax(s/T)) T^2, batch mean; for
    kl_dp the target is the teacher's logits where its true-class probability beats the frozen
    student's (ties to the frozen student), else the frozen student's."""
    target = refs["teacher"]
    if method == "kl_dp":
        frozen = refs["frozen"]
        pick = y.view(-1, 1)
        use_teacher = target.softmax(1).gather(1, pick) > frozen.softmax(1).gather(1, pick)
        target = torch.where(use_teacher, target, frozen)
    elif method != "kl":
        raise ValueError(f"no bare loop for method {method!r}")
    return F.kl_div(F.log_softmax(logits / T, 1), F.log_softmax(target / T, 1),
                    reduction="batchmean", log_target=True) * T * T


def bare_step(student, optimizer, method, idx, train_x, train_y, refs, mean, std, T):
    """One step of the bare loop; mean and std are [1, C, 1, 1] tensors."""
    x = (train_x[idx].float() / 255.0 - mean) / std
    loss = bare_loss(method, student(x), train_y[idx], {k: r[idx] for k, r in refs.items()}, T)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def epoch_batches(n_samples: int, batch_size: int, seed: int, epoch: int):
    from benchmark.training.batches import epoch_order
    return epoch_order(n_samples, batch_size, seed, epoch)


def compare(zoo, teacher_name, student_name, method_name, cache, steps, reps, seed=0):
    """Seconds (wall and CPU) of harness and bare, paired: per step (adjacent steps on the same
    batch, order alternating), and per epoch of `steps`
    batches (order alternating); one warm-up epoch first. Also the largest parameter
    difference between the two students at the end (0: the same math, bit for bit)."""
    from benchmark import data
    from benchmark.training.batches import CachedBatches
    from benchmark.models.loading import load_model, train_logits
    from benchmark.methods import get_method, resolve_params
    from benchmark.training.trainer import Trainer

    teacher, entry = zoo.get(teacher_name), zoo.get(student_name)
    dataset = data.load_dataset(zoo.dataset, cache)
    batch_size = zoo.transfer_defaults.get("batch_size", 128)
    n = min(steps * batch_size, len(dataset.train_y))
    params = resolve_params(method_name, zoo.transfer_defaults, {"train_samples": n})
    if params["topk"] is not None:
        raise ValueError("the bare loop has no top-k")
    method = get_method(method_name)(params)
    frozen = {"teacher": teacher, "frozen": entry}
    refs = {name: train_logits(frozen[name], zoo.dataset, cache) for name in method.references}
    torch.manual_seed(seed)
    harness_student = load_model(entry, cache)
    bare_student = copy.deepcopy(harness_student)
    batches = CachedBatches(dataset, entry, refs, n, batch_size, seed)
    trainer = Trainer(method, harness_student, entry, dataset, batches, params, seed)
    bare_optimizer = torch.optim.SGD(bare_student.parameters(), lr=params["lr"],
                                     momentum=params["momentum"],
                                     weight_decay=params["weight_decay"])
    mean = torch.tensor(entry.mean, dtype=torch.float32).view(1, -1, 1, 1)
    std = torch.tensor(entry.std, dtype=torch.float32).view(1, -1, 1, 1)

    def bare(idx):
        bare_step(bare_student, bare_optimizer, method_name, idx, dataset.train_x,
                  dataset.train_y, refs, mean, std, params["T"])

    def bare_epoch(epoch):
        bare_student.train()
        for idx in epoch_batches(n, batch_size, seed, epoch):
            bare(idx)

    def timed(fn, *args):
        w0, c0 = time.perf_counter(), time.process_time()
        fn(*args)
        return time.perf_counter() - w0, time.process_time() - c0

    times = {level: {"harness": [], "bare": []} for level in ("step", "epoch")}
    epoch = 0
    # warm-up, then whole epochs
    for rep in range(reps + 1):
        order = ("harness", "bare") if rep % 2 == 0 else ("bare", "harness")
        for kind in order:
            seconds = timed(trainer.train_epoch if kind == "harness" else bare_epoch, epoch)
            if rep:
                times["epoch"][kind].append(seconds)
        epoch += 1
    harness_student.train()
    bare_student.train()
    for rep in range(reps):
        for batch, idx in enumerate(epoch_batches(n, batch_size, seed, epoch)):
            first = (rep + batch) % 2 == 0
            for kind in (("harness", "bare") if first else ("bare", "harness")):
                times["step"][kind].append(
                    timed(lambda: trainer.train_step(batches.batch(idx), batch))
                    if kind == "harness" else timed(bare, idx))
        epoch += 1
    drift = max(float((a - b).abs().max()) for a, b in
                zip(harness_student.state_dict().values(), bare_student.state_dict().values())
                if a.is_floating_point())
    n_steps = len(epoch_batches(n, batch_size, seed, 0))
    return times, n_steps, batch_size, drift


def run(config, record):
    from benchmark.models.microzoo import ensure_zoo_weights
    from pairs import get_zoo
    zoo = get_zoo("tiny" if config.quick else "micro")
    ensure_zoo_weights(zoo, config.cache, progress=False)
    steps = 3 if config.quick else 16
    reps = config.repeats or (1 if config.quick else 6)
    # one thread unless told: what each task of a local launch gets on 2 cores, and with
    # intra-op threads off the process's CPU time is the step's own, steady under load
    threads = torch.get_num_threads()
    torch.set_num_threads(config.threads or 1)
    try:
        for teacher, student in (QUICK_PAIRS if config.quick else PAIRS):
            for method in METHODS:
                _one_case(config, record, zoo, teacher, student, method, steps, reps)
    finally:
        torch.set_num_threads(threads)


def _one_case(config, record, zoo, teacher, student, method, steps, reps):
    times, n_steps, batch_size, drift = compare(zoo, teacher, student, method, config.cache,
                                                steps, reps)
    case = f"{method} {teacher}->{student}"
    params = dict(zoo=zoo.name, teacher=teacher, student=student, method=method,
                  steps_per_epoch=n_steps, batch_size=batch_size, reps=reps,
                  threads=torch.get_num_threads())
    target = "" if config.quick else f"<= {TARGET_RATIO:g}"
    for lvl in ("step", "epoch"):
        harness = np.array(times[lvl]["harness"])     # [pairs, (wall, cpu)]
        bare = np.array(times[lvl]["bare"])
        images = batch_size * (1 if lvl == "step" else n_steps)
        for j, clock in enumerate(("wall", "cpu")):
            ratios = harness[:, j] / bare[:, j]
            record.add(case, f"{lvl}_ratio_{clock}", float(np.median(ratios)), "x",
                       target if (lvl == "step" and clock == "cpu") else "",
                       pairs=len(ratios), ratio_q25=float(np.quantile(ratios, 0.25)),
                       ratio_q75=float(np.quantile(ratios, 0.75)), **params)
        record.add(case, f"{lvl}_harness_images_per_s", images / float(np.median(harness[:, 0])),
                   "img/s", **params)
        record.add(case, f"{lvl}_bare_images_per_s", images / float(np.median(bare[:, 0])),
                   "img/s", **params)
    record.add(case, "max_param_diff", drift, "", "<= 1e-3", **params)
