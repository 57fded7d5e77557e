"""No import cycles between the modules of a package, counting every import: module level,
inside functions, and under ``if TYPE_CHECKING:`` (a cycle hidden in a lazy import is still a
cycle: the modules cannot be understood or moved apart). Parsed with ``ast``; nothing imported.

A package's ``__init__`` is a module of that package: it may import its submodules, and a
submodule that imports the package itself (``from raynas.x import y``) closes a cycle with it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "raynas"
PACKAGES = sorted(
    p.parent.relative_to(ROOT.parent).as_posix().replace("/", ".")
    for p in ROOT.rglob("__init__.py")
)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(source: str, name: str, known: set[str], *, package: bool = False
                     ) -> set[str]:
    """The modules of ``known`` that module ``name`` (its ``source``) imports anywhere."""
    base_package = name if package else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = base_package.split(".")
                base = base[: len(base) - (node.level - 1)]
                source = ".".join([*base, node.module] if node.module else base)
            else:
                source = node.module or ""
            # ``from pkg import sub`` imports the submodule ``pkg.sub`` when there is one
            targets = [f"{source}.{a.name}" if f"{source}.{a.name}" in known else source
                       for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:  # ``import a.b.c`` also runs ``a.b``
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def package_graph(package: str) -> dict[str, set[str]]:
    folder = ROOT.parent / package.replace(".", "/")
    files = {module_name(p): p for p in folder.glob("*.py")}
    known = set(files)
    return {
        name: imported_modules(path.read_text(encoding="utf-8"), name, known,
                               package=path.name == "__init__.py")
        for name, path in files.items()
    }


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path ``[a, b, ..., a]``, or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_finder_sees_lazy_relative_and_type_checking_imports() -> None:
    assert find_cycle({"p.a": {"p.b"}, "p.b": {"p.c"}, "p.c": {"p.a"}, "p.d": set()}) == [
        "p.a", "p.b", "p.c", "p.a"]
    assert find_cycle({"p.a": {"p.b"}, "p.b": set()}) is None
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from raynas.pipeline.search import SearchOptions\n"
        "def f():\n    from raynas.tracking import plots\n    import raynas.data.msd.x\n"
        "    from . import finish\n    from .outputs import slug\n    import json\n"
    )
    known = {"raynas.pipeline.search", "raynas.pipeline.finish", "raynas.pipeline.outputs",
             "raynas.tracking", "raynas.tracking.plots", "raynas.data", "raynas.data.msd"}
    assert imported_modules(source, "raynas.pipeline.setup", known) == {
        "raynas.pipeline.search", "raynas.pipeline.finish", "raynas.pipeline.outputs",
        "raynas.tracking.plots", "raynas.data.msd"}


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_cycle_inside_package(package: str) -> None:
    cycle = find_cycle(package_graph(package))
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def private_imports(source: str) -> list[tuple[int, str, str]]:
    """``(line, module, name)`` for every ``from raynas... import _name`` in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith(
                "raynas")):
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    found.append((node.lineno, node.module or ".", alias.name))
    return found


def test_the_private_import_finder() -> None:
    source = ("from raynas.pipeline.setup import _validate, ok\nfrom .runs import _quote\n"
              "def f():\n    from raynas.x import __version__, _y\n")
    assert private_imports(source) == [
        (1, "raynas.pipeline.setup", "_validate"), (2, "runs", "_quote"), (4, "raynas.x", "_y")]


def test_no_module_imports_another_modules_private_names() -> None:
    """What two modules share gets a public name (and a public home where two layers share it):
    a ``_name`` is private to the module that defines it."""
    offenders = [
        f"{path.relative_to(ROOT.parent)}:{line}: from {module} import {name}"
        for path in sorted(ROOT.rglob("*.py"))
        for line, module, name in private_imports(path.read_text(encoding="utf-8"))
    ]
    assert not offenders, "private imports:\n" + "\n".join(offenders)
