"""Where a catalog model's weights come from, settled before any compute.

Three sources, tried in this order for an entry:

1. `entry.weights` naming a file: that file (`.safetensors`, `.pth`, `.pt` or `.bin`);
   `entry.weights` naming a folder: `<folder>/<entry.name><suffix>` (then `<entry.arch><suffix>`).
2. A folder of weight files named by model (`weights_dir`, or the `KTBENCH_WEIGHTS_DIR`
   environment variable), for entries without their own file.
3. timm's hub (`timm.create_model(arch, pretrained=True)`). With `HF_HUB_OFFLINE` set the file
   must already be in the Hugging Face cache, so an offline job fails here, not after hours.

A missing weight raises `InputError` with one line naming the model and every place it
was looked for (the CLI maps it to exit code 2). Files are opened only as tensors: safetensors,
or `torch.load(weights_only=True)`; anything that is not a state dict is refused.
"""
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from pairs.catalog import ModelEntry
from results.errors import InputError

WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin")
WEIGHTS_DIR_ENV = "KTBENCH_WEIGHTS_DIR"
# the keys under which training checkpoints keep the model's state dict (timm's own order)
_CHECKPOINT_KEYS = ("state_dict_ema", "model_ema", "state_dict", "model")


@dataclass(frozen=True)
class WeightSource:
    kind: str                  # "file", "hub", or "random" (initialised at random: plumbing only)
    path: Path | None = None   # the local file (kind "file")
    hub: str | None = None     # the hub location (kind "hub"), when the config names one

    def describe(self) -> str:
        if self.kind == "random":
            return "random-init"
        return str(self.path) if self.kind == "file" else f"hub:{self.hub or '?'}"


def find_in_folder(folder: Path, names: Iterable[str]) -> Path | None:
    """The first `<folder>/<name><suffix>` that is a file, names and suffixes in order."""
    folder = Path(folder)
    for name in names:
        for suffix in WEIGHT_SUFFIXES:
            path = folder / f"{name}{suffix}"
            if path.is_file():
                return path
    return None


def _folder_candidates(folder: Path, entry: ModelEntry) -> list[str]:
    names = dict.fromkeys([entry.name, entry.arch])
    return [str(Path(folder) / f"{n}{{{','.join(WEIGHT_SUFFIXES)}}}") for n in names]


def weights_dir(explicit: Path | str | None = None) -> Path | None:
    if explicit:
        return Path(explicit)
    env = os.environ.get(WEIGHTS_DIR_ENV)
    return Path(env) if env else None


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def hub_location(arch: str) -> tuple[str | None, list[str]]:
    """(`hf_hub_id` or url, candidate file names) of timm's default pretrained config."""
    import timm
    cfg = timm.models.get_pretrained_cfg(arch)
    if cfg is None:
        return None, []
    cfg = cfg.to_dict() if hasattr(cfg, "to_dict") else dict(cfg)
    if cfg.get("hf_hub_id"):
        hub_id = cfg["hf_hub_id"]
        if cfg.get("hf_hub_filename"):
            return hub_id, [cfg["hf_hub_filename"]]
        return hub_id, ["model.safetensors", "pytorch_model.bin"]
    return cfg.get("url") or None, []


def hub_cached(hub_id: str, filenames: list[str]) -> bool:
    if "://" in hub_id:                      # a plain url: torch.hub's checkpoint folder
        import torch
        return (Path(torch.hub.get_dir()) / "checkpoints" / hub_id.rsplit("/", 1)[-1]).is_file()
    from huggingface_hub import try_to_load_from_cache
    hub_id = hub_id.split("@", 1)[0]
    return any(isinstance(try_to_load_from_cache(hub_id, f), str) for f in filenames)


