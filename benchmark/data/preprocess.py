"""Per-model preprocessing from each model's `pretrained_cfg` (timm's `resolve_data_config`).

A decode is a `benchmark.data.datasets.Preprocessing` (input size, crop_pct, interpolation,
channels); which one a model is fed on a dataset is `benchmark.data.feeding`'s rule.

Training (docs/protocol.md#training): decode with a centre crop at the *student's* input size and
crop_pct (no RandomResizedCrop); batches travel as uint8 [B, C, H, W] and are augmented on the
device (`benchmark.data.augment`); every model in a step sees the same batch and normalises it
with its own mean/std (`normalize_for`), a model of another input size resized to it
(`resize_to`).
"""
from typing import Callable

import torch
import torch.nn.functional as F

from benchmark.data.datasets import Preprocessing, definition_of, normalize
from results.errors import InputError


def dataset_preprocessing(name: str) -> Preprocessing:
    """What the predict stage feeds every model of a file-backed dataset: its eval side decoded
    once at the name's size, crop_pct and interpolation (docs/protocol.md#data); InputError for
    a built-in dataset (its arrays come decoded)."""
    definition = definition_of(name)
    if "crop_pct" not in definition:
        raise InputError(f"dataset {name!r} is built in: it has no preprocessing to match")
    return Preprocessing(definition["size"], definition["crop_pct"],
                         definition["interpolation"], definition["channels"])


def own_preprocessing(entry) -> Preprocessing:
    """The preprocessing a model was made for: its catalog entry's input size, and its
    crop_pct and interpolation where the entry sets them, else timm's pretrained config's
    (`data_config`)."""
    cfg = data_config(entry)
    return Preprocessing(entry.input_size[-1],
                         cfg["crop_pct"] if entry.crop_pct is None else entry.crop_pct,
                         entry.interpolation or cfg["interpolation"], entry.input_size[0])


def data_config(entry=None, model: torch.nn.Module | None = None) -> dict:
    """timm's data config (input_size, interpolation, mean, std, crop_pct, crop_mode) from the
    model's `pretrained_cfg`; the catalog entry's input_size/mean/std win where given."""
    from timm.data import resolve_data_config
    args = {}
    if entry is not None:
        args = dict(input_size=tuple(entry.input_size), mean=tuple(entry.mean),
                    std=tuple(entry.std))
    if model is None and entry is not None:
        import timm
        cfg = timm.models.get_pretrained_cfg(entry.arch)
        pretrained_cfg = cfg.to_dict() if cfg is not None else {}
        return resolve_data_config(args, pretrained_cfg=pretrained_cfg)
    return resolve_data_config(args, model=model)


def eval_transform(cfg: dict) -> Callable:
    """PIL -> normalised float tensor, exactly timm's eval transform for this config."""
    from timm.data import create_transform
    return create_transform(**cfg, is_training=False)


def decode_transform(cfg: dict) -> Callable:
    """PIL -> uint8 [C, H, W]: timm's eval resize + centre crop (input size, crop_pct,
    interpolation), without normalisation."""
    from timm.data.transforms_factory import transforms_imagenet_eval
    from torchvision import transforms as T
    steps = transforms_imagenet_eval(
        img_size=tuple(cfg["input_size"][-2:]), crop_pct=cfg.get("crop_pct"),
        crop_mode=cfg.get("crop_mode"), interpolation=cfg.get("interpolation", "bilinear"),
        normalize=False).transforms
    keep = [t for t in steps if type(t).__name__ not in ("ToTensor", "MaybeToTensor",
                                                          "MaybePILToTensor", "PILToTensor")]
    channels = cfg["input_size"][0]
    return T.Compose([_Convert("L" if channels == 1 else "RGB"), *keep, T.PILToTensor()])


class _Convert:
    def __init__(self, mode: str):
        self.mode = mode

    def __call__(self, img):
        return img.convert(self.mode) if getattr(img, "mode", self.mode) != self.mode else img


def resize_to(x: torch.Tensor, size: int | None) -> torch.Tensor:
    """A float batch [B, C, H, W] at `size` x `size` (bilinear, antialiased; unchanged where it
    is that size already, or `size` is None): a teacher of another input size fed a student's
    batch (docs/protocol.md#training). Per-channel normalisation commutes with it."""
    if size is None or tuple(x.shape[-2:]) == (size, size):
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", antialias=True,
                         align_corners=False)


def normalize_for(batch_uint8: torch.Tensor, cfg: dict) -> torch.Tensor:
    """One model's view of a shared uint8 batch: its own mean/std (docs/protocol.md#training)."""
    return normalize(batch_uint8, cfg["mean"], cfg["std"])
