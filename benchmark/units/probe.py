"""The probe unit: a linear head fitted on a frozen model's pooled features on another dataset.

One forward pass over the dataset's train and eval splits gives the backbone's pooled
pre-logits features (`benchmark.units.features.forward_features`, the model's own pooling),
stored with the fitted head's logits as the probed model's features unit over both whole splits
(so `ktbench predictors` on the probed zoo, or a probe relaunched after a kill, does not pass
again: `cached_features`);
the head is then fitted on the train features alone, by the recipe's solver
(`pairs.probe.PROBE_RECIPES`): `sgd`, the authors' linear probe (SGD with momentum on
cross-entropy, 50 epochs, lr 0.1, 5% warmup then a cosine schedule), or `lbfgs`, a multinomial logistic regression
with a small L2 penalty solved by L-BFGS. The head (`weight` [C, D], `bias` [C]) is written as
a safetensors file in the results folder (`ResultsLayout.probe_head`), where loading the probed
model looks for it, then the `probes` row: the two mark the unit done (`unit.PROBE`).
"""
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from benchmark.data.feeding import load_for
from benchmark.models.build import check_probeable
from benchmark.models.loading import load_model
from benchmark.units.features import (SplitOutputs, arrays_dir, features_unit, forward_features,
                                      store_features)
from benchmark.units.unit import FEATURES, ProbeUnit
from pairs.catalog import get_zoo
from pairs.probe import backbone_of, probe_recipe
from results import ResultsLayout, write_part
from results.errors import InputError
from results.store import atomic_path


def fit_sgd(x: torch.Tensor, y: torch.Tensor, num_classes: int, recipe: dict) -> torch.nn.Linear:
    """The authors' probe: minibatch SGD with momentum on cross-entropy, the learning rate rising
    linearly over the first `warmup_fraction` of the steps, then following a cosine from `lr`
    down to `eta_min` (`cosine_lr`)."""
    gen = torch.Generator().manual_seed(recipe["seed"])
    head = _zero_head(x.shape[1], num_classes)
    opt = torch.optim.SGD(head.parameters(), lr=recipe["lr"], momentum=recipe["momentum"],
                          weight_decay=recipe["weight_decay"])
    total = recipe["epochs"] * math.ceil(len(x) / recipe["batch_size"])
    step = 0
    for _ in range(recipe["epochs"]):
        for idx in torch.randperm(len(x), generator=gen).split(recipe["batch_size"]):
            opt.param_groups[0]["lr"] = cosine_lr(step, total, recipe)
            opt.zero_grad()
            F.cross_entropy(head(x[idx]), y[idx]).backward()
            opt.step()
            step += 1
    return head


def cosine_lr(step: int, total: int, recipe: dict) -> float:
    """The learning rate of `step` of `total`: linear warmup to `lr`, then cosine to `eta_min`."""
    warmup = int(recipe["warmup_fraction"] * total)
    if step < warmup:
        return recipe["lr"] * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return recipe["eta_min"] + 0.5 * (recipe["lr"] - recipe["eta_min"]) * (
        1 + math.cos(math.pi * progress))


