"""Package names that load on first use (PEP 562), so that importing a light module of a heavy
package (the command line's argument declarations, say) does not import torch or pandas.

Here, in the package every other one imports, so that `pairs`, `benchmark`, `results` and
`analysis` share it while imports keep running one way.
"""
import importlib


def lazy_exports(package: str, names: dict[str, str]):
    """A module `__getattr__` for `package` that imports `names[name]` (a submodule) on first
    access of `name` and returns its attribute of that name."""
    def __getattr__(name):
        if name in names:
            return getattr(importlib.import_module(f"{package}.{names[name]}"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    return __getattr__
