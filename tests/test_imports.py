"""No import cycle anywhere in the `ioa` package.

Every module is parsed (never imported) and every import it makes is an edge, wherever it is written:
at the top, inside a function (the lazy imports that keep torch out of a light command), or under
`if TYPE_CHECKING:`. Importing `ioa.a.b` also runs the package `ioa/a/__init__.py`, so that is an edge
too, except from modules inside `ioa.a` (their package is already being imported).
"""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "ioa"


def module_name(path: Path, root: Path = PACKAGE) -> str:
    parts = (root.name,) + path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_names(tree: ast.AST, module: str, is_package: bool) -> set[str]:
    """Dotted names of what the module imports from anywhere (candidates: modules or names inside them)."""
    package = module if is_package else module.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: `.` is the module's package, `..` its parent, ...
                base = package.rsplit(".", node.level - 1)[0]
                source = f"{base}.{node.module}" if node.module else base
            else:
                source = node.module or ""
            out.add(source)
            out.update(f"{source}.{alias.name}" for alias in node.names)  # `from pkg import module`
    return out


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    """Module -> the package's modules it imports (parent packages included, see the module docstring)."""
    files = {module_name(p, root): p for p in sorted(root.rglob("*.py"))}
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        names = imported_names(ast.parse(path.read_text(), str(path)), module, path.name == "__init__.py")
        targets = {n for n in names if n in files}
        targets |= {".".join(t.split(".")[:i]) for t in targets for i in range(1, t.count(".") + 1)}
        graph[module] = {t for t in targets if not (module == t or module.startswith(t + "."))}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (as a path that returns to its start) per strongly connected component that has one."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's algorithm; the package is small enough for recursion
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(path_back(graph, v, component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def path_back(graph: dict[str, set[str]], start: str, within: set[str]) -> list[str]:
    """The shortest path from `start` back to itself inside one strongly connected component."""
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        reached = []
        for v in frontier:
            for w in sorted(graph[v] & within):
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return path[::-1] + [start]
                if w not in came_from:
                    came_from[w] = v
                    reached.append(w)
        frontier = reached
    raise AssertionError(f"{start} is in a component without a cycle")


def test_the_package_has_no_import_cycle():
    found = cycles(import_graph())
    assert not found, "import cycles: " + "; ".join(" -> ".join(c) for c in found)


def crossing_imports(graph: dict[str, set[str]], a: str, b: str) -> list[str]:
    """Imports from package `a` (or a module in it) of package `b` (or a module in it), and back."""
    def inside(module: str, package: str) -> bool:
        return module == package or module.startswith(package + ".")

    return sorted(f"{m} -> {t}" for m, targets in graph.items() for t in targets
                  for src, dst in ((a, b), (b, a)) if inside(m, src) and inside(t, dst))


def test_the_chat_transport_and_the_evaluation_do_not_import_each_other():
    # what they share (the chat records, answer extraction) is in neutral modules: ioa.chat, ioa.grading
    assert crossing_imports(import_graph(), "ioa.llm", "ioa.evaluation") == []
    graph = {"ioa.llm.x": {"ioa.evaluation"}, "ioa.evaluation.y": {"ioa.llm.z"}, "ioa.llm_ish": {"ioa.evaluation"}}
    assert crossing_imports(graph, "ioa.llm", "ioa.evaluation") == ["ioa.evaluation.y -> ioa.llm.z",
                                                                    "ioa.llm.x -> ioa.evaluation"]


def test_the_walk_sees_lazy_imports_parent_packages_and_relative_imports(tmp_path):
    graph = import_graph()
    assert "ioa.methods.registry" in graph["ioa.cli"]  # imported inside cmd functions only
    assert "ioa.methods" in graph["ioa.config"]  # from ioa.methods.names: runs ioa/methods/__init__.py
    assert "ioa.methods" not in graph["ioa.methods.ioa"]  # its own package
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from pkg.sub import b\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .. import a\n")
    assert import_graph(pkg) == {"pkg": set(), "pkg.a": {"pkg.sub", "pkg.sub.b"}, "pkg.sub": set(),
                                 "pkg.sub.b": {"pkg.a"}}
    assert cycles(import_graph(pkg)) == [["pkg.a", "pkg.sub.b", "pkg.a"]]


def test_cycles_names_each_cycle_once():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"e"}, "e": {"d"}, "f": {"a"}}
    assert sorted(cycles(graph)) == [["a", "b", "c", "a"], ["d", "e", "d"]]
