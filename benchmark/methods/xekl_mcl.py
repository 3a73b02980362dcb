"""XE-KL-Dist + MCL (docs/methods.md#xe-kl-mcl): momentum weight interpolation (Stojanovski et al.).

Loss alpha x KL + (1 - alpha) x XE, the KL only on samples that are not negative flips of the
*adapting* student (it is right, the teacher wrong), averaged over the samples kept, on the
teacher's top-k classes (k = 100 on ImageNet; capped at the number of classes). Slow weights
theta_slow <- tau theta_slow + (1 - tau) theta every N optimiser steps, every state_dict entry
(buffers too); evaluation always uses theta_slow while the fast weights keep training.

Default: theta_slow starts as a copy of the initial student; it is updated after every N-th
step of the run (steps counted across epochs); integer buffers follow the fast weights; the
evaluated model is a copy holding theta_slow, so the fast weights are untouched.
compat="fantasticgains" (docs/compat.md): XE on probabilities; the update runs when the batch index
*within the epoch* j satisfies j % N == 0 (j = 0 included); theta_slow = student.state_dict()
shares memory with the live weights until its first update (so it really starts after step 0),
and every entry is interpolated (integer buffers as floats); evaluation loads theta_slow into
the student itself and the "restore" does nothing, so training continues from the slow weights.
The released code's scaling of lr and N by batch_size / 256 is not applied in either mode (the
runs behind the published results did not have it); set lr and N in the plan.
Slow weights are part of the method state, so a resumed run ends exactly as an uninterrupted one.
"""
import copy

import torch

from benchmark.methods.losses import distill_kl, flip_masks, xe
from benchmark.methods.base import TransferMethod, register_method


@register_method
class XEKLMCL(TransferMethod):
    name = "xekl_mcl"
    defaults = {"alpha": 0.68, "lr": 0.01, "tau": 0.9999, "N": 2, "topk": 100}
    description = ("XE-KL-Dist + MCL: KL off negative flips, slow weights tau every N steps, "
                   "evaluated with the slow weights")

    def setup(self, student, context):
        if self.compat:
            self.slow = student.state_dict()          # official: shares the live tensors
        else:
            self.slow = {k: v.detach().clone() for k, v in student.state_dict().items()}

    def forward_train(self, student, x, y, refs, idx=None):
        logits = student(x)
        teacher = refs["teacher"]
        _, negative, _ = flip_masks(logits.detach(), teacher, y)
        alpha = self.params["alpha"]
        kl = distill_kl(logits, teacher, T=self.params["T"], topk=self.params["topk"],
                        weights=(~negative).float(), compat=self.compat)
        return (logits, {"kl": alpha * kl, "xe": (1 - alpha) * xe(logits, y, self.compat)},
                {"kept": 100.0 * (~negative).float().mean()})

    def after_step(self, student, step, batch):
        n = self.params["N"]
        if (batch % n != 0) if self.compat else ((step + 1) % n != 0):
            return
        tau = self.params["tau"]
        with torch.no_grad():
            for key, fast in student.state_dict().items():
                if self.compat or fast.is_floating_point():
                    self.slow[key] = tau * self.slow[key] + (1 - tau) * fast
                else:
                    self.slow[key] = fast.clone()

    def eval_model(self, student):
        if self.compat:
            student.load_state_dict(self.slow)
            return student
        model = copy.deepcopy(student)
        model.load_state_dict(self.slow)
        return model

    def state_dict(self):
        return {"slow": self.slow}

    def load_state_dict(self, state):
        # onto the live weights' device: checkpoints are read onto the CPU
        self.slow = {k: v.to(self.slow[k].device) for k, v in state["slow"].items()}
