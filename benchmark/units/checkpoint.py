"""Where a transfer unit keeps its state: the per-epoch checkpoint it resumes from and the final
student it keeps; both written atomically."""
from pathlib import Path

import torch
from safetensors.torch import save

from results.layout import ResultsLayout
from results.store import atomic_path


def checkpoint_path(results_dir, key: str) -> Path:
    return ResultsLayout(results_dir).checkpoint(key)


def student_path(results_dir, key: str) -> Path:
    """The final student weights of a unit that keeps them (safetensors)."""
    return ResultsLayout(results_dir).student(key)


def kept_bytes(results_dir, key: str, checkpoint: bool = True) -> int:
    """Bytes a unit keeps on disk beside its rows: its student, and its checkpoint (a failed
    unit's, which a retry resumes from)."""
    paths = [student_path(results_dir, key)] + [checkpoint_path(results_dir, key)] * checkpoint
    return sum(p.stat().st_size for p in paths if p.is_file())


def save_checkpoint(path: Path, state: dict):
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def save_student(path: Path, model: torch.nn.Module):
    with atomic_path(path) as tmp:
        tmp.write_bytes(save({k: v.detach().contiguous().clone() for k, v in
                              model.state_dict().items()}))
