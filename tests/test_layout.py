"""The package's layout: no import loops, no private names across modules, small modules, and
stages that import only what is below them.

The import graph of ``rarebird`` is built from the source with :mod:`ast` (nothing is
imported): every ``import`` and ``from ... import`` anywhere in a module counts, including
those inside functions and under ``TYPE_CHECKING`` (a loop through a lazy import is still a
loop, only hidden). A package's ``__init__`` is a module like the others; importing
``a.b.c`` is an edge to ``a.b.c`` only (not to the packages ``a`` and ``a.b`` Python runs
first). The checks are written for the whole package and, for now, applied to the parts that
have been re-laid (:data:`CHECKED`).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import rarebird

ROOT = Path(rarebird.__file__).parent

#: Packages whose layout is checked: all of rarebird (the layers themselves are checked in
#: tests/test_architecture.py).
CHECKED = ("rarebird",)

#: Longest module, in lines.
MAX_LINES = 500


@dataclass(frozen=True)
class Import:
    """One imported module (or name of a module) and where."""

    target: str
    names: tuple[str, ...]
    line: int


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> Iterator[Import]:
    """The rarebird modules ``name`` imports: a ``from m import x`` where ``m.x`` is a module
    is an import of ``m.x``."""
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in modules:
                    yield Import(alias.name, (), node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            plain = []
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                if sub in modules:
                    yield Import(sub, (), node.lineno)
                else:
                    plain.append(alias.name)
            if plain and base in modules:
                yield Import(base, tuple(plain), node.lineno)


def import_graph() -> dict[str, list[Import]]:
    modules = all_modules()
    return {name: list(imports_of(name, path, modules)) for name, path in modules.items()}


def in_scope(module: str, scope: tuple[str, ...]) -> bool:
    return any(module == s or module.startswith(s + ".") for s in scope)


def cycles(graph: dict[str, list[Import]], scope: tuple[str, ...]) -> list[list[str]]:
    """The import loops among the modules of ``scope`` (strongly connected components of more
    than one module, or a module importing itself), each sorted."""
    edges = {
        m: sorted({i.target for i in imps if in_scope(i.target, scope)})
        for m, imps in graph.items()
        if in_scope(m, scope)
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, []):
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
            if len(component) > 1 or v in edges.get(v, []):
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_the_graph_sees_imports_of_every_kind() -> None:
    graph = import_graph()
    targets = {i.target for i in graph["rarebird.sources.registry"]}
    assert "rarebird.sources.identity" in targets  # from-import of names
    assert "rarebird.sources.ecs.documents" in {
        i.target for i in graph["rarebird.sources.ecs.lane"]
    }
    assert cycles({"a": [Import("b", (), 1)], "b": [Import("a", (), 1)]}, ("a", "b")) == [
        ["a", "b"]
    ]


def test_no_import_loops() -> None:
    assert cycles(import_graph(), CHECKED) == []


def test_no_private_names_imported_across_modules() -> None:
    bad = [
        f"{module}:{imp.line} imports {name} from {imp.target}"
        for module, imps in import_graph().items()
        if in_scope(module, CHECKED)
        for imp in imps
        for name in imp.names
        if name.startswith("_") and not name.startswith("__")
    ]
    assert bad == []


@pytest.mark.parametrize("package", CHECKED)
def test_no_module_is_too_long(package: str) -> None:
    long = {
        name: n
        for name, path in all_modules().items()
        if in_scope(name, (package,)) and (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}
