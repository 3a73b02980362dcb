"""A rough GPU-hours estimate of a plan, for `ktbench plan --dry-run`.

Cost model: a forward pass of one image through a model of P million parameters costs
P / FORWARD_MPARAM_IMAGES_PER_S GPU-seconds (calibrated on ResNet-50, 25.6 M parameters, at
about 3,000 images/s in mixed precision on one A100-class GPU); a training step costs three
forward passes. Parameter count is a crude proxy for FLOPs (a ViT and a CNN of equal size
differ by a factor of a few), so read the result as an order of magnitude.

- probe (a zoo probed onto another dataset, `pairs.probe`): one forward pass over the train
  and eval splits per model; fitting the linear head on those features is counted as zero.
- predict: one forward pass over the eval split per model.
- stats: vectorised over cached predictions on the CPU; counted as zero.
- transfer: per unit and epoch, a training step per transfer image and a forward pass over the
  eval split; and a forward pass of each frozen model the unit's method needs (teacher, frozen
  student, random teacher) per transfer image and epoch with augmentation (params `augment`),
  else once over the transfer split. Units of one lockstep group (`groups`) pay for each
  distinct frozen model once; `transfer_seconds` splits each such pass equally among the units
  that share it, so the launcher can balance tasks by their units' costs.
"""
import json
import math

import numpy as np
import pandas as pd

from pairs.plan import Plan
from pairs.probe import is_probed

FORWARD_MPARAM_IMAGES_PER_S = 25.6 * 3000.0
TRAIN_STEP_FORWARDS = 3.0
UNKNOWN_PARAMS_M = 25.0       # a model without a known parameter count costs a ResNet-50
# (transfer images, eval images): imagenet's transfer split is the paper's 10% train subset
DATASET_SIZES = {"imagenet": (128_116, 50_000), "digits16": (12_000, 4_000),
                 "digits_shift": (6_000, 2_000)}
RANDOM_INIT = "@random"       # a frozen model named `<name>@random`: its architecture, random init
# a zoo whose dataset is named by its source (the timm zoo's $KTBENCH_IMAGENET): the study's sizes
ZOO_SIZES = {"timm": DATASET_SIZES["imagenet"]}


def _params(catalog: pd.DataFrame, names: pd.Series) -> np.ndarray:
    known = catalog.set_index("name")["params_m"]
    return names.map(known).fillna(UNKNOWN_PARAMS_M).to_numpy(float)


def _sizes(plan: pd.DataFrame) -> tuple[int, int] | None:
    """(transfer images, eval images) of the plan's dataset; None when unknown."""
    return DATASET_SIZES.get(plan["dataset"].iloc[0]) or ZOO_SIZES.get(plan["zoo"].iloc[0])


def predict_seconds(plan: pd.DataFrame, catalog: pd.DataFrame, models: pd.Series) -> pd.Series:
    """GPU-seconds of each model's predict unit (`models`: names, on the plan's dataset); NaN
    when the dataset's size is unknown."""
    sizes = _sizes(plan)
    n_eval = sizes[1] if sizes else math.nan
    return pd.Series(n_eval * _params(catalog, models) / FORWARD_MPARAM_IMAGES_PER_S,
                     index=models.index)


def probe_seconds(plan: pd.DataFrame, catalog: pd.DataFrame, models: pd.Series) -> pd.Series:
    """GPU-seconds of each probed model's probe unit (`models`: names): its features over the
    plan's train and eval splits; NaN when the dataset's size is unknown."""
    n_train, n_eval = _sizes(plan) or (math.nan, math.nan)
    return pd.Series((n_train + n_eval) * _params(catalog, models) / FORWARD_MPARAM_IMAGES_PER_S,
                     index=models.index)


