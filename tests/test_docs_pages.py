"""The documentation site's generated pages match the code and the result files they come from.

``docs/gen_pages.py --check`` regenerates every page in memory (preset fields from the pydantic
models, the CLI from the typer app, the spaces and presets from their YAML, one table per
``benchmarks/results/*.json``) and fails on any difference, so a page cannot drift: change the
code or a result file, then run ``python docs/gen_pages.py``.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


@pytest.fixture(scope="module")
def gen() -> ModuleType:
    """``docs/gen_pages.py``, the script the docs are written with (not a package module)."""
    spec = importlib.util.spec_from_file_location("gen_pages", DOCS / "gen_pages.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_pages_are_fresh(gen: ModuleType, capsys: pytest.CaptureFixture) -> None:
    assert gen.main(["--check"]) == 0, capsys.readouterr().err


def test_a_stale_page_is_named(gen: ModuleType, capsys: pytest.CaptureFixture) -> None:
    page = DOCS / "reference" / "presets.md"
    original = page.read_text()
    try:
        page.write_text(original.replace("| `seed` |", "| `seed_edited` |"))
        code = gen.main(["--check"])
    finally:
        page.write_text(original)
    assert code == 1
    assert "stale: docs/reference/presets.md" in capsys.readouterr().err


def _cells(row: str) -> list[str]:
    return [c.strip() for c in re.split(r"(?<!\\)\|", row.strip())[1:-1]]


def test_every_preset_and_space_field_has_a_meaning() -> None:
    for name in ("presets.md", "spaces.md"):
        rows = [_cells(line) for line in (DOCS / "reference" / name).read_text().splitlines()
                if line.startswith("| `")]
        rows = [r for r in rows if len(r) == 4]
        assert rows, name
        empty = [r[0] for r in rows if not r[3]]
        assert not empty, f"{name}: fields without a description: {empty}"


def test_every_benchmark_table_is_on_the_benchmarks_page() -> None:
    page = (DOCS / "benchmarks.md").read_text()
    included = set(re.findall(r'--8<-- "(bench_[^"]+\.md)"', page))
    generated = {p.name for p in (DOCS / "generated").glob("bench_*.md")}
    assert generated == included, (
        f"not on docs/benchmarks.md: {sorted(generated - included)}; "
        f"included but not generated: {sorted(included - generated)}"
    )


@pytest.mark.parametrize("page", ["cli.md", "presets.md"])
def test_reference_names_what_the_code_has(page: str) -> None:
    text = (DOCS / "reference" / page).read_text()
    if page == "cli.md":
        for command in ("search", "retrain", "baseline", "evaluate", "pareto", "summary"):
            assert f"## `raynas {command}`" in text
        assert "`--resume`" in text and "`--plan`" in text
    else:
        for key in ("coarse.rank_by", "fine.arch_lr", "retrain.baselines", "data.test_cases"):
            assert f"| `{key}` |" in text
