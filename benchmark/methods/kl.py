"""KL-Dist (docs/methods.md#kl): the student matches the teacher's softened distribution everywhere."""
from benchmark.methods.losses import distill_kl
from benchmark.methods.base import TransferMethod, register_method


@register_method
class KLDist(TransferMethod):
    name = "kl"
    description = "KL-Dist: KL(teacher || student) on every sample (alpha 1)"

    def forward_train(self, student, x, y, refs, idx=None):
        logits = student(x)
        loss = distill_kl(logits, refs["teacher"], T=self.params["T"], topk=self.params["topk"],
                          compat=self.compat)
        return logits, {"kl": loss}, {}