def transfer_seconds(plan: pd.DataFrame, catalog: pd.DataFrame,
                     frozen: pd.Series | None = None,
                     groups: pd.Series | None = None) -> pd.Series:
    """GPU-seconds of each transfer unit (plan's index): its training and eval passes, and an
    equal share of each frozen model's passes among the units of its lockstep group that forward
    that model (so a group's units add up to what the group costs); NaN when the dataset's size
    is unknown. `frozen`: per unit, the names of the frozen models it forwards, a randomly
    initialised one as `<name>@random` (default: its teacher and its student); `groups`: per
    unit, its lockstep group (default: every unit alone)."""
    sizes = _sizes(plan)
    if sizes is None:
        return pd.Series(math.nan, index=plan.index)
    n_train, n_eval = sizes
    params = plan["params"].map(json.loads)
    epochs = params.map(lambda p: p.get("epochs", 1)).to_numpy(float)
    limit = params.map(lambda p: p.get("train_samples") or n_train).to_numpy(float)
    images = np.minimum(limit, n_train)
    augment = params.map(lambda p: bool(p.get("augment", False))).to_numpy()
    student = _params(catalog, plan["student"])
    training = epochs * (images * TRAIN_STEP_FORWARDS * student + n_eval * student)
    if frozen is None:
        frozen = pd.Series([[t, s] for t, s in zip(plan["teacher"], plan["student"])],
                           index=plan.index)
    # units of one group see the same batches: equal images per frozen pass
    passes = pd.DataFrame({
        "group": plan["key"] if groups is None else groups, "model": frozen,
        "images": images * np.where(augment, epochs, 1.0)}).explode("model").dropna()
    passes = passes.rename_axis("unit").reset_index().drop_duplicates(["unit", "model"])
    sharing = passes.groupby(["group", "model"])["unit"].transform("size").to_numpy(float)
    arch = passes["model"].str.removesuffix(RANDOM_INIT)
    share = passes["images"].to_numpy(float) * _params(catalog, arch) / sharing
    frozen_s = pd.Series(share).groupby(passes["unit"].to_numpy()).sum()
    seconds = training + frozen_s.reindex(plan.index, fill_value=0.0).to_numpy()
    return pd.Series(seconds / FORWARD_MPARAM_IMAGES_PER_S, index=plan.index)


def estimate_gpu_hours(plan: Plan | pd.DataFrame, catalog: pd.DataFrame,
                       frozen: pd.Series | None = None,
                       groups: pd.Series | None = None) -> dict[str, float]:
    """{"probe", "predict", "stats", "transfer", "total"} GPU-hours of every unit of `plan`
    (probe: zero unless the plan's zoo is probed); NaN when the dataset's size is unknown.
    `frozen`, `groups`: as `transfer_seconds`."""
    plan = Plan.of(plan)
    rows = plan.rows
    if _sizes(rows) is None:
        return dict.fromkeys(("probe", "predict", "stats", "transfer", "total"), math.nan)
    models = pd.Series(plan.models)
    probed = pd.Series(plan.models if is_probed(rows["zoo"].iloc[0]) else [], dtype=str)
    hours = {"probe": probe_seconds(rows, catalog, probed).sum() / 3600,
             "predict": predict_seconds(rows, catalog, models).sum() / 3600, "stats": 0.0,
             "transfer": transfer_seconds(rows, catalog, frozen, groups).sum() / 3600}
    hours["total"] = sum(hours.values())
    return hours


# bytes on disk (`ktbench plan --dry-run`): a kept student is its float32 weights; a row of each
# table as it lands compacted (measured by `ktbench bench scale`)
STUDENT_BYTES_PER_PARAM = 4.0
ROW_BYTES = {"predictions": 8.0, "models": 200.0, "pair_stats": 60.0, "class_flips": 3.0,
             "transfer_epochs": 150.0, "transfer_runs": 400.0, "probes": 300.0}


def estimate_disk_bytes(plan: Plan | pd.DataFrame, catalog: pd.DataFrame,
                        students: pd.Series) -> dict[str, float]:
    """{"probe", "predict", "stats", "transfer", "students", "total"} bytes the plan leaves in
    the results folder: each stage's result rows, and the final students kept (`students`: the
    student model of each kept one); NaN where the dataset's size is unknown. (A probe's head
    lives in the cache, beside the weights it completes.)"""
    plan = Plan.of(plan)
    pairs, models, plan = plan.pairs, set(plan.models), plan.rows
    probed = len(models) if is_probed(plan["zoo"].iloc[0]) else 0
    dataset = plan["dataset"].iloc[0]
    n_eval = DATASET_SIZES.get(dataset, (math.nan, math.nan))[1]
    classes = catalog.loc[catalog["name"].isin(models), "num_classes"].max()
    epochs = plan["params"].map(lambda p: json.loads(p).get("epochs", 1)).to_numpy(float)
    size = {
        "probe": probed * ROW_BYTES["probes"],
        "predict": len(models) * (n_eval * ROW_BYTES["predictions"] + ROW_BYTES["models"]),
        "stats": len(pairs) * (ROW_BYTES["pair_stats"] + classes * ROW_BYTES["class_flips"]),
        "transfer": float((ROW_BYTES["transfer_runs"]
                           + epochs * ROW_BYTES["transfer_epochs"]).sum()),
        "students": float(_params(catalog, students).sum() * 1e6 * STUDENT_BYTES_PER_PARAM),
    }
    size["total"] = sum(size.values())
    return size
