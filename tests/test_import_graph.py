"""capsync's imports run one way: no module or package imports back into one that imports it.

The graph is read from the source with :mod:`ast`, not by importing, so it
sees every import, including those inside functions. What counts:

* every ``import`` and ``from ... import`` of a ``capsync`` module, at any
  depth in the module (function-level imports too: a lazy import only moves a
  cycle to run time, so it still counts), except under ``if TYPE_CHECKING:``
  (annotations only; nothing runs);
* importing ``a.b.c`` also runs the packages ``a.b`` and ``a``; those edges count
  too, except to the module's own enclosing packages, which are always already
  being imported when it runs (a package's ``__init__`` re-exporting its
  children is not a cycle), and except to ``capsync`` itself, whose
  ``__init__`` is the public face and imports lazily (checked below).

Two graphs are checked: modules, and packages (``capsync.sync`` -> ``capsync.service``
when any module of one imports any of the other), so two layers never lean on
each other even through different modules.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.wire_independent

SRC = Path(__file__).resolve().parents[1] / "src"
ROOT = "capsync"
# protoc's output: imports only its sibling generated modules and google.protobuf.
GENERATED_PREFIX = "capsync.proto.viam."


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    found = {_module_name(p): p for p in (SRC / ROOT).rglob("*.py")}
    return {name: path for name, path in found.items() if not name.startswith(GENERATED_PREFIX)}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, module: str, is_package: bool) -> Iterator[str]:
    """Every module named by an import in ``tree`` (outside ``if TYPE_CHECKING:``)."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = module if is_package else module.rpartition(".")[0]
                for _ in range(node.level - 1):
                    package = package.rpartition(".")[0]
                base = f"{package}.{node.module}" if node.module else package
            else:
                base = node.module or ""
            yield base
            # ``from package import submodule`` imports the submodule too.
            yield from (f"{base}.{alias.name}" for alias in node.names)
        stack.extend(ast.iter_child_nodes(node))


def _ancestors(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def import_graph() -> dict[str, set[str]]:
    """module -> the capsync modules its imports run."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        own_packages = set(_ancestors(name))
        targets: set[str] = set()
        for imported in _imports(tree, name, path.name == "__init__.py"):
            for target in [*_ancestors(imported), imported]:
                if target in modules and target not in own_packages and target != ROOT:
                    targets.add(target)
        targets.discard(name)
        graph[name] = targets
    return graph


def _package(module: str) -> str:
    """The part of capsync a module is in: ``capsync.sync.files`` -> ``capsync.sync``."""
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else module


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """``capsync.X`` -> ``capsync.Y`` whenever a module under X imports one under Y."""
    packages: dict[str, set[str]] = {}
    for module, targets in graph.items():
        source = _package(module)
        edges = packages.setdefault(source, set())
        edges.update(_package(t) for t in targets)
        edges.discard(source)
    return packages


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as [a, b, ..., a], or None."""
    white, grey, black = 0, 1, 2
    colour = dict.fromkeys(graph, white)
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        colour[node] = grey
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if colour.get(target, black) == grey:
                return [*path[path.index(target) :], target]
            if colour.get(target) == white and (cycle := visit(target)):
                return cycle
        path.pop()
        colour[node] = black
        return None

    for node in sorted(graph):
        if colour[node] == white and (cycle := visit(node)):
            return cycle
    return None


def test_no_module_imports_back_into_one_that_imports_it() -> None:
    graph = import_graph()
    assert "capsync.sync.files" in graph["capsync.sync.syncer"]  # the graph is not empty
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_no_package_imports_back_into_one_that_imports_it() -> None:
    packages = package_graph(import_graph())
    assert "capsync.sync" in packages["capsync.service"]
    cycle = find_cycle(packages)
    assert cycle is None, "import cycle between packages: " + " -> ".join(cycle or [])


def test_the_checker_finds_cycles() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    tree = ast.parse(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    import capsync.hidden\n"
        "def f():\n    from . import lazy\n"
        "from ..up import thing\n"
    )
    assert set(_imports(tree, "capsync.pkg.mod", False)) == {
        "typing",
        "typing.TYPE_CHECKING",
        "capsync.pkg",
        "capsync.pkg.lazy",
        "capsync.up",
        "capsync.up.thing",
    }


def test_the_leaf_helpers_import_no_capsync_module() -> None:
    graph = import_graph()
    assert graph["capsync._log"] == set()
