"""Contrastive distillation, CD (docs/methods.md#contrastive, `CD_Dist`).

The student is split into a feature extractor (timm `forward_features` + `forward_head(
pre_logits=True)`) and its pretrained linear head; both train. Loss gamma x CE(logits) +
alpha x KL + beta x relational similarity loss between the student's and the teacher's pooled
features (`relational_cd`), summed over the batch as the authors' loss is, so beta = 10 weighs
it as theirs; `relational_mean: true` divides it by B.
"""
import torch.nn.functional as F

from benchmark.methods.losses import distill_kl, relational_cd
from benchmark.methods.base import TransferMethod, register_method
from benchmark.models.build import features_and_logits


@register_method
class ContrastiveDist(TransferMethod):
    name = "cd"
    references = ("teacher_features",)
    defaults = {"gamma": 0.1, "alpha": 0.0, "beta": 10.0, "relational_mean": False}
    description = ("CD: gamma CE + beta relational (in-batch cosine similarity) KL on features, "
                   "summed over the batch")

    def __init__(self, params, compat=None):
        super().__init__(params, compat)
        if params["alpha"]:
            self.references = ("teacher_features", "teacher")
        # plans written before the parameter existed ran the mean by default, the sum in compat
        self.relational_mean = params.get("relational_mean", compat is None)

    def forward_train(self, student, x, y, refs, idx=None):
        feats, logits = features_and_logits(student, x)
        p = self.params
        relational = relational_cd(feats, refs["teacher_features"], self.compat,
                                   mean=self.relational_mean)
        losses = {"xe": p["gamma"] * F.cross_entropy(logits, y), "cd": p["beta"] * relational}
        if p["alpha"]:
            losses["kl"] = p["alpha"] * distill_kl(logits, refs["teacher"], T=p["T"],
                                                   compat=self.compat)
        return logits, losses, {}
