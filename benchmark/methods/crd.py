"""Contrastive representation distillation, CRD (docs/methods.md#contrastive, `CRD_Dist`; Tian et al. 2020).

Student and teacher pooled features are embedded (linear, feat_dim, L2-normalised; both embeddings
train with the student) and contrasted against a memory bank of every transfer sample's past
embeddings: per sample, its own slot is the positive and nce_k slots of samples of *other
classes*, drawn with replacement, are the negatives (the official `get_contrast_idx`). Scores
exp(v . m / nce_t) are normalised by a constant Z fixed on the first batch; the memory slots of
the batch move towards the new embeddings with momentum nce_m. Loss gamma x CE + alpha x KL at
T (kd_T) + beta x (NCE loss of the student side + of the teacher side).

On small data nce_k is capped at the smallest number of other-class samples (a class's negative
pool), so a micro-zoo run never draws more negatives than there are distinct candidates; on
ImageNet-sized data 4096 stands. The memory bank, Z and the embeddings are method state, saved
in checkpoints; negatives are drawn from torch's global generator, which the trainer saves too.
"""
import math

import torch
import torch.nn.functional as F

from benchmark.methods.losses import crd_nce_loss, distill_kl
from benchmark.methods.base import TransferMethod, register_method
from benchmark.models.build import features_and_logits


class CRDModule(torch.nn.Module):
    """Embeddings, memory bank and normalisers (the official `CRDLoss` + `ContrastMemory`)."""

    def __init__(self, s_dim: int, t_dim: int, feat_dim: int, n_data: int, nce_t: float,
                 nce_m: float):
        super().__init__()
        self.embed_s = torch.nn.Linear(s_dim, feat_dim)
        self.embed_t = torch.nn.Linear(t_dim, feat_dim)
        self.n_data, self.nce_t, self.nce_m = n_data, nce_t, nce_m
        stdv = 1.0 / math.sqrt(feat_dim / 3)
        self.register_buffer("memory_s", torch.rand(n_data, feat_dim) * 2 * stdv - stdv)
        self.register_buffer("memory_t", torch.rand(n_data, feat_dim) * 2 * stdv - stdv)
        self.register_buffer("z", torch.full((2,), -1.0))     # Z_s, Z_t: set on the first batch

    def forward(self, f_s, f_t, idx, contrast_idx):
        v_s = F.normalize(self.embed_s(f_s), dim=1)
        v_t = F.normalize(self.embed_t(f_t), dim=1)
        # student-anchored scores against the teacher memory, and the reverse
        out_s = torch.exp(self.scores(self.memory_t, v_s, contrast_idx) / self.nce_t)
        out_t = torch.exp(self.scores(self.memory_s, v_t, contrast_idx) / self.nce_t)
        with torch.no_grad():
            if self.z[0] < 0:
                self.z[0] = out_s.mean() * self.n_data
            if self.z[1] < 0:
                self.z[1] = out_t.mean() * self.n_data
            for memory, v in ((self.memory_s, v_s), (self.memory_t, v_t)):
                moved = memory[idx] * self.nce_m + v.detach() * (1 - self.nce_m)
                memory[idx] = F.normalize(moved, dim=1)
        loss_s = crd_nce_loss(out_s / self.z[0], self.n_data)
        loss_t = crd_nce_loss(out_t / self.z[1], self.n_data)
        return loss_s + loss_t

    @staticmethod
    def scores(memory, v, contrast_idx):
        """[B, 1 + K] dot products of each v with its memory slots: by gathering the [B, 1 + K, D]
        slots (the official way), or, for a bank of at most 8x the slots drawn (small data),
        by one matmul against a copy of the whole bank and picking the slots: the same numbers,
        about 25x faster on a CPU. A copy, because autograd keeps the matrix for backward and
        the bank is updated in place before that."""
        if memory.shape[0] <= 8 * contrast_idx.shape[1]:
            return (v @ memory.clone().T).gather(1, contrast_idx)
        return torch.bmm(memory[contrast_idx], v.unsqueeze(2)).squeeze(2)


@register_method
class CRDDist(TransferMethod):
    name = "crd"
    references = ("teacher_features",)
    defaults = {"gamma": 1.0, "alpha": 0.0, "beta": 0.8, "T": 4.0, "feat_dim": 128,
                "nce_k": 4096, "nce_t": 0.07, "nce_m": 0.5}
    description = "CRD: gamma CE + beta NCE against a memory bank of other-class negatives"

    def __init__(self, params, compat=None):
        super().__init__(params, compat)
        if params["alpha"]:
            self.references = ("teacher_features", "teacher")

    def setup(self, student, context):
        p = self.params
        y = context.train_y.cpu()
        self.negatives = [(y != c).nonzero().squeeze(1) for c in range(context.num_classes)]
        smallest = min((len(n) for n in self.negatives if len(n)), default=1)
        self.nce_k = max(1, min(p["nce_k"], smallest))
        self.module = CRDModule(student.get_classifier().in_features,
                                context.ref_dims["teacher_features"], p["feat_dim"], len(y),
                                p["nce_t"], p["nce_m"]).to(context.device)

    def parameters(self):
        return list(self.module.parameters())

    def contrast_idx(self, idx, y):
        """[B, 1 + nce_k] on idx's device: each sample's own index, then negatives of other
        classes (drawn on the CPU from torch's global generator, whatever the device)."""
        y = y.cpu()
        out = torch.empty(len(idx), 1 + self.nce_k, dtype=torch.long)
        out[:, 0] = idx.cpu()
        for c in y.unique().tolist():
            rows = (y == c).nonzero().squeeze(1)
            pool = self.negatives[c]
            out[rows, 1:] = pool[torch.randint(len(pool), (len(rows), self.nce_k))]
        return out.to(idx.device)

    def forward_train(self, student, x, y, refs, idx=None):
        feats, logits = features_and_logits(student, x)
        p = self.params
        crd = self.module(feats, refs["teacher_features"], idx, self.contrast_idx(idx, y))
        losses = {"xe": p["gamma"] * F.cross_entropy(logits, y), "crd": p["beta"] * crd}
        if p["alpha"]:
            losses["kl"] = p["alpha"] * distill_kl(logits, refs["teacher"], T=p["T"],
                                                   compat=self.compat)
        return logits, losses, {}

    def state_dict(self):
        return {"module": self.module.state_dict()}

    def load_state_dict(self, state):
        self.module.load_state_dict(state["module"])
