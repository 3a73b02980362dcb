"""The shape of the code: imports run one way, no module imports a private name of another, every
package says what it holds, and nothing points outside the repository.

An import edge goes from a module to the module it names (`from a.b import c` names `a.b.c` when
that is a submodule, else `a.b`), at any depth of the file (function-level imports count).
Importing `a.b.c` also runs `a.b`'s `__init__`; that implicit step is not an edge, or every
package that re-exports its submodules would be a cycle.
"""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("pairs", "benchmark", "results", "analysis")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module named, names taken from it) for every import statement in the file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, [alias.name for alias in node.names]))
    return found


def import_graph() -> dict[str, set[str]]:
    graph = {name: set() for name in MODULES}
    for name, path in MODULES.items():
        for module, names in _imports(path):
            if module.split(".")[0] not in PACKAGES:
                continue
            subs = {f"{module}.{n}" for n in names if f"{module}.{n}" in MODULES}
            if names and len(subs) < len(names):
                subs.add(module)           # names that are not submodules come from `module`
            graph[name] |= subs or {module}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module, or a module importing itself
    (Tarjan's algorithm)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph.get(v, ()):
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_cycles():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"a"}}) == [["a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    found = cycles(import_graph())
    assert not found, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in found)


@pytest.mark.parametrize("lower, upper", [("analysis", "benchmark"), ("results", "benchmark"),
                                          ("pairs", "benchmark"), ("results", "analysis"),
                                          ("pairs", "analysis")])
def test_data_flows_one_way(lower, upper):
    wrong = sorted(f"{m} -> {t}" for m, targets in import_graph().items()
                   if m.split(".")[0] == lower for t in targets if t.split(".")[0] == upper)
    assert not wrong, f"{lower} must not import {upper}: {wrong}"


def test_only_the_command_line_imports_analysis_from_benchmark():
    wrong = sorted(f"{m} -> {t}" for m, targets in import_graph().items()
                   if m.startswith("benchmark.") and not m.startswith("benchmark.cli")
                   for t in targets if t.startswith("analysis"))
    assert not wrong


def test_no_private_name_imported_from_another_module():
    wrong = [f"{name}: from {module} import {n}" for name, path in MODULES.items()
             for module, names in _imports(path) if module.split(".")[0] in PACKAGES
             for n in names if n.startswith("_") and not n.startswith("__")]
    assert not wrong, wrong


def test_every_package_says_what_it_holds():
    packages = [p for p in MODULES.values() if p.name == "__init__.py"]
    assert len(packages) >= 12
    silent = [str(p.relative_to(ROOT)) for p in packages
              if not ast.get_docstring(ast.parse(p.read_text()))]
    assert not silent, silent


def test_nothing_points_outside_the_repository():
    files = [p for pattern in ("*.py", "*.sql", "*.md", "*.toml")
             for p in ROOT.rglob(pattern)
             if not {".venv", ".git", "build"} & set(p.relative_to(ROOT).parts)]
    outside = [str(p.relative_to(ROOT)) for p in files
               if any(s in p.read_text(errors="replace") for s in ("paper" + ".md", "../" + "shared"))]
    assert not outside, outside
