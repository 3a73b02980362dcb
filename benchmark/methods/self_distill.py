"""Control: self-distillation, the target is always the frozen initial student (the official
`self-dist` strategy): what training the student longer against itself does."""
from benchmark.methods.losses import distill_kl
from benchmark.methods.base import TransferMethod, register_method


@register_method
class SelfDistill(TransferMethod):
    name = "self_distill"
    references = ("frozen",)
    control = True
    description = "control: KL to the frozen initial student (no teacher)"

    def forward_train(self, student, x, y, refs, idx=None):
        logits = student(x)
        loss = distill_kl(logits, refs["frozen"], T=self.params["T"], topk=self.params["topk"],
                          compat=self.compat)
        return logits, {"kl": loss}, {}
