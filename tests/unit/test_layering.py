"""Packages point one way: the IVR and the recordings worker depend only on the shared core (the model and its
contract, the settings, the store), never on the listener, the API or the CLI; and no module imports itself back
through a circle."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("callcenter", "ivr", "recordings")
CORE = ("callcenter.model", "callcenter.settings", "callcenter.store", "callcenter.calls.record",
        "callcenter.ops.metrics", "ivr", "recordings")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for package in PACKAGES for path in (ROOT / package).rglob("*.py")}


def _is_type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def top_level_imports(path: Path) -> Iterator[str]:
    """Modules imported when the module loads (not inside functions, not only for the type checker)."""
    def walk(body: list[ast.stmt]) -> Iterator[str]:
        for node in body:
            if isinstance(node, ast.Import):
                yield from (alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                yield node.module
                yield from (f"{node.module}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.If) and not _is_type_checking(node):
                yield from walk(node.body)
    yield from walk(ast.parse(path.read_text(encoding="utf-8")).body)


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: {imported for imported in top_level_imports(path) if imported in known and imported != name}
            for name, path in known.items()}


@pytest.mark.parametrize("package", ["ivr", "recordings"])
def test_ivr_and_recordings_depend_only_on_the_shared_core(package: str) -> None:
    wrong = {f"{name} -> {imported}" for name, imports in graph().items() if name.split(".")[0] == package
             for imported in imports if not imported.startswith(CORE)}
    assert not wrong, sorted(wrong)


@pytest.mark.parametrize("module", ["callcenter.model.contract", "callcenter.ops.metrics"])
def test_the_shared_leaves_import_nothing_from_the_project(module: str) -> None:
    assert not graph()[module]


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in edges.get(node, set()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in edges:
        if node not in index:
            visit(node)
    return found


def test_the_circle_finder_finds_circles() -> None:
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []


def test_no_import_circles() -> None:
    assert not circles(graph())
