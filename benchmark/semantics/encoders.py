"""Text encoders by name, and where their weights come from.

An encoder is registered with a description, its hub location and a builder that turns a
resolved `WeightSource` into `encode(texts) -> [len(texts), D]` unit vectors. The default,
`clip-vit-b-32`, is CLIP ViT-B/32's text tower (open_clip's `ViT-B-32-quickgelu` with OpenAI's
weights), the encoder the authors embedded class names with.

Weights resolve like model weights (`benchmark.models.weights`), before any compute:

1. `weights` naming a file: that file (a state dict, opened as tensors only);
2. a weights folder (`KTBENCH_WEIGHTS_DIR`) holding `<encoder name><suffix>`;
3. the hub (open_clip's download); with `HF_HUB_OFFLINE` set it must already be cached;
4. `weights="random"`: initialised at random, to test the plumbing; the numbers mean nothing,
   and every table row says `random-init`.

A missing weight raises InputError naming every place looked at. Light at import (the
command line lists the encoders): torch, open_clip and the weights helpers load when used.
"""
import dataclasses
from pathlib import Path
from typing import Callable

from results.errors import InputError

DEFAULT_ENCODER = "clip-vit-b-32"
RANDOM = "random"
_BATCH = 256


@dataclasses.dataclass(frozen=True)
class TextEncoder:
    name: str
    description: str
    hub: tuple[str, tuple[str, ...]]               # (hub id, candidate file names)
    build: Callable[["WeightSource", str], Callable]  # (source, device) -> encode(texts)


_ENCODERS: dict[str, TextEncoder] = {}


def register_text_encoder(name: str, description: str, hub: tuple[str, tuple[str, ...]]):
    def wrap(build):
        _ENCODERS[name] = TextEncoder(name, description, hub, build)
        return build
    return wrap


def list_text_encoders() -> list[str]:
    return sorted(_ENCODERS)


def get_text_encoder(name: str) -> TextEncoder:
    if name not in _ENCODERS:
        raise InputError(f"unknown text encoder {name!r}; encoders: "
                         f"{', '.join(list_text_encoders())}")
    return _ENCODERS[name]


def resolve_text_weights(name: str, weights: str | Path | None = None, folder=None,
                         allow_hub: bool = True) -> "WeightSource":
    """The weight source of encoder `name` (see the module docstring); InputError when
    none is found or a given file is not a state dict."""
    from benchmark.models.weights import (WeightSource, check_weight_file, find_in_folder,
                                          hub_cached, hub_offline, weights_dir)
    encoder = get_text_encoder(name)
    if weights is not None and str(weights) == RANDOM:
        return WeightSource("random")
    if weights is not None:
        path = Path(weights)
        if not path.is_file():
            raise InputError(f"weights for text encoder {name!r} not found; looked at {path}")
        check_weight_file(path)
        return WeightSource("file", path)
    looked = []
    folder = weights_dir(folder)
    if folder is not None:
        found = find_in_folder(folder, [name])
        if found:
            check_weight_file(found)
            return WeightSource("file", found)
        looked.append(f"{folder}/{name}.*")
    hub_id, filenames = encoder.hub
    if not allow_hub:
        looked.append("hub (not allowed)")
    elif hub_offline() and not hub_cached(hub_id, list(filenames)):
        looked.append(f"hub {hub_id} (not in the local cache and HF_HUB_OFFLINE is set)")
    else:
        return WeightSource("hub", hub=hub_id)
    raise InputError(f"weights for text encoder {name!r} not found; looked at "
                     + ", ".join(looked) + f" (or --weights FILE, or --weights {RANDOM} "
                     "to test the plumbing)")


def embed_texts(name: str, source: "WeightSource", texts, device: str = "cpu"):
    """[len(texts), D] float32 numpy array of unit vectors: encoder `name` over `texts`."""
    import numpy as np
    import torch
    encode = get_text_encoder(name).build(source, device)
    chunks = []
    with torch.no_grad():
        for start in range(0, len(texts), _BATCH):
            vectors = encode(list(texts[start:start + _BATCH])).float()
            chunks.append(torch.nn.functional.normalize(vectors, dim=-1).cpu().numpy())
    return np.concatenate(chunks) if chunks else np.zeros((0, 0), np.float32)


_CLIP = "ViT-B-32-quickgelu"


@register_text_encoder(DEFAULT_ENCODER, "CLIP ViT-B/32 text tower (open_clip, OpenAI weights)",
                       hub=("timm/vit_base_patch32_clip_224.openai",
                            ("open_clip_pytorch_model.bin", "open_clip_model.safetensors")))
def _clip_vit_b_32(source: "WeightSource", device: str):
    try:
        import open_clip
    except ImportError:
        raise InputError(f"text encoder {DEFAULT_ENCODER} needs open_clip: "
                         "pip install 'ktbench[semantics]'") from None
    pretrained = {"file": str(source.path), "hub": "openai", "random": None}[source.kind]
    model = open_clip.create_model(_CLIP, pretrained=pretrained, device=device,
                                   require_pretrained=pretrained is not None)
    model.eval()
    tokenizer = open_clip.get_tokenizer(_CLIP)
    return lambda texts: model.encode_text(tokenizer(texts).to(device))
