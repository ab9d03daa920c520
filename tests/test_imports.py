"""No import cycles among the project's own modules (harness/, analysis/, any package added beside them).

python -m pytest -q tests/test_imports.py

Imports inside functions count too: a cycle that only closes at call time still
ties two modules into one, and breaks as soon as someone hoists the import.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def project_modules(root: Path) -> dict[str, Path]:
    """Dotted name -> file, for every .py file of every top-level package (a folder with
    __init__.py) of the repository."""
    modules = {}
    for init in sorted(root.glob("*/__init__.py")):
        for f in init.parent.rglob("*.py"):
            parts = f.relative_to(root).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            modules[name] = f
    return modules


def imported_names(module: str, path: Path) -> set[str]:
    """Every dotted name module imports, anywhere in the file (absolute and relative)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # from .x import y: relative to the module's package
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{a.name}" for a in node.names)  # from pkg import submodule
    return names


def import_graph(root: Path) -> dict[str, set[str]]:
    modules = project_modules(root)
    return {m: {n for n in imported_names(m, p) if n in modules and n != m} for m, p in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None (depth-first search, colours)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        path.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                return path[path.index(n):] + [n]
            if n not in state and (cycle := visit(n)):
                return cycle
        state[m] = 2
        path.pop()
        return None

    for m in sorted(graph):
        if m not in state and (cycle := visit(m)):
            return cycle
    return None


def test_no_import_cycle_among_project_modules():
    graph = import_graph(ROOT)
    # the scan sees the packages
    assert "harness.trainers.opsd" in graph and "harness.prompts.templates" in graph
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_function_level_imports_count(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from pkg.b import g\n")
    (pkg / "b.py").write_text("from pkg import a\n")
    assert find_cycle(import_graph(tmp_path)) == ["pkg.a", "pkg.b", "pkg.a"]