def fit_lbfgs(x: torch.Tensor, y: torch.Tensor, num_classes: int, recipe: dict) -> torch.nn.Linear:
    """Multinomial logistic regression: mean cross-entropy + l2/2 |W|^2, by full-batch L-BFGS."""
    head = _zero_head(x.shape[1], num_classes)
    opt = torch.optim.LBFGS(head.parameters(), max_iter=recipe["max_iter"],
                            line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(head(x), y) + 0.5 * recipe["l2"] * head.weight.square().sum()
        loss.backward()
        return loss
    opt.step(closure)
    return head


_SOLVERS = {"sgd": fit_sgd, "lbfgs": fit_lbfgs}


def _zero_head(dim: int, num_classes: int) -> torch.nn.Linear:
    head = torch.nn.Linear(dim, num_classes)
    torch.nn.init.zeros_(head.weight)
    torch.nn.init.zeros_(head.bias)
    return head


def fit_head(features: np.ndarray, labels: np.ndarray, num_classes: int,
             recipe: dict) -> torch.nn.Linear:
    """A linear head [num_classes, D] fitted on `features` [N, D] by the recipe's solver."""
    x = torch.as_tensor(np.asarray(features, dtype=np.float32))
    y = torch.as_tensor(np.asarray(labels, dtype=np.int64))
    with torch.random.fork_rng(devices=[]):
        return _SOLVERS[recipe["solver"]](x, y, num_classes, recipe)


def head_top1(head: torch.nn.Linear, features: np.ndarray, labels: np.ndarray) -> float:
    with torch.inference_mode():
        pred = head(torch.as_tensor(np.asarray(features, dtype=np.float32))).argmax(1).numpy()
    return 100.0 * float(np.mean(pred == np.asarray(labels)))


def save_head(head: torch.nn.Linear, path: Path) -> None:
    from safetensors.torch import save_file
    with atomic_path(path) as tmp:
        save_file({"weight": head.weight.detach().contiguous(),
                   "bias": head.bias.detach().contiguous()}, str(tmp))


def cached_features(stored, results_dir) -> tuple[np.ndarray, np.ndarray] | None:
    """(train, eval) pooled features the features unit `stored` holds (float16 where they fit),
    or None when it has not run."""
    if stored.key not in FEATURES.done_ids(results_dir, stored.dataset):
        return None
    folder = arrays_dir(results_dir, stored.key)
    return tuple(np.load(folder / f"{split}_features.npy").astype(np.float32)
                 for split in ("transfer", "eval"))


def run_probe(unit: ProbeUnit, results_dir, cache: Path) -> str:
    t0 = time.perf_counter()
    entry = get_zoo(unit.zoo).get(unit.model)
    backbone = backbone_of(entry)
    dataset = load_for(backbone, unit.dataset, cache)
    if len(np.unique(dataset.train_y.numpy())) < 2:
        raise InputError(f"dataset {dataset.name!r} has one class in its train split: "
                         "nothing to probe")
    train_y, eval_y = dataset.train_y.numpy(), dataset.eval_y.numpy()
    stored = features_unit(get_zoo(unit.zoo), unit.model, None, len(train_y))
    features = cached_features(stored, results_dir)
    if features is None:
        model = load_model(backbone, cache)
        check_probeable(model, backbone)
        features = tuple(forward_features(model, x, backbone.mean, backbone.std)[0]
                         for x in (dataset.train_x, dataset.eval_x))
    train_f, eval_f = features
    head = fit_head(train_f, train_y, dataset.num_classes, probe_recipe(unit.recipe))
    layout = ResultsLayout(results_dir)
    path = layout.probe_head(unit.key)
    save_head(head, path)
    if stored.key not in FEATURES.done_ids(results_dir, stored.dataset):
        with torch.inference_mode():
            logits = [head(torch.as_tensor(f)).numpy() for f in (train_f, eval_f)]
        store_features(stored, results_dir, {
            "transfer": SplitOutputs(train_f, logits[0], train_y, 0.0),
            "eval": SplitOutputs(eval_f, logits[1], eval_y, 0.0)})
    row = {"key": unit.key, "model": entry.name, "zoo": unit.zoo, "dataset": dataset.name,
           "recipe": unit.recipe, "num_classes": dataset.num_classes, "dim": train_f.shape[1],
           "train_samples": len(train_y), "eval_samples": len(eval_y),
           "train_top1": head_top1(head, train_f, train_y),
           "eval_top1": head_top1(head, eval_f, eval_y),
           "seconds": time.perf_counter() - t0,
           "head": path.relative_to(layout.root).as_posix()}
    # the row last: it marks the unit complete
    write_part(results_dir, "probes", pd.DataFrame([row]), unit.key)
    return "ok"
