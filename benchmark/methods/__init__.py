"""Transfer methods, one small file each, registered by name (as timm registers models).

Importing this package registers the built-in methods.
"""
from benchmark.methods.base import (REFERENCES, TRAIN_DEFAULTS, SetupContext, TransferMethod,
                                    get_method, list_methods, partition_methods, reference_spec,
                                    register_method, resolve_params)
from benchmark.methods import (cd, crd, kl, kl_dp, random_teacher, self_distill,  # noqa: F401,E402
                               xe_finetune, xekl, xekl_mcl)

__all__ = ["REFERENCES", "TRAIN_DEFAULTS", "SetupContext", "TransferMethod", "get_method",
           "list_methods", "partition_methods", "reference_spec", "register_method",
           "resolve_params"]
