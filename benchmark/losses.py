"""Re-export of `benchmark.methods.losses` under its former name."""
from benchmark.methods.losses import (crd_nce_loss, distill_kl, dp_kl, dp_targets, flip_masks,
                                      gather_topk, multi_dp_targets, relational_cd, xe, xe_kl)

__all__ = ["crd_nce_loss", "distill_kl", "dp_kl", "dp_targets", "flip_masks", "gather_topk",
           "multi_dp_targets", "relational_cd", "xe", "xe_kl"]
