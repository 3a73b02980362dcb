"""Pure transfer losses (docs/methods.md, docs/compat.md). Tensors in, scalar tensors out; no state.

Every function takes `compat=None | "fantasticgains"`. The default is the definition; compat
reproduces the released code (ExplainableML/FantasticGains) where it differs:

- `xe` / `xe_kl`: the official cross-entropy is applied to *probabilities*,
  `CrossEntropyLoss(softmax(z_s), y)`, i.e. softmax twice.
- `relational_cd` sums the per-row KL over the batch in both modes, as the official
  `SimpleContrastLoss` (`reduction='sum'`); `mean=True` divides by B instead.
- `dp_kl` with top-k: the official code gathers student, teacher *and frozen-student* logits at the
  *teacher's* top-k classes, also on samples routed to the frozen student; the default restricts
  each sample to the top-k classes of the target it is distilled from.
- `distill_kl` and `dp_targets` agree with the official code in both modes (the top-k of a KL
  against a teacher is the teacher's top-k, renormalised; masks use all classes, ties go to the
  frozen student); they take `compat` so that every loss has one signature.
"""
from typing import Sequence

import torch
import torch.nn.functional as F

from benchmark.measures.stats import check_compat

EPS_CRD = 1e-7   # Tian et al.'s NCE epsilon


def gather_topk(reference_logits: torch.Tensor, k: int | None, *others: torch.Tensor):
    """Restrict every logit tensor to the top-k classes of `reference_logits`, per row.

    k None, or k >= the number of classes, returns the tensors unchanged.
    """
    if k is None or k >= reference_logits.shape[1]:
        return (reference_logits, *others)
    idx = reference_logits.topk(k, dim=1).indices
    return tuple(t.gather(1, idx) for t in (reference_logits, *others))


def distill_kl(student_logits, teacher_logits, T: float = 1.0, topk: int | None = None,
               weights: torch.Tensor | None = None, compat=None):
    """KL(softmax(z_t/T) || softmax(z_s/T)) * T^2, summed over classes, mean over the batch
    (the official `DistillKL`: sum / B).

    `topk` first restricts both to the teacher's top-k classes (softmax renormalises over them);
    `weights` (per sample, 0/1) averages over the kept samples only (MCL's filter), giving 0 when
    none is kept (the official code's NaN replaced by 0).
    """
    check_compat(compat)
    teacher_logits, student_logits = gather_topk(teacher_logits, topk, student_logits)
    per_sample = F.kl_div(F.log_softmax(student_logits / T, dim=1),
                          F.log_softmax(teacher_logits / T, dim=1),
                          reduction="none", log_target=True).sum(1) * T * T
    if weights is None:
        return per_sample.mean()
    weights = weights.to(per_sample.dtype)
    return (per_sample * weights).sum() / weights.sum().clamp_min(1)


def xe(student_logits, labels, compat=None, label_smoothing: float = 0.0):
    """Cross-entropy of the student on the labels, mean over the batch.

    `label_smoothing` a: the target is (1 - a) one-hot(y) + a / C (torch's `label_smoothing`).
    compat="fantasticgains": `CrossEntropyLoss(softmax(z_s), y)`, the official XE on
    probabilities (so log_softmax(softmax(z_s)) is what is scored); the official smoothing
    mixes those probabilities instead, (1 - a) softmax(z_s) + a / C, before the same loss.
    """
    check_compat(compat)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
    if compat:
        probs = student_logits.softmax(1)
        if label_smoothing:
            probs = (1 - label_smoothing) * probs + label_smoothing / probs.shape[1]
        return F.cross_entropy(probs, labels)
    return F.cross_entropy(student_logits, labels, label_smoothing=label_smoothing)


def xe_kl(student_logits, teacher_logits, labels, alpha: float, T: float = 1.0,
          topk: int | None = None, weights: torch.Tensor | None = None, compat=None,
          label_smoothing: float = 0.0):
    """XE-KL-Dist (docs/methods.md#xe-kl): alpha * KL + (1 - alpha) * XE.

    The KL takes `T`, `topk` and `weights` as `distill_kl`; the XE always uses all classes, with
    `label_smoothing` as `xe`.
    """
    kl = distill_kl(student_logits, teacher_logits, T=T, topk=topk, weights=weights, compat=compat)
    return alpha * kl + (1 - alpha) * xe(student_logits, labels, compat, label_smoothing)


