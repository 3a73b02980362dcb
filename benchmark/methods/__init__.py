"""Transfer methods, one small file each, registered by name (as timm registers models).

Importing this package registers the built-in methods.
"""
from benchmark.methods.base import (TRAIN_DEFAULTS, TransferMethod, get_method, list_methods,
                                    register_method, resolve_params)
from benchmark.methods import kl, kl_dp  # noqa: F401,E402  (registration)

__all__ = ["TRAIN_DEFAULTS", "TransferMethod", "get_method", "list_methods", "register_method",
           "resolve_params"]
