"""Control: a randomly initialised teacher ("Random Teachers are Good Teachers").

The teacher's architecture, initialised from the unit's seed (`pretrained=False`), distilled
with KL (or KL + DP with `dp: true`) under the same optimiser and budget: what a student gains
from distillation that carries no knowledge.
"""
from benchmark.methods.losses import distill_kl, dp_kl
from benchmark.methods.base import TransferMethod, register_method


@register_method
class RandomTeacher(TransferMethod):
    name = "random_teacher"
    references = ("random_teacher",)
    defaults = {"dp": False}
    control = True
    description = "control: KL (or KL + DP) from the teacher's architecture, randomly initialised"

    def __init__(self, params, compat=None):
        super().__init__(params, compat)
        if params["dp"]:
            self.references = ("random_teacher", "frozen")

    def forward_train(self, student, x, y, refs, idx=None):
        logits = student(x)
        p = self.params
        if p["dp"]:
            loss, mask = dp_kl(logits, refs["random_teacher"], refs["frozen"], y, T=p["T"],
                               topk=p["topk"], compat=self.compat)
            return logits, {"kl": loss}, {"teacher_input": 100.0 * mask.float().mean()}
        loss = distill_kl(logits, refs["random_teacher"], T=p["T"], topk=p["topk"],
                          compat=self.compat)
        return logits, {"kl": loss}, {}