def flip_masks(student_logits, teacher_logits, labels):
    """The official `get_flip_masks`: (positive, negative, neutral) boolean masks per sample.

    positive: teacher right and student wrong; negative: teacher wrong and student right.
    """
    s_right = student_logits.argmax(1) == labels
    t_right = teacher_logits.argmax(1) == labels
    pos = t_right & ~s_right
    neg = ~t_right & s_right
    return pos, neg, ~(pos | neg)


def multi_dp_targets(teacher_logits: Sequence[torch.Tensor], frozen_logits, labels=None):
    """Data partitioning over several teachers (docs/methods.md#multi-teacher, parallel): per sample, the logits
    of the most confident source among the frozen student and the teachers.

    Supervised (labels given): confidence in the true class; unsupervised: max softmax. A tie
    goes to the earlier source (the frozen student first, then the teachers in order), as
    `torch.argmax` over [frozen, t_1, ..., t_K] in the official code.
    Returns (target_logits, source) with source -1 for the frozen student, else the teacher index.
    """
    stacked = torch.stack([frozen_logits, *teacher_logits])          # [1 + K, B, C]
    probs = stacked.softmax(2)
    if labels is None:
        confidence = probs.amax(2)
    else:
        idx = labels.view(1, -1, 1).expand(len(stacked), -1, 1)
        confidence = probs.gather(2, idx).squeeze(2)
    # first maximum, whatever torch.argmax does with ties on this device
    best = confidence.max(0, keepdim=True).values
    first = (confidence == best).float().argmax(0)
    target = stacked.gather(0, first.view(1, -1, 1).expand(1, -1, stacked.shape[2])).squeeze(0)
    return target, first - 1


def dp_targets(teacher_logits, frozen_logits, labels=None, compat=None):
    """Data partitioning (docs/methods.md#kl-dp): per sample, the teacher's logits where it is the more
    confident of teacher and frozen initial student, else the frozen student's.

    Supervised (labels given): confidence in the true class; unsupervised: max softmax.
    Softmax over all classes at T = 1; strict comparison, so ties go to the frozen student (the
    same in both modes). Returns (target_logits, teacher_mask).
    """
    check_compat(compat)
    target, source = multi_dp_targets([teacher_logits], frozen_logits, labels)
    return target, source == 0


def dp_kl(student_logits, teacher_logits, frozen_logits, labels=None, T: float = 1.0,
          topk: int | None = None, compat=None):
    """KL + DP loss: `distill_kl` against `dp_targets`. Returns (loss, teacher_mask).

    Top-k: by default each sample keeps the top-k classes of the target it is distilled from;
    compat="fantasticgains" gathers every model at the teacher's top-k (official quirk).
    """
    check_compat(compat)
    target, mask = dp_targets(teacher_logits, frozen_logits, labels)
    if compat and topk is not None and topk < teacher_logits.shape[1]:
        t, s, f = gather_topk(teacher_logits, topk, student_logits, frozen_logits)
        return distill_kl(s, torch.where(mask.unsqueeze(1), t, f), T=T), mask
    return distill_kl(student_logits, target, T=T, topk=topk), mask


def relational_cd(student_feats, teacher_feats, compat=None, mean: bool = False):
    """Contrastive distillation's relational loss (docs/methods.md#contrastive, `SimpleContrastLoss`).

    Rows are L2-normalised; S = f_s f_s^T and T = f_t f_t^T (B x B cosine similarities, no
    temperature, diagonal included); loss = sum over rows i of KL(softmax(T_i) || softmax(S_i)),
    summed over the batch as the official `reduction='sum'` (both modes), or divided by B with
    `mean=True`. Student and teacher feature widths may differ.
    """
    check_compat(compat)
    fs = F.normalize(student_feats.float(), dim=1)
    ft = F.normalize(teacher_feats.float(), dim=1)
    log_s = F.log_softmax(fs @ fs.T, dim=1)
    log_t = F.log_softmax(ft @ ft.T, dim=1)
    total = F.kl_div(log_s, log_t, log_target=True, reduction="sum")
    return total / len(fs) if mean else total


def crd_nce_loss(scores, n_data: int):
    """CRD's NCE loss (Tian et al., eq. 18; the official `ContrastLoss`) for one anchor side.

    scores: [B, 1 + K] normalised exp-similarities, column 0 the positive, 1..K the negatives;
    the noise distribution is uniform over `n_data` samples. Mean over the batch.
    """
    m = scores.shape[1] - 1
    pn = m / float(n_data)
    log_d1 = torch.log(scores[:, 0] / (scores[:, 0] + pn + EPS_CRD))
    log_d0 = torch.log(pn / (scores[:, 1:] + pn + EPS_CRD))
    return -(log_d1.sum() + log_d0.sum()) / scores.shape[0]
