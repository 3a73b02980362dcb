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


FACES = {name: path for name, path in MODULES.items() if path.name == "__init__.py"}
# faces that register built-ins on import stay eager whatever they load (results.lazy's rule)
REGISTERING_HEAVY_FACES = {"benchmark.data", "benchmark.methods"}


def _module_level_names(path: Path) -> set[str]:
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
    return names


def _declared_all(path: Path) -> list[str]:
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and isinstance(node.value, ast.List):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if [getattr(t, "id", "") for t in targets] == ["__all__"]:
                return [ast.literal_eval(e) for e in node.value.elts]
    return []


def test_every_face_declares_all_and_each_name_exists():
    """An eager face lists `__all__` and defines each name in it; a lazy one names its names as
    TYPE_CHECKING imports (results.lazy), each defined in the module it names."""
    from results.lazy import typed_names
    silent, missing = [], []
    for face, path in FACES.items():
        declared = _module_level_names(path)
        if "__all__" not in declared:
            silent.append(face)
        typed = typed_names(str(path))
        names = typed or {n: face for n in _declared_all(path)}
        missing += [f"{face}.{n} (from {m})" for n, m in names.items()
                    if n not in _module_level_names(MODULES[m])]
    assert not silent, f"faces without __all__: {silent}"
    assert not missing, missing


def test_faces_load_lazily_only_where_torch_or_pandas_would_load():
    """Importing every face but the registering heavy ones loads neither torch nor pandas: the
    eager faces are light, the lazy ones defer their heavy names."""
    import subprocess
    import sys
    light = sorted(set(FACES) - REGISTERING_HEAVY_FACES
                   - {f for f in FACES for h in REGISTERING_HEAVY_FACES if f.startswith(h + ".")})
    code = "".join(f"import {f}\n" for f in light) + (
        "import sys\nprint(sorted({'torch', 'pandas'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=ROOT).stdout
    assert out.strip() == "[]", out
    lazy = sorted(f for f, p in FACES.items() if "lazy_exports" in p.read_text())
    assert {"analysis", "benchmark.units", "benchmark.launch"} <= set(lazy)


def _shim(path: Path) -> bool:
    """A module that only re-exports: docstring, imports and `__all__`, nothing of its own."""
    body = ast.parse(path.read_text()).body
    own = [n for n in body if not (isinstance(n, (ast.Import, ast.ImportFrom))
                                   or isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)
                                   or isinstance(n, ast.Assign)
                                   and [getattr(t, "id", "") for t in n.targets] == ["__all__"])]
    return not own and any(isinstance(n, ast.ImportFrom) for n in body)


def test_no_re_export_shims():
    assert _shim(ROOT / "benchmark" / "models" / "__init__.py") is False   # lazy: has its own
    shims = [m for m, p in MODULES.items() if p.name != "__init__.py" and _shim(p)]
    assert not shims, shims


def test_perf_does_not_import_the_command_line():
    wrong = sorted(f"{m} -> {t}" for m, targets in import_graph().items()
                   if m.startswith("benchmark.perf") for t in targets
                   if t.startswith("benchmark.cli"))
    assert not wrong, wrong


def test_the_command_line_has_one_except_clause_at_its_boundary():
    """`main` catches `InputError` alone, so any other exception is a bug with its traceback;
    no other command-line module swallows every error or bad input itself."""
    trees = {m: ast.parse(p.read_text()) for m, p in MODULES.items()
             if m.startswith("benchmark.cli")}
    handlers = {m: [n for n in ast.walk(tree) if isinstance(n, ast.ExceptHandler)]
                for m, tree in trees.items()}
    (boundary,) = handlers["benchmark.cli.main"]
    assert ast.unparse(boundary.type) == "InputError"
    main = next(n for n in trees["benchmark.cli.main"].body
                if isinstance(n, ast.FunctionDef) and n.name == "main")
    assert boundary in list(ast.walk(main))
    broad = [f"{m}:{h.lineno}" for m, found in handlers.items() if m != "benchmark.cli.main"
             for h in found if h.type is None
             or {"Exception", "BaseException", "InputError"} & {
                 getattr(n, "id", "") for n in ast.walk(h.type)}]
    assert not broad, broad
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
