"""The structure holds: no import cycle anywhere, small modules, short functions, and the layers.

The layers themselves are checked by import-linter (``lint-imports`` in the test command, with
the contracts in ``pyproject.toml``); this file checks what import-linter does not: that no two
modules import each other, even through function-level or ``TYPE_CHECKING`` imports, the size
limits a newcomer relies on to read a module in one sitting, and the direction between the
library, the test support (``tf_testing``), the benchmarks and the test suite.
"""

from __future__ import annotations

import ast
import sys

import grimp

from tests.paths import REPO_ROOT

PACKAGE = REPO_ROOT / "tf_magics"
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


def _sizes(kind: type[ast.AST] | tuple[type[ast.AST], ...]) -> list[tuple[str, int]]:
    """``("path:line name", lines)`` for every definition of this kind in the package."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, kind):
                assert isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                assert node.end_lineno is not None
                where = f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name}"
                found.append((where, node.end_lineno - node.lineno + 1))
    return found


def test_no_class_is_longer_than_a_few_hundred_lines() -> None:
    too_big = [f"{where} ({n} lines)" for where, n in _sizes(ast.ClassDef) if n > MAX_CLASS_LINES]
    assert too_big == []


def test_no_function_is_longer_than_a_screen() -> None:
    functions = _sizes((ast.FunctionDef, ast.AsyncFunctionDef))
    too_big = [f"{where} ({n} lines)" for where, n in functions if n > MAX_FUNCTION_LINES]
    assert too_big == []


def test_the_library_the_test_support_and_the_benchmarks_import_in_one_direction() -> None:
    # tests -> benchmarks? never; benchmarks -> tf_testing -> tf_magics; nothing imports tests.
    graph = grimp.build_graph("tf_magics", "tf_testing", "benchmarks", "tests", cache_dir=None)
    forbidden = [
        ("tf_magics", "tf_testing"),
        ("tf_magics", "benchmarks"),
        ("tf_magics", "tests"),
        ("tf_testing", "benchmarks"),
        ("tf_testing", "tests"),
        ("benchmarks", "tests"),
    ]
    found = [
        f"{importer} -> {imported}"
        for importer, imported in forbidden
        if graph.chain_exists(importer, imported, as_packages=True)
    ]
    assert found == []
