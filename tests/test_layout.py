"""The shape of the code: imports run one way, no module imports a private name of another, every
package says what it holds, and nothing points outside the repository.

An import edge goes from a module to the module it names (`from a.b import c` names `a.b.c` when
that is a submodule, else `a.b`), at any depth of the file (function-level imports count).
Importing `a.b.c` also runs `a.b`'s `__init__`; that implicit step is not an edge, or every
package that re-exports its submodules would be a cycle.
"""
import ast
import re
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


# --- units are typed, and one place decides which are done -----------------------------------

UNIT_TYPES = ROOT / "benchmark" / "units" / "unit.py"
UNIT_NAMES = {"unit", "u", "single", "soup"}       # what code calls a unit it holds


def _is_unit(node: ast.AST) -> bool:
    return ((isinstance(node, ast.Name) and node.id in UNIT_NAMES)
            or (isinstance(node, ast.Attribute) and node.attr == "unit"))


def unit_dict_reads(source: str) -> list[int]:
    """Lines that read a unit as a dict: `unit["key"]`, `unit.get("mode")`, `ctx.unit[...]`."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if (isinstance(node, ast.Subscript) and _is_unit(node.value)
                and isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str)):
            lines.append(node.lineno)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr == "get" and _is_unit(node.func.value)):
            lines.append(node.lineno)
    return sorted(lines)


def test_the_unit_dict_finder_finds_dict_reads():
    source = ('a = unit["key"]\nb = unit.get("mode") or ""\nc = ctx.unit["seed"]\n'
              'd = unit.key\ne = row["key"]\nf = units[0]\n')
    assert unit_dict_reads(source) == [1, 2, 3]


def test_units_are_read_by_attribute_outside_their_types():
    wrong = [f"{path.relative_to(ROOT)}:{line}" for name, path in MODULES.items()
             if name.split(".")[0] in ("benchmark", "pairs") and path != UNIT_TYPES
             for line in unit_dict_reads(path.read_text())]
    assert not wrong, f"units read as dicts (use the unit types' fields): {wrong}"


# SQL that reads which units have a result: only the stages may (benchmark.units.unit.Stage)
_DONE_SQL = re.compile(r"SELECT\s+(DISTINCT\s+)?(key|teacher,\s*student)\b[^;]*?"
                       r"\bFROM\s+(models|pair_stats|transfer_runs|features)\b", re.I | re.S)


def _strings(path: Path) -> list[ast.Constant]:
    return [node for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Constant) and isinstance(node.value, str)]


def test_the_done_finder_finds_done_queries():
    assert _DONE_SQL.search("SELECT key FROM transfer_runs WHERE status IN ('ok', 'diverged')")
    assert _DONE_SQL.search("SELECT DISTINCT teacher, student, compat FROM pair_stats WHERE x")
    assert not _DONE_SQL.search("SELECT model, top1, params_m FROM models WHERE dataset = ?")


def test_done_is_decided_in_one_place():
    """Pending units, a task's skipped units, `ktbench status` and the launcher's bar all ask the
    stages; no other module of the launch or the units reads the tables that mark units done,
    names the finished statuses, or looks for a unit's part file."""
    wrong = []
    for name, path in MODULES.items():
        if path == UNIT_TYPES or not name.startswith(("benchmark.launch", "benchmark.units",
                                                       "benchmark.predictors", "benchmark.cli")):
            continue
        wrong += [f"{name}:{s.lineno}: done query" for s in _strings(path)
                  if _DONE_SQL.search(s.value)]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
                values = {e.value for e in node.elts if isinstance(e, ast.Constant)}
                if {"ok", "diverged"} <= values:
                    wrong.append(f"{name}:{node.lineno}: finished statuses")
            if (isinstance(node, ast.JoinedStr) and node.values
                    and isinstance(node.values[-1], ast.Constant)
                    and node.values[-1].value == ".parquet"):
                wrong.append(f"{name}:{node.lineno}: a part file named by a key")
    assert not wrong, wrong
