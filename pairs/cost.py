"""A rough GPU-hours estimate of a plan, for `ktbench plan --dry-run`.

Cost model: a forward pass of one image through a model of P million parameters costs
P / FORWARD_MPARAM_IMAGES_PER_S GPU-seconds (calibrated on ResNet-50, 25.6 M parameters, at
about 3,000 images/s in mixed precision on one A100-class GPU); a training step costs three
forward passes. Parameter count is a crude proxy for FLOPs (a ViT and a CNN of equal size
differ by a factor of a few), so read the result as an order of magnitude.

- predict: one forward pass over the eval split per model.
- stats: vectorised over cached predictions on the CPU; counted as zero.
- transfer: per unit and epoch, a training step per transfer image and a forward pass over the
  eval split; and a forward pass of each frozen model the unit's method needs (teacher, frozen
  student, random teacher) per transfer image and epoch with augmentation (params `augment`),
  else once over the transfer split. Units of one lockstep group (`groups`) pay for each
  distinct frozen model once.
"""
import json
import math

import numpy as np
import pandas as pd

from pairs.plan import teacher_student_pairs

FORWARD_MPARAM_IMAGES_PER_S = 25.6 * 3000.0
TRAIN_STEP_FORWARDS = 3.0
UNKNOWN_PARAMS_M = 25.0       # a model without a known parameter count costs a ResNet-50
# (transfer images, eval images): imagenet's transfer split is the paper's 10% train subset
DATASET_SIZES = {"imagenet": (128_116, 50_000), "digits16": (12_000, 4_000)}
RANDOM_INIT = "@random"       # a frozen model named `<name>@random`: its architecture, random init


def _params(catalog: pd.DataFrame, names: pd.Series) -> np.ndarray:
    known = catalog.set_index("name")["params_m"]
    return names.map(known).fillna(UNKNOWN_PARAMS_M).to_numpy(float)


def estimate_gpu_hours(plan: pd.DataFrame, catalog: pd.DataFrame,
                       frozen: pd.Series | None = None,
                       groups: pd.Series | None = None) -> dict[str, float]:
    """{"predict", "stats", "transfer", "total"} GPU-hours of every unit of `plan`; NaN when
    the dataset's size is unknown. `frozen`: per unit (plan's index), the names of the frozen
    models it forwards, a randomly initialised one as `<name>@random` (default: its teacher and
    its student); `groups`: per unit, its lockstep group (default: every unit alone)."""
    dataset = plan["dataset"].iloc[0]
    if dataset not in DATASET_SIZES:
        return dict.fromkeys(("predict", "stats", "transfer", "total"), math.nan)
    n_train, n_eval = DATASET_SIZES[dataset]
    pairs = teacher_student_pairs(plan)
    models = pd.Series(sorted(set(pairs["teacher"]) | set(pairs["student"])))
    predict_s = n_eval * _params(catalog, models).sum() / FORWARD_MPARAM_IMAGES_PER_S

    params = plan["params"].map(json.loads)
    epochs = params.map(lambda p: p.get("epochs", 1)).to_numpy(float)
    limit = params.map(lambda p: p.get("train_samples") or n_train).to_numpy(float)
    images = np.minimum(limit, n_train)
    augment = params.map(lambda p: bool(p.get("augment", False))).to_numpy()
    student = _params(catalog, plan["student"])
    training_s = (epochs * (images * TRAIN_STEP_FORWARDS * student + n_eval * student)).sum()
    if frozen is None:
        frozen = pd.Series([[t, s] for t, s in zip(plan["teacher"], plan["student"])],
                           index=plan.index)
    passes = pd.DataFrame({
        "group": plan["key"] if groups is None else groups, "model": frozen,
        "images": images * np.where(augment, epochs, 1.0)}).explode("model").dropna()
    passes = passes.drop_duplicates(["group", "model"])
    arch = passes["model"].str.removesuffix(RANDOM_INIT)
    frozen_s = (passes["images"].to_numpy(float) * _params(catalog, arch)).sum()
    hours = {"predict": predict_s / 3600, "stats": 0.0,
             "transfer": (training_s + frozen_s) / FORWARD_MPARAM_IMAGES_PER_S / 3600}
    hours["total"] = sum(hours.values())
    return hours
