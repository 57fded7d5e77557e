"""The house rules a newcomer relies on to find things (DESIGN.md "Layers", STYLE.md): MLflow is
imported only in ``raynas/tracking/``, Ray only in ``raynas/tune/``, anywhere in a module (lazy
imports included), and no module grows past the size at which it must be split. Parsed with
``ast``; nothing imported."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "raynas"
MAX_LINES = 600  # STYLE.md: modules of 100-400 lines, split before 600
# imported, not called: the plan times a fresh worker's imports the way a Ray worker pays them
RAY_ALLOWED = {"pipeline/plan_calibrate.py"}


def imports_of(source: str, library: str) -> list[int]:
    """The lines of ``source`` that import ``library`` (or one of its modules)."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level:
            names = [node.module or ""]
        else:
            continue
        if any(n == library or n.startswith(library + ".") for n in names):
            lines.append(node.lineno)
    return lines


def test_the_import_finder() -> None:
    source = "import json\ndef f():\n    from mlflow.exceptions import E\n    import mlflowx\n"
    assert imports_of(source, "mlflow") == [3]


@pytest.mark.parametrize("library,home,allowed", [
    ("mlflow", "tracking", set()),
    ("ray", "tune", RAY_ALLOWED),
])  # fmt: skip
def test_a_library_is_imported_only_in_its_layer(library: str, home: str, allowed: set) -> None:
    offenders = [
        f"raynas/{rel}:{line}"
        for path in sorted(ROOT.rglob("*.py"))
        if (rel := path.relative_to(ROOT).as_posix()).split("/")[0] != home and rel not in allowed
        for line in imports_of(path.read_text(encoding="utf-8"), library)
    ]
    assert not offenders, f"{library} imported outside raynas/{home}/: " + ", ".join(offenders)


def test_no_module_is_past_the_split_size() -> None:
    sizes = {
        path.relative_to(ROOT).as_posix(): len(path.read_text(encoding="utf-8").splitlines())
        for path in ROOT.rglob("*.py")
    }
    over = {name: n for name, n in sizes.items() if n > MAX_LINES}
    assert not over, f"modules over {MAX_LINES} lines (split them by job): {over}"
