"""XE-KL-Dist (docs/methods.md#xe-kl): alpha x KL to the teacher + (1 - alpha) x cross-entropy,
optionally on smoothed labels (the authors' rebuttal experiment used 0.1)."""
from benchmark.methods.losses import distill_kl, xe
from benchmark.methods.base import TransferMethod, register_method


@register_method
class XEKLDist(TransferMethod):
    name = "xekl"
    defaults = {"alpha": 0.5, "label_smoothing": 0.0}
    description = ("XE-KL-Dist: alpha KL(teacher || student) + (1 - alpha) XE, labels smoothed "
                   "by label_smoothing (compat: XE on probs)")

    def __init__(self, params, compat=None):
        super().__init__(params, compat)
        # plans written before the parameter existed ran without smoothing
        self.label_smoothing = params.get("label_smoothing", 0.0)

    def forward_train(self, student, x, y, refs, idx=None):
        logits = student(x)
        alpha = self.params["alpha"]
        kl = distill_kl(logits, refs["teacher"], T=self.params["T"], topk=self.params["topk"],
                        compat=self.compat)
        return logits, {"kl": alpha * kl,
                        "xe": (1 - alpha) * xe(logits, y, self.compat, self.label_smoothing)}, {}
