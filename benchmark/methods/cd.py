"""Contrastive distillation, CD (docs/methods.md#contrastive, `CD_Dist`).

The student is split into a feature extractor (timm `forward_features` + `forward_head(
pre_logits=True)`) and its pretrained linear head; both train. Loss gamma x CE(logits) +
alpha x KL + beta x relational similarity loss between the student's and the teacher's pooled
features (`relational_cd`; compat sums it over the batch, the default divides by B).
"""
import torch.nn.functional as F

from benchmark.methods.losses import distill_kl, relational_cd
from benchmark.methods.base import TransferMethod, register_method
from benchmark.models.build import features_and_logits


@register_method
class ContrastiveDist(TransferMethod):
    name = "cd"
    references = ("teacher_features",)
    defaults = {"gamma": 0.1, "alpha": 0.0, "beta": 10.0}
    description = "CD: gamma CE + beta relational (in-batch cosine similarity) KL on features"

    def __init__(self, params, compat=None):
        super().__init__(params, compat)
        if params["alpha"]:
            self.references = ("teacher_features", "teacher")

    def forward_train(self, student, x, y, refs, idx=None):
        feats, logits = features_and_logits(student, x)
        p = self.params
        losses = {"xe": p["gamma"] * F.cross_entropy(logits, y),
                  "cd": p["beta"] * relational_cd(feats, refs["teacher_features"], self.compat)}
        if p["alpha"]:
            losses["kl"] = p["alpha"] * distill_kl(logits, refs["teacher"], T=p["T"],
                                                   compat=self.compat)
        return logits, losses, {}
