"""The built-in `digits16`: scikit-learn's bundled 8x8 handwritten digits rendered into a harder
16x16 task (random affine + elastic warps, contrast and noise), so a small zoo trained on a CPU
spreads over a wide range of accuracies. Train and eval are rendered from disjoint source images.
"""
import math

import numpy as np
import torch
import torch.nn.functional as F

from benchmark.data.datasets import register_class_names, register_dataset

DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


@register_dataset(
    "digits16", version=1, num_classes=10, size=16, n_train=12000, n_eval=4000,
    eval_fraction=1 / 3, split_seed=0, train_seed=1, eval_seed=2,
    rotation_deg=20.0, scale=(0.8, 1.1), aspect=0.1, shear_deg=15.0, translate=0.12,
    elastic=0.05, contrast=(0.6, 1.2), brightness=0.1, noise=0.1,
)
def _build_digits16(d: dict) -> dict:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = torch.from_numpy(digits.images).float().div(16.0).unsqueeze(1)  # [1797, 1, 8, 8] in [0, 1]
    labels = torch.from_numpy(digits.target).long()
    # Split the sources before rendering, so no source image feeds both sides.
    train_src, eval_src = train_test_split(
        np.arange(len(labels)), test_size=d["eval_fraction"], stratify=digits.target,
        random_state=d["split_seed"])
    arrays = {}
    for side, sources, n, seed in (("train", train_src, d["n_train"], d["train_seed"]),
                                   ("eval", eval_src, d["n_eval"], d["eval_seed"])):
        gen = torch.Generator().manual_seed(seed)
        sources = torch.from_numpy(np.sort(sources))
        # Each source is used equally often (up to one), so classes keep the source balance.
        picks = sources[torch.arange(n) % len(sources)][torch.randperm(n, generator=gen)]
        arrays[f"{side}_x"] = _render(images[picks], d, gen).numpy()
        arrays[f"{side}_y"] = labels[picks].numpy()
        arrays[f"{side}_sources"] = picks.numpy()
    return arrays


register_class_names("digits16", lambda: DIGIT_NAMES)


def _render(src: torch.Tensor, d: dict, gen: torch.Generator) -> torch.Tensor:
    """One batched warp of [N, 1, 8, 8] floats into [N, 1, size, size] uint8."""
    n, size = len(src), d["size"]

    def uniform(lo, hi, *shape):
        return lo + (hi - lo) * torch.rand(n, *shape, generator=gen)

    angle = uniform(-1, 1) * math.radians(d["rotation_deg"])
    shear = uniform(-1, 1) * math.radians(d["shear_deg"])
    scale = uniform(*d["scale"])
    aspect = 1 + uniform(-1, 1) * d["aspect"]
    shift = uniform(-1, 1, 2) * 2 * d["translate"]      # grid coordinates span 2 per image side
    cos, sin = torch.cos(angle), torch.sin(angle)
    rotation = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)
    shearing = torch.eye(2).repeat(n, 1, 1)
    shearing[:, 0, 1] = torch.tan(shear)
    # The grid maps output to input coordinates, so dividing by the scale enlarges the digit.
    scaling = torch.diag_embed(torch.stack([1 / (scale * aspect), aspect / scale], -1))
    theta = torch.cat([rotation @ shearing @ scaling, shift.unsqueeze(-1)], -1)
    grid = F.affine_grid(theta, [n, 1, size, size], align_corners=False)
    # Smooth elastic field: random 4x4 displacements upsampled to the output grid.
    coarse = torch.randn(n, 2, 4, 4, generator=gen) * d["elastic"]
    grid = grid + F.interpolate(coarse, size=(size, size), mode="bicubic",
                                align_corners=False).permute(0, 2, 3, 1)
    x = F.grid_sample(src, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    x = x * uniform(*d["contrast"], 1, 1, 1) + uniform(-1, 1, 1, 1, 1) * d["brightness"]
    x = x + torch.randn(x.shape, generator=gen) * d["noise"]
    return x.clamp(0, 1).mul(255).round().to(torch.uint8)


# digits_shift: the same source digits in another style and a coarser task, for the probe
# stage (docs/protocol.md#probes): white background with dark strokes, strokes thickened by a
# 3x3 max filter, every image turned a quarter turn (plus the usual jitter), and five classes of
# two digits each (0-1, 2-3, ...). A digits16 model's ten-way head cannot answer it; its
# backbone still has to see past the shift.
SHIFT_GROUPS = tuple(f"{a}_or_{b}" for a, b in zip(DIGIT_NAMES[::2], DIGIT_NAMES[1::2]))


@register_dataset(
    "digits_shift", version=1, num_classes=5, size=16, n_train=6000, n_eval=2000,
    eval_fraction=1 / 3, split_seed=3, train_seed=4, eval_seed=5, quarter_turns=1,
    rotation_deg=10.0, scale=(0.8, 1.0), aspect=0.1, shear_deg=10.0, translate=0.08,
    elastic=0.03, contrast=(0.7, 1.0), brightness=0.05, noise=0.06, thicken_px=3,
)
def _build_digits_shift(d: dict) -> dict:
    arrays = _build_digits16(d)
    for side in ("train", "eval"):
        x = torch.from_numpy(arrays[f"{side}_x"]).float()
        x = F.max_pool2d(x, d["thicken_px"], stride=1, padding=d["thicken_px"] // 2)
        x = torch.rot90(x, d["quarter_turns"], dims=(2, 3))
        arrays[f"{side}_x"] = (255 - x).to(torch.uint8).numpy()
        arrays[f"{side}_y"] = arrays[f"{side}_y"] // 2
    return arrays


register_class_names("digits_shift", lambda: SHIFT_GROUPS)
