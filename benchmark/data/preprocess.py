"""Per-model preprocessing from each model's `pretrained_cfg` (timm's `resolve_data_config`).

Training (docs/protocol.md#training): decode with a centre crop at the *student's* input size and
crop_pct (no RandomResizedCrop); batches travel as uint8 [B, C, H, W] and are augmented on the
device (`benchmark.data.augment`); every model in a step sees the same batch and normalises it
with its own mean/std (`normalize_for`).
"""
from dataclasses import dataclass
from typing import Callable

import torch

from benchmark.data.datasets import definition_of, normalize
from results.errors import InputError


@dataclass(frozen=True)
class Preprocessing:
    """An eval resize + centre crop (timm's): the input size, crop_pct and interpolation an
    image goes through before a model, and its channels."""
    size: int
    crop_pct: float
    interpolation: str
    channels: int = 3

    def __str__(self) -> str:
        return f"{self.size} px, crop {self.crop_pct:g}, {self.interpolation}"

    def matches(self, other: "Preprocessing") -> bool:
        return (self.size, self.interpolation, self.channels) == (
            other.size, other.interpolation, other.channels) and abs(
            self.crop_pct - other.crop_pct) < 1e-6

    def inference_flags(self) -> str:
        """The flags of timm's inference.py (and of `ktbench import-predictions`) that select
        it."""
        size = (f"--img-size {self.size}" if self.channels == 3
                else f"--input-size {self.channels} {self.size} {self.size}")
        return f"{size} --crop-pct {self.crop_pct:g} --interpolation {self.interpolation}"

    def decode_config(self) -> dict:
        """As `decode_transform` takes it."""
        return dict(input_size=(self.channels, self.size, self.size), crop_pct=self.crop_pct,
                    interpolation=self.interpolation)


def dataset_preprocessing(name: str) -> Preprocessing:
    """What the predict stage feeds every model of a file-backed dataset: its eval side decoded
    once at the name's size, crop_pct and interpolation (docs/protocol.md#data); InputError for
    a built-in dataset (its arrays come decoded)."""
    definition = definition_of(name)
    if "crop_pct" not in definition:
        raise InputError(f"dataset {name!r} is built in: it has no preprocessing to match")
    return Preprocessing(definition["size"], definition["crop_pct"],
                         definition["interpolation"], definition["channels"])


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


def normalize_for(batch_uint8: torch.Tensor, cfg: dict) -> torch.Tensor:
    """One model's view of a shared uint8 batch: its own mean/std (docs/protocol.md#training)."""
    return normalize(batch_uint8, cfg["mean"], cfg["std"])
