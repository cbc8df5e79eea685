"""The house rules of the code, checked on the source itself (docs/ARCHITECTURE.md):

- the stages are layers, and a module imports only from its own layer or lower ones;
- the core never imports the edges (``cli``, ``web``);
- every SQL statement is in ``rarebird.store``, and nothing else imports ``sqlite3``;
- (no import cycles, no private names across modules, no long modules: tests/test_layout.py).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"
PACKAGE = SRC / "rarebird"

#: Lowest first. A module may import from its own layer and the layers before it.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("timeutil", "clock", "errors", "documents", "events", "results", "explain"),
    ("sources",),
    ("datafeed",),
    ("definitions",),
    ("detectors",),
    ("job",),
    ("alerts",),
    ("rules",),
    ("store",),
    ("sinks",),
    ("run",),
    ("serve", "triage", "evidence", "generate", "evaluate", "deploy"),
    ("cli", "web", "testing", "__main__"),
)
EDGES = ("cli", "web")
SQL = re.compile(
    r"\b(SELECT\s.+\sFROM|INSERT\s+(OR\s+[A-Z]+\s+)?INTO|UPDATE\s+[a-z_]+\s+SET|DELETE\s+FROM|"
    r"CREATE\s+(TABLE|INDEX|UNIQUE\s+INDEX)|ALTER\s+TABLE|DROP\s+(TABLE|INDEX))\b"
)


def modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        yield ".".join(parts), path


def top(module: str) -> str:
    """The stage a module belongs to: ``rarebird.store.alerts`` -> ``store``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def layer(module: str) -> int:
    name = top(module)
    for i, names in enumerate(LAYERS):
        if name in names:
            return i
    raise AssertionError(f"{module}: its stage {name!r} is in no layer of this test")


def imports(path: Path, module: str) -> Iterator[tuple[int, str]]:
    """(line, imported rarebird module) for every import, at any depth (lazy ones included)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("rarebird"):
                    yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            name = node.module or ""
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                name = ".".join([*base, name]) if name else ".".join(base)
            if name.startswith("rarebird"):
                for alias in node.names:
                    full = f"{name}.{alias.name}"
                    yield node.lineno, full if _is_module(full) else name


def _is_module(name: str) -> bool:
    rel = Path(*name.split("."))
    return (SRC / rel).with_suffix(".py").exists() or (SRC / rel / "__init__.py").exists()


def test_every_stage_is_in_a_layer() -> None:
    for module, _ in modules():
        if module != "rarebird":
            layer(module)


def test_no_module_imports_from_a_higher_layer() -> None:
    wrong = []
    for module, path in modules():
        if module == "rarebird":
            continue
        mine = layer(module)
        for line, target in imports(path, module):
            if target == "rarebird":
                continue
            if layer(target) > mine:
                wrong.append(f"{path.relative_to(SRC)}:{line}: {module} imports {target}")
    assert wrong == []


def test_the_core_never_imports_the_edges() -> None:
    wrong = []
    for module, path in modules():
        if top(module) in EDGES or top(module) in ("testing", "__main__") or module == "rarebird":
            continue
        for line, target in imports(path, module):
            if top(target) in EDGES:
                wrong.append(f"{path.relative_to(SRC)}:{line}: {module} imports {target}")
    assert wrong == []


#: Not the store's SQL: DuckDB reading Parquet inputs, the datafeed pushed down to the scan
#: (issue 12), and counting per user and bucket there (``job run --aggregate``). Named one by
#: one, so no other module writes SQL unnoticed.
COLUMNAR_SQL = frozenset({"rarebird.sources.parquet", "rarebird.sources.parquet_groups"})


def test_sql_lives_in_the_store_only() -> None:
    wrong = []
    for module, path in modules():
        if top(module) == "store" or module in COLUMNAR_SQL:
            continue
        text = path.read_text(encoding="utf-8")
        for number, line in enumerate(text.splitlines(), start=1):
            if SQL.search(line) or re.search(r"^\s*(import sqlite3|from sqlite3)", line):
                wrong.append(f"{path.relative_to(SRC)}:{number}: {line.strip()}")
    assert wrong == []


@pytest.mark.parametrize("module", ["rarebird.store.sqlite"])
def test_the_checker_sees_sql_where_it_is(module: str) -> None:
    path = dict(modules())[module]
    assert any(SQL.search(line) for line in path.read_text().splitlines())
