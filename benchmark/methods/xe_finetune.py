"""Control: plain cross-entropy fine-tuning with the same optimiser and budget, no teacher. An
undertrained student gains from this alone; a method's gain counts only beyond it."""
import torch.nn.functional as F

from benchmark.methods.base import TransferMethod, register_method


@register_method
class XEFinetune(TransferMethod):
    name = "xe_finetune"
    references = ()
    control = True
    description = "control: cross-entropy fine-tuning on the labels (no teacher)"

    def forward_train(self, student, x, y, refs, idx=None):
        logits = student(x)
        return logits, {"xe": F.cross_entropy(logits, y)}, {}
