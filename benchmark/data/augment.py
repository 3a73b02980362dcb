"""The training augmentation of docs/protocol.md#training, for a whole batch at once on the batch's device.

Per sample, as torchvision's `RandomHorizontalFlip(0.5)`, then
`RandomApply([ColorJitter(0.8 s, 0.8 s, 0.8 s, 0.2 s)], p=0.8)` (brightness, contrast, saturation
and hue in a random order per sample; factors uniform in [max(0, 1 - 0.8 s), 1 + 0.8 s], hue
shift in [-0.2 s, 0.2 s]), then `RandomGrayscale(0.2)`; each op is torchvision's float-tensor
formula. Images are floats in [0, 1] throughout (torchvision on uint8 or PIL rounds after each
op). Saturation, hue and grayscale leave 1-channel images unchanged, as torchvision does.

Every op runs on the whole batch and `torch.where` keeps it per sample: no host round trip, so
a GPU batch never waits for the CPU, and 224 px augmentation costs the GPU about a millisecond
where per-image torchvision transforms in loader workers cap a run at a few hundred images/s.
Parameters are drawn on the CPU from the caller's generator, so a batch's augmentation is a pure
function of that generator's seed, whatever the device.
"""
import dataclasses
import functools

import torch

GRAY_WEIGHTS = (0.2989, 0.587, 0.114)      # torchvision's rgb_to_grayscale


@dataclasses.dataclass
class AugmentParams:
    flip: torch.Tensor       # bool [B]
    jitter: torch.Tensor     # bool [B]: colour distortion applied
    order: torch.Tensor      # int64 [B, 4]: op applied at each position (0 b, 1 c, 2 s, 3 h)
    factors: torch.Tensor    # float [B, 4]: brightness, contrast, saturation, hue shift
    gray: torch.Tensor       # bool [B]

    def to(self, device) -> "AugmentParams":
        """On `device`, through pinned memory to a GPU: the host never waits for the copy."""
        pin = torch.device(device).type == "cuda"
        return AugmentParams(*((v.pin_memory() if pin else v).to(device, non_blocking=pin)
                               for v in (getattr(self, f.name) for f in dataclasses.fields(self))))


def sample_params(n: int, generator: torch.Generator, hflip: float = 0.5, color_p: float = 0.8,
                  strength: float = 1.0, gray_p: float = 0.2) -> AugmentParams:
    def uniform(lo, hi):
        return lo + (hi - lo) * torch.rand(n, generator=generator)

    s = 0.8 * strength
    factors = torch.stack([uniform(max(0.0, 1 - s), 1 + s) for _ in range(3)]
                          + [uniform(-0.2 * strength, 0.2 * strength)], 1)
    order = torch.rand(n, 4, generator=generator).argsort(1)
    return AugmentParams(flip=torch.rand(n, generator=generator) < hflip,
                         jitter=torch.rand(n, generator=generator) < color_p,
                         order=order, factors=factors,
                         gray=torch.rand(n, generator=generator) < gray_p)


def grayscale(x: torch.Tensor) -> torch.Tensor:
    """[B, 1, H, W] luma of [B, C, H, W] (the image itself when C is 1)."""
    if x.shape[1] == 1:
        return x
    return (x * _gray_weights(x.device, x.dtype)).sum(1, keepdim=True)


@functools.lru_cache(maxsize=8)
def _gray_weights(device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Made once per device: a copy to a GPU per call would make the host wait for the GPU."""
    return torch.tensor(GRAY_WEIGHTS, dtype=dtype).view(1, 3, 1, 1).to(device)


def _blend(x, other, factor):
    return (factor * x + (1 - factor) * other).clamp(0, 1)


def brightness(x, f):
    return (x * f).clamp(0, 1)


def contrast(x, f):
    return _blend(x, grayscale(x).mean((1, 2, 3), keepdim=True), f)


def saturation(x, f):
    return x if x.shape[1] == 1 else _blend(x, grayscale(x), f)


def rgb_to_hsv(x: torch.Tensor) -> torch.Tensor:
    r, g, b = x.unbind(1)
    maxc, minc = x.max(1).values, x.min(1).values
    delta = maxc - minc
    safe = torch.where(delta > 0, delta, torch.ones_like(delta))
    s = delta / torch.where(maxc > 0, maxc, torch.ones_like(maxc))
    rc, gc, bc = (maxc - r) / safe, (maxc - g) / safe, (maxc - b) / safe
    h = torch.where(maxc == r, bc - gc,
                    torch.where(maxc == g, 2.0 + rc - bc, 4.0 + gc - rc))
    h = torch.where(delta > 0, (h / 6.0) % 1.0, torch.zeros_like(h))
    return torch.stack([h, s, maxc], 1)


def hsv_to_rgb(hsv: torch.Tensor) -> torch.Tensor:
    h, s, v = hsv.unbind(1)
    i = torch.floor(h * 6.0)
    f = h * 6.0 - i
    i = i.long() % 6
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    table = torch.stack([torch.stack(c, 1) for c in
                         ((v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q))], 1)
    return table.gather(1, i[:, None, None].expand(-1, 1, 3, *i.shape[1:])).squeeze(1)


def hue(x, shift):
    if x.shape[1] == 1:
        return x
    hsv = rgb_to_hsv(x)
    h = (hsv[:, 0] + shift.view(-1, 1, 1)) % 1.0
    return hsv_to_rgb(torch.stack([h, hsv[:, 1], hsv[:, 2]], 1)).clamp(0, 1)


_OPS = (brightness, contrast, saturation, hue)


def apply(x: torch.Tensor, p: AugmentParams) -> torch.Tensor:
    """The augmentation with parameters `p` of float images [B, C, H, W] in [0, 1]."""
    def per_sample(mask):
        return mask.view(-1, 1, 1, 1)

    x = torch.where(per_sample(p.flip), x.flip(-1), x)
    for position in range(4):
        for op_index, op in enumerate(_OPS):
            chosen = p.jitter & (p.order[:, position] == op_index)
            f = p.factors[:, op_index]
            out = op(x, f) if op is hue else op(x, f.view(-1, 1, 1, 1))
            x = torch.where(per_sample(chosen), out, x)
    return torch.where(per_sample(p.gray), grayscale(x).expand_as(x), x)


def augment(x: torch.Tensor, generator: torch.Generator, **options) -> torch.Tensor:
    """Float images [B, C, H, W] in [0, 1], augmented with parameters drawn from `generator`."""
    return apply(x, sample_params(len(x), generator, **options).to(x.device))
