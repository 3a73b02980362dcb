"""Training the micro zoo once into the cache, and reading what was measured.

Each trained model is a safetensors file named by its entry's fingerprint (a changed definition
trains a new file) with a JSON sidecar of the same stem. Before a file is put in place it is
reloaded through timm's local-file path and must predict exactly as the trained model did, so
a silently re-initialised head (timm's trap when `num_classes` is missing) can never be cached.
Missing models train in parallel, one process per core; every file is written atomically (a
temporary name renamed into place), so a build killed at any point leaves whole files only.
"""
import json
import math
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save
from tqdm import tqdm

from benchmark.cores import usable_cores
from benchmark.data.datasets import Dataset, load_dataset, normalize
from benchmark.models.build import count_params_m, create_model, predict_logits
from pairs.catalog import ModelEntry, Zoo
from pairs.probe import backbone_zoo
from results.errors import InputError
from results.store import atomic_path


# One thread per model: the weights then do not depend on the machine's cores (a multi-threaded
# kernel sums in another order; 1 and 2 threads give different bits) and, for models this small,
# one model per core uses the cores better than threads within one model.
TRAIN_THREADS = 1
# Forked on Linux: a worker starts with torch and timm imported (a spawned one imports them again,
# seconds each on an idle machine), and on one thread it never enters the OpenMP pool a fork
# leaves unusable (PyTorch's DataLoader workers rely on the same). Elsewhere fork is unsafe.
_START_METHOD = "fork" if sys.platform == "linux" else "spawn"


def weights_path(entry: ModelEntry, cache: Path) -> Path:
    return Path(cache) / "zoo" / f"{entry.name}-{entry.fingerprint()}.safetensors"


def zoo_info(entry: ModelEntry, cache: Path) -> dict:
    """The sidecar of a trained entry: top1, params_m, train_seconds, ..."""
    sidecar = weights_path(entry, cache).with_suffix(".json")
    if not sidecar.exists():
        raise InputError(f"{entry.name}: no trained weights in {sidecar.parent}; "
                         "run ensure_zoo_weights first")
    return json.loads(sidecar.read_text())


def ensure_zoo_weights(zoo: Zoo, cache: Path, progress: bool = True) -> dict[str, Path]:
    """Weight file of every entry with a recipe (trained if missing) or a `weights` file.
    Entries with neither are loaded from timm's hub and are not in the result. A probed zoo's
    backbones train on their own zoo's dataset, never on the one they are probed onto."""
    zoo = backbone_zoo(zoo)
    missing = [e for e in zoo.models
               if e.weights is None and e.recipe is not None and not weights_path(e, cache).exists()]
    if missing:
        data = load_dataset(zoo.dataset, cache)    # built once, before any worker reads it
        with tqdm(total=len(missing), desc=f"training {zoo.name} zoo", unit="model",
                  file=sys.stderr, disable=not progress) as bar:
            _train_missing(missing, data, cache, bar.update)
    paths = {}
    for entry in zoo.models:
        if entry.weights is not None:
            paths[entry.name] = Path(entry.weights)
        elif entry.recipe is not None:
            paths[entry.name] = weights_path(entry, cache)
    return paths


def _train_missing(entries: list[ModelEntry], data: Dataset, cache: Path, done) -> None:
    """Train `entries` on one thread each, one per core at once: each in a process of its own,
    the dearest first (epochs x parameters) so the last to start are quick ones; with a single
    entry or core, here. `done()` after each."""
    workers = min(len(entries), usable_cores())
    if workers == 1:
        threads = torch.get_num_threads()
        torch.set_num_threads(TRAIN_THREADS)
        try:
            for entry in entries:
                _train_and_save(entry, data, cache)
                done()
        finally:
            torch.set_num_threads(threads)
        return
    entries = sorted(entries, key=_training_cost, reverse=True)
    context = multiprocessing.get_context(_START_METHOD)
    with ProcessPoolExecutor(workers, mp_context=context, initializer=torch.set_num_threads,
                             initargs=(TRAIN_THREADS,)) as pool:
        futures = [pool.submit(_train_in_worker, entry, data.name, cache) for entry in entries]
        try:
            for future in as_completed(futures):
                future.result()
                done()
        except BaseException:
            for future in futures:        # those not started; the running ones end and save
                future.cancel()
            raise


