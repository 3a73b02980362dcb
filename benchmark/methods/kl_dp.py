"""KL-Dist + data partitioning (docs/methods.md#kl-dp), supervised and unsupervised.

Each sample is distilled from whichever of the teacher and the frozen initial student is the
more confident, so the student learns the teacher's complementary knowledge and keeps its own.
"""
from benchmark.methods.losses import dp_kl
from benchmark.methods.base import TransferMethod, register_method


@register_method
class KLDataPartition(TransferMethod):
    name = "kl_dp"
    references = ("teacher", "frozen")
    description = "KL + DP: teacher where its true-class probability beats the frozen student's"
    partitions_data = True
    supervised = True

    def forward_train(self, student, x, y, refs, idx=None):
        logits = student(x)
        loss, teacher_mask = dp_kl(logits, refs["teacher"], refs["frozen"],
                                   y if self.supervised else None, T=self.params["T"],
                                   topk=self.params["topk"], compat=self.compat)
        return logits, {"kl": loss}, {"teacher_input": 100.0 * teacher_mask.float().mean()}


@register_method
class KLDataPartitionUnsupervised(KLDataPartition):
    name = "kl_dp_unsup"
    description = "KL + DP, unsupervised: teacher where its max softmax beats the frozen student's"
    supervised = False
