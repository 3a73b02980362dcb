"""XE-KL-Dist (docs/methods.md#xe-kl): alpha x KL to the teacher + (1 - alpha) x cross-entropy."""
from benchmark.methods.losses import distill_kl, xe
from benchmark.methods.base import TransferMethod, register_method


@register_method
class XEKLDist(TransferMethod):
    name = "xekl"
    defaults = {"alpha": 0.5}
    description = "XE-KL-Dist: alpha KL(teacher || student) + (1 - alpha) XE (compat: XE on probs)"

    def forward_train(self, student, x, y, refs, idx=None):
        logits = student(x)
        alpha = self.params["alpha"]
        kl = distill_kl(logits, refs["teacher"], T=self.params["T"], topk=self.params["topk"],
                        compat=self.compat)
        return logits, {"kl": alpha * kl, "xe": (1 - alpha) * xe(logits, y, self.compat)}, {}
