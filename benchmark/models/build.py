"""Building catalog models through timm, and batched predictions.

One path for every zoo: `timm.create_model` with either timm's own pretrained source (the hub)
or a local weight file through `pretrained_cfg_overlay`, as a real timm zoo is loaded.
"""
from pathlib import Path

import timm
import torch

from benchmark.models import archs  # noqa: F401  (registers the micro zoo's own timm entry points)
from benchmark.data.datasets import normalize
from benchmark.data.preprocess import resize_to
from pairs.catalog import ModelEntry


def create_model(entry: ModelEntry, weights: Path | None = None,
                 pretrained: bool = True) -> torch.nn.Module:
    """The entry's timm model in eval mode: from `weights` (a local file), else timm's hub,
    or randomly initialised with `pretrained=False`."""
    options = dict(num_classes=entry.num_classes, in_chans=entry.in_chans, **entry.kwargs)
    if pretrained and weights is not None:
        # num_classes must be in the overlay too: otherwise timm compares against the default
        # config's 1000 classes, silently drops the trained classifier and re-initialises it.
        options["pretrained_cfg_overlay"] = dict(
            file=str(weights), num_classes=entry.num_classes, input_size=tuple(entry.input_size),
            mean=tuple(entry.mean), std=tuple(entry.std))
    model = timm.create_model(entry.arch, pretrained=pretrained, **options)
    return model.eval()


# what probing a model calls: its pooled pre-logits features (`features_and_logits`) and the
# classifier it swaps for the fitted head (`attach_head`)
PROBE_INTERFACE = ("forward_features", "forward_head", "reset_classifier", "get_classifier")


def check_probeable(model: torch.nn.Module, entry: ModelEntry) -> None:
    """InputError (one line) unless `model` has timm's feature interface, which a probe needs."""
    from results.errors import InputError
    missing = [name for name in PROBE_INTERFACE if not callable(getattr(model, name, None))]
    if missing:
        raise InputError(f"model {entry.name!r} ({entry.arch}, {type(model).__name__}) has no "
                         f"{', '.join(missing)}: a probe needs timm's forward_features, "
                         "forward_head(pre_logits=True) and reset_classifier")


def check_probeable_archs(entries) -> None:
    """`check_probeable` on each distinct architecture of `entries` that timm does not define
    itself (timm's own tests hold every one of its models to that interface), built on the meta
    device (no memory, no weights: 0.02-0.6 s each), so a launch refuses before any job starts."""
    seen = set()
    for entry in entries:
        arch = (entry.arch, entry.in_chans, repr(sorted(entry.kwargs.items())))
        if arch in seen or _defined_by_timm(entry.arch):
            continue
        seen.add(arch)
        try:
            with torch.device("meta"):
                skeleton = create_model(entry, pretrained=False)
        except Exception:   # not buildable without memory: the probe unit checks the real model
            continue
        check_probeable(skeleton, entry)


def _defined_by_timm(arch: str) -> bool:
    return (timm.models.is_model(arch)
            and timm.models.model_entrypoint(arch).__module__.startswith("timm."))


def attach_head(model: torch.nn.Module, head_file: Path, num_classes: int) -> None:
    """Replace the model's classifier by the linear head in `head_file` (`weight` [C, D],
    `bias` [C]): timm's `reset_classifier` makes the layer, the file fills it."""
    from safetensors.torch import load_file

    from results.errors import InputError
    head = load_file(str(head_file))
    model.reset_classifier(num_classes)
    layer = model.get_classifier()
    shapes = {k: tuple(v.shape) for k, v in head.items()}
    if shapes != {"weight": tuple(layer.weight.shape), "bias": tuple(layer.bias.shape)}:
        raise InputError(f"probe head {head_file} holds {shapes}, the model's classifier needs "
                         f"weight {tuple(layer.weight.shape)} and bias {tuple(layer.bias.shape)}")
    layer.load_state_dict(head)


def count_params_m(model: torch.nn.Module) -> float:
    return sum(p.numel() for p in model.parameters()) / 1e6


def _device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


PREDICT_BATCH = 512


def predict_logits(model: torch.nn.Module, x_uint8: torch.Tensor, mean, std,
                   batch_size: int = PREDICT_BATCH, precision: str | None = None,
                   size: int | None = None) -> torch.Tensor:
    """float32 logits [N, C] on the CPU for uint8 images [N, C, H, W], in batches on the
    model's device (under CUDA autocast at `precision`, if given), resized to `size` first
    where given (`benchmark.data.preprocess.resize_to`)."""
    from benchmark.models.gpu import autocast, to_device
    device = _device(model)
    with torch.inference_mode(), autocast(precision, device):
        batches = [model(_model_input(to_device(x_uint8[i:i + batch_size], device), mean, std,
                                      size)).float().cpu()
                   for i in range(0, len(x_uint8), batch_size)]
    # Joined outside inference mode: a plain tensor that autograd may save (as distillation targets).
    return torch.cat(batches)


def features_and_logits(model: torch.nn.Module, x: torch.Tensor):
    """(pooled pre-logits features, logits) of a timm model in one pass: the feature extractor
    (`forward_features` + `forward_head(pre_logits=True)`) and the classifier on top, which is
    exactly `model(x)` split in two (contrastive distillation trains both parts)."""
    feats = model.forward_head(model.forward_features(x), pre_logits=True)
    return feats, model.get_classifier()(feats)


def predict_outputs(model: torch.nn.Module, x_uint8: torch.Tensor, mean, std,
                    kind: str = "logits", batch_size: int = PREDICT_BATCH,
                    size: int | None = None) -> torch.Tensor:
    """float32 `logits` or pooled `features` [N, D] on the CPU for uint8 images, in batches on
    the model's device, resized to `size` first where given."""
    from benchmark.models.gpu import to_device
    if kind == "logits":
        return predict_logits(model, x_uint8, mean, std, batch_size, size=size)
    if kind != "features":
        raise ValueError(f"unknown output kind {kind!r}; use logits or features")
    device = _device(model)
    with torch.inference_mode():
        batches = [features_and_logits(model, _model_input(
                       to_device(x_uint8[i:i + batch_size], device), mean, std, size))[0]
                   .float().cpu() for i in range(0, len(x_uint8), batch_size)]
    return torch.cat(batches)


def _model_input(x_uint8: torch.Tensor, mean, std, size: int | None) -> torch.Tensor:
    """A model's input from uint8 images: its mean/std, then its input size where given."""
    return resize_to(normalize(x_uint8, mean, std), size)