def _training_cost(entry: ModelEntry) -> float:
    return entry.recipe["epochs"] * count_params_m(create_model(entry, pretrained=False))


def _train_in_worker(entry: ModelEntry, dataset: str, cache: Path) -> None:
    _train_and_save(entry, load_dataset(dataset, cache), cache)


def _train_and_save(entry: ModelEntry, data: Dataset, cache: Path) -> None:
    start = time.perf_counter()
    model = _train(entry, data)
    seconds = time.perf_counter() - start
    predictions = predict_logits(model, data.eval_x, entry.mean, entry.std).argmax(1)
    top1 = _top1(predictions, data.eval_y)

    final = weights_path(entry, cache)
    # The temporary name keeps the .safetensors suffix: timm picks the loader by suffix.
    with atomic_path(final, suffix=".safetensors") as tmp:
        # Bytes written by Python rather than save_file, which creates files readable by the owner only.
        tmp.write_bytes(save({k: v.contiguous() for k, v in model.state_dict().items()}))
        reloaded = predict_logits(create_model(entry, tmp), data.eval_x, entry.mean, entry.std)
        if not torch.equal(reloaded.argmax(1), predictions):
            raise RuntimeError(
                f"{entry.name}: reloaded through timm it scores {_top1(reloaded.argmax(1), data.eval_y):.2f}% "
                f"top-1, trained {top1:.2f}%: timm did not load the saved weights as trained "
                "(check num_classes, in_chans and input_size in the pretrained_cfg_overlay)")
        info = dict(model=entry.name, arch=entry.arch, family=entry.family,
                    fingerprint=entry.fingerprint(), dataset=data.name, top1=top1,
                    n_eval=len(data.eval_y), params_m=count_params_m(model),
                    train_seconds=round(seconds, 2), recipe=entry.recipe)
        # Sidecar first: a weights file in place always has its sidecar.
        with atomic_path(final.with_suffix(".json")) as sidecar:
            sidecar.write_text(json.dumps(info, indent=1, sort_keys=True))


def _train(entry: ModelEntry, data: Dataset) -> torch.nn.Module:
    """AdamW with a one-cycle schedule and cross-entropy, as the entry's recipe says."""
    recipe = entry.recipe
    shift_px = recipe["augmentation"]["shift_px"]
    torch.manual_seed(recipe["seed"])                      # model initialisation
    batches = torch.Generator().manual_seed(recipe["seed"])  # order and augmentation
    model = create_model(entry, pretrained=False).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe["lr"],
                                  weight_decay=recipe["weight_decay"])
    batch_size = recipe["batch_size"]
    steps_per_epoch = len(data.train_y) // batch_size     # whole batches only: BatchNorm likes them
    total_steps = max(1, math.ceil(recipe["epochs"] * steps_per_epoch))
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=recipe["lr"],
                                                   total_steps=total_steps)
    for step in range(total_steps):
        if step % steps_per_epoch == 0:
            order = torch.randperm(len(data.train_y), generator=batches)
        idx = order[(step % steps_per_epoch) * batch_size:][:batch_size]
        x = data.train_x[idx]
        if shift_px:
            x = random_shift(x, shift_px, batches)
        loss = F.cross_entropy(model(normalize(x, entry.mean, entry.std)), data.train_y[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
    return model.eval()


def random_shift(x: torch.Tensor, max_px: int, generator: torch.Generator) -> torch.Tensor:
    """Shift each image by up to `max_px` pixels in x and y, filling with zeros (background)."""
    n, _, h, w = x.shape
    padded = F.pad(x, (max_px,) * 4)
    dy, dx = torch.randint(0, 2 * max_px + 1, (2, n, 1), generator=generator)
    rows = (dy + torch.arange(h))[:, :, None]
    cols = (dx + torch.arange(w))[:, None, :]
    # Advanced indices around a slice put their dimensions first: [n, h, w, C].
    return padded[torch.arange(n)[:, None, None], :, rows, cols].permute(0, 3, 1, 2)


def _top1(predictions: torch.Tensor, labels: torch.Tensor) -> float:
    return (predictions == labels).double().mean().item() * 100