def resolve(entry: ModelEntry, folder: Path | str | None = None,
            allow_hub: bool = True) -> WeightSource:
    """The weight source of a pretrained (non micro-zoo) entry; raises InputError."""
    looked = []
    if entry.weights:
        given = Path(entry.weights)
        if given.is_dir():
            found = find_in_folder(given, [entry.name, entry.arch])
            if found:
                return WeightSource("file", found)
            looked += _folder_candidates(given, entry)
        elif given.is_file():
            return WeightSource("file", given)
        else:
            looked.append(str(given))
        # an entry naming its own weights never falls back to another source
        raise InputError(f"weights for model {entry.name!r} not found; looked at "
                         + ", ".join(looked))
    folder = weights_dir(folder)
    if folder is not None:
        found = find_in_folder(folder, [entry.name, entry.arch])
        if found:
            return WeightSource("file", found)
        looked += _folder_candidates(folder, entry)
    if allow_hub:
        try:
            hub_id, filenames = hub_location(entry.arch)
        except RuntimeError as e:           # timm: unknown model
            raise InputError(f"weights for model {entry.name!r}: {e}") from None
        if hub_id is None:
            looked.append(f"timm has no pretrained weights for {entry.arch!r}")
        elif hub_offline() and not hub_cached(hub_id, filenames):
            looked.append(f"hub {hub_id} (not in the local cache and HF_HUB_OFFLINE is set)")
        else:
            return WeightSource("hub", hub=hub_id)
    else:
        looked.append("hub (not allowed)")
    raise InputError(f"weights for model {entry.name!r} not found; looked at "
                     + ", ".join(looked))


def resolve_all(entries: Iterable[ModelEntry], folder: Path | str | None = None,
                allow_hub: bool = True) -> dict[str, WeightSource]:
    """Every entry's source, or one InputError line naming all that are missing."""
    sources, missing = {}, []
    for entry in entries:
        try:
            sources[entry.name] = resolve(entry, folder, allow_hub)
        except InputError as e:
            missing.append(str(e))
    if missing:
        raise InputError(f"{len(missing)} model(s) without weights: " + "; ".join(missing))
    return sources


def check_weight_file(path: Path | str) -> int:
    """Number of tensors in a weight file; InputError when it is not a state dict.

    Never unpickles code: safetensors is read by its header, anything else through
    `torch.load(weights_only=True, mmap=True)`.
    """
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors import safe_open
        try:
            with safe_open(str(path), framework="pt") as f:
                n = len(list(f.keys()))
        except Exception as e:
            raise InputError(f"{path}: not a readable safetensors file ({e})") from None
    else:
        import torch
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except Exception as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise InputError(f"{path}: not a state dict loadable with weights_only=True "
                             f"({first})") from None
        if isinstance(obj, dict):
            for key in _CHECKPOINT_KEYS:
                if isinstance(obj.get(key), dict):
                    obj = obj[key]
                    break
        if not isinstance(obj, dict) or not obj or not all(
                isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()):
            raise InputError(f"{path}: not a state dict (expected a mapping of parameter names "
                             f"to tensors, got {type(obj).__name__})")
        n = len(obj)
    if n == 0:
        raise InputError(f"{path}: an empty state dict")
    return n


class AccuracyMismatch(InputError):
    """A measured top-1 too far off the reported one, under `--strict-top1`."""


def check_reported_top1(name: str, measured: float, reported: float | None,
                        tolerance: float = 5.0, strict: bool = False) -> str | None:
    """docs/protocol.md#evaluation: a model whose measured top-1 (in %) is more than `tolerance` points off
    its reported top-1 is flagged. Returns the warning line (None when fine or nothing is
    reported); `strict` raises AccuracyMismatch instead."""
    if reported is None:
        return None
    diff = float(measured) - float(reported)
    if abs(diff) <= tolerance:
        return None
    line = (f"model {name!r}: measured top-1 {measured:.2f}% is {diff:+.2f} points off the "
            f"reported {reported:.2f}% (tolerance {tolerance:g}); check its weights, head and "
            "preprocessing")
    if strict:
        raise AccuracyMismatch(line)
    return line
