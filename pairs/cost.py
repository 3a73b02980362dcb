"""A rough GPU-hours estimate of a plan, for `ktbench plan --dry-run`.

Cost model: a forward pass of one image through a model of P million parameters costs
P / FORWARD_MPARAM_IMAGES_PER_S GPU-seconds (calibrated on ResNet-50, 25.6 M parameters, at
about 3,000 images/s in mixed precision on one A100-class GPU); a training step costs three
forward passes. Parameter count is a crude proxy for FLOPs (a ViT and a CNN of equal size
differ by a factor of a few), so read the result as an order of magnitude.

- predict: one forward pass over the eval split per model.
- stats: vectorised over cached predictions on the CPU; counted as zero.
- transfer: the frozen teacher and the initial student over the transfer split once (their
  logits are cached for the run), then per epoch a training step per transfer image and a
  forward pass over the eval split.
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
# a zoo whose dataset is named by its source (the timm zoo's $KTBENCH_IMAGENET): the study's sizes
ZOO_SIZES = {"timm": DATASET_SIZES["imagenet"]}


def _params(catalog: pd.DataFrame, names: pd.Series) -> np.ndarray:
    known = catalog.set_index("name")["params_m"]
    return names.map(known).fillna(UNKNOWN_PARAMS_M).to_numpy(float)


def estimate_gpu_hours(plan: pd.DataFrame, catalog: pd.DataFrame) -> dict[str, float]:
    """{"predict", "stats", "transfer", "total"} GPU-hours of every unit of `plan`; NaN when
    the dataset's size is unknown."""
    sizes = DATASET_SIZES.get(plan["dataset"].iloc[0]) or ZOO_SIZES.get(plan["zoo"].iloc[0])
    if sizes is None:
        return dict.fromkeys(("predict", "stats", "transfer", "total"), math.nan)
    n_train, n_eval = sizes
    pairs = teacher_student_pairs(plan)
    models = pd.Series(sorted(set(pairs["teacher"]) | set(pairs["student"])))
    predict_s = n_eval * _params(catalog, models).sum() / FORWARD_MPARAM_IMAGES_PER_S

    params = plan["params"].map(json.loads)
    epochs = params.map(lambda p: p.get("epochs", 1)).to_numpy(float)
    limit = params.map(lambda p: p.get("train_samples") or n_train).to_numpy(float)
    images = np.minimum(limit, n_train)
    teacher, student = _params(catalog, plan["teacher"]), _params(catalog, plan["student"])
    per_epoch = images * TRAIN_STEP_FORWARDS * student + n_eval * student
    transfer_s = (images * (teacher + student) + epochs * per_epoch).sum() \
        / FORWARD_MPARAM_IMAGES_PER_S
    hours = {"predict": predict_s / 3600, "stats": 0.0, "transfer": transfer_s / 3600}
    hours["total"] = sum(hours.values())
    return hours
