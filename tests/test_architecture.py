"""The structure holds: no import cycle anywhere, small modules, short functions, and the layers.

The layers themselves are checked by import-linter (``lint-imports`` in the test command, with
the contracts in ``pyproject.toml``); this file checks what import-linter does not: that no two
modules import each other, even through function-level or ``TYPE_CHECKING`` imports, and the
size limits a newcomer relies on to read a module in one sitting.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import grimp
import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "tf_magics"
MAX_CLASS_LINES = 300
MAX_FUNCTION_LINES = 60


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm)."""
    sys.setrecursionlimit(max(10_000, sys.getrecursionlimit()))
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_module_imports_back_a_module_that_imports_it() -> None:
    graph = grimp.build_graph("tf_magics", cache_dir=None)
    modules = {m for m in graph.modules if m.startswith("tf_magics.")}
    # A package's __init__ re-exporting its modules is the package, not a cycle: a module may
    # import its own package's public names only if that package does not import it back.
    edges = {m: set(graph.find_modules_directly_imported_by(m)) & modules for m in modules}
    assert strongly_connected(edges) == []


def test_the_cycle_finder_finds_cycles() -> None:
    assert strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert strongly_connected({"a": {"b"}, "b": set()}) == []


def _sizes() -> list[tuple[str, str, int, int]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                assert node.end_lineno is not None
                lines = node.end_lineno - node.lineno + 1
                kind = "class" if isinstance(node, ast.ClassDef) else "function"
                found.append((f"{path.relative_to(PACKAGE.parent)}:{node.lineno}", kind, lines, 0))
                found[-1] = (found[-1][0] + f" {node.name}", kind, lines, 0)
    return found


@pytest.mark.parametrize(
    ("kind", "limit"), [("class", MAX_CLASS_LINES), ("function", MAX_FUNCTION_LINES)]
)
def test_classes_and_functions_stay_small(kind: str, limit: int) -> None:
    too_big = [
        f"{where} ({lines} lines)" for where, k, lines, _ in _sizes() if k == kind and lines > limit
    ]
    assert too_big == []
