"""Package faces that load their names on first use (PEP 562), and the one rule for when a face
does: a face imports its names eagerly unless that would load torch or pandas, which a caller of
one light name (the command line's parser, `ktbench query`) must not pay for; then its names load
on first use. A package that registers built-ins on import (datasets, methods, zoos, strategies)
stays eager whatever it loads, so that its registry is full whenever one of its names is used.

A lazy face names its public names once, as imports under `if TYPE_CHECKING:` (type checkers and
editors read them there); `lazy_exports` reads that block and loads each name from its module
on first use.

Here, in the package every other one imports, so that `pairs`, `benchmark`, `results` and
`analysis` share it while imports keep running one way.
"""
import ast
import importlib


def typed_names(face_file: str) -> dict[str, str]:
    """{name: module} of the imports under the face's `if TYPE_CHECKING:`."""
    with open(face_file) as f:
        tree = ast.parse(f.read(), face_file)
    return {alias.asname or alias.name: node.module
            for block in tree.body
            if isinstance(block, ast.If) and getattr(block.test, "id", "") == "TYPE_CHECKING"
            for node in block.body if isinstance(node, ast.ImportFrom)
            for alias in node.names}


def lazy_exports(package: str, face_file: str):
    """(`__getattr__`, `__all__`) of the face `package` (its `__init__.py` is `face_file`): the
    getattr imports a name's module on first access of the name and returns its attribute."""
    names = typed_names(face_file)

    def __getattr__(name):
        if name in names:
            return getattr(importlib.import_module(names[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    return __getattr__, sorted(names)
