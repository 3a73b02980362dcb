"""Pure transfer losses (paper.md 2 and 7). Logits in, scalar tensors out; no state.

`compat="fantasticgains"` reproduces the official code where it differs from the definitions.
"""
import torch
import torch.nn.functional as F

COMPAT_MODES = (None, "fantasticgains")


def check_compat(compat):
    if compat not in COMPAT_MODES:
        raise ValueError(f"unknown compat mode {compat!r}; use one of {COMPAT_MODES}")


def gather_topk(teacher_logits: torch.Tensor, k: int | None, *others: torch.Tensor):
    """Restrict every logit tensor to the teacher's top-k classes (the official KL top-k)."""
    if k is None or k >= teacher_logits.shape[1]:
        return (teacher_logits, *others)
    idx = teacher_logits.topk(k, dim=1).indices
    return tuple(t.gather(1, idx) for t in (teacher_logits, *others))


def distill_kl(student_logits, teacher_logits, T: float = 1.0, topk: int | None = None,
               weights: torch.Tensor | None = None):
    """KL(softmax(z_t/T) || softmax(z_s/T)) * T^2, summed over classes, mean over the batch.

    `topk` first restricts both to the teacher's top-k classes; `weights` (per sample, 0/1)
    averages over the kept samples only (MCL's filter), giving 0 when none is kept.
    """
    teacher_logits, student_logits = gather_topk(teacher_logits, topk, student_logits)
    per_sample = F.kl_div(F.log_softmax(student_logits / T, dim=1),
                          F.log_softmax(teacher_logits / T, dim=1),
                          reduction="none", log_target=True).sum(1) * T * T
    if weights is None:
        return per_sample.mean()
    kept = weights.sum()
    return (per_sample * weights).sum() / kept.clamp_min(1)


def dp_targets(teacher_logits, frozen_logits, labels=None):
    """Data partitioning (paper.md 2.5): per sample, the teacher's logits where it is the more
    confident of teacher and frozen initial student, else the frozen student's.

    Supervised (labels given): confidence in the true class; unsupervised: max softmax.
    Strict comparison, so ties go to the frozen student. Returns (target_logits, teacher_mask).
    """
    p_t = teacher_logits.softmax(1)
    p_f = frozen_logits.softmax(1)
    if labels is None:
        teacher_mask = p_t.amax(1) > p_f.amax(1)
    else:
        idx = labels.view(-1, 1)
        teacher_mask = p_t.gather(1, idx).squeeze(1) > p_f.gather(1, idx).squeeze(1)
    target = torch.where(teacher_mask.unsqueeze(1), teacher_logits, frozen_logits)
    return target, teacher_mask
