"""The documentation site's generated pages match the code and the result files they come from.

``docs/gen_pages.py --check`` regenerates every page in memory (preset fields from the pydantic
models, the CLI from the typer app, the spaces and presets from their YAML, one table per
``benchmarks/results/*.json``) and fails on any difference, so a page cannot drift: change the
code or a result file, then run ``python docs/gen_pages.py``.
"""

from __future__ import annotations

import importlib.util
import json
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


# Result files whose stamping is another change's work (issue 23, the equal-cost comparison):
# quoted today by code older than the stamp; the test shows it (xfail) until they are rewritten.
PENDING = ("search_validity", "fine_arch_lr/", "rank_by_loss/")
# Written by older code and not yet rewritten: each takes <= ~8 min on an idle 2-core machine,
# but more than the shared machine's 900 s limit under its load that day (baselines_learn's U-Net
# alone ran 15 min). Rewrite with python benchmarks/<name>.py (see its docstring), then drop it
# here (strict: a rewritten file makes its xfail fail).
NOT_REGENERATED: tuple[str, ...] = ()  # none today: each was rewritten or removed


def _quoted(gen: ModuleType) -> set[str]:
    """Result files (relative to ``benchmarks/results/``) the README and the hand-written docs
    quote: named as ``.json``, or shown as a table under their prose (``--8<-- "bench_x.md"``)."""
    names = {p.relative_to(gen.RESULTS).as_posix() for p in gen.results_files()}
    by_page = {f"bench_{gen._bench_name(gen.RESULTS / n)}.md": n for n in names}
    texts = [(ROOT / "README.md").read_text()]
    texts += [p.read_text() for p in DOCS.rglob("*.md")
              if not {"generated", "reference"} & set(p.relative_to(DOCS).parts)]  # fmt: skip
    quoted = set()
    for text in texts:
        for token in re.findall(r"[\w./-]+\.json", text):
            quoted |= {n for n in names if token.endswith(n) and
                       (token == n or token.endswith("/" + n))}  # fmt: skip
        quoted |= {by_page[m] for m in re.findall(r'--8<-- "([^"]+)"', text) if m in by_page}
    return quoted


def _quoted_params() -> list:
    spec = importlib.util.spec_from_file_location("gen_pages_q", DOCS / "gen_pages.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = []
    for name in sorted(_quoted(module)):
        marks = [pytest.mark.xfail(reason="stamped by the equal-cost comparison's change",
                                   strict=False)] if name.startswith(PENDING) else []
        if name in NOT_REGENERATED:
            marks = [pytest.mark.xfail(reason="older code; not rewritten yet", strict=True)]
        out.append(pytest.param(name, marks=marks, id=name))
    return out


@pytest.mark.parametrize("name", _quoted_params())
def test_every_quoted_result_file_was_stamped_by_the_code_that_wrote_it(
    gen: ModuleType, name: str
) -> None:
    from raynas.bench.provenance import STAMP_KEYS

    assert name not in gen.LEGACY, f"{name} is listed as legacy but quoted"
    data = json.loads((gen.RESULTS / name).read_text())
    for label, run in gen._runs(data).items():
        st = run.get("stamp")
        assert isinstance(st, dict), f"{name} [{label}]: no stamp (written by older code)"
        assert set(STAMP_KEYS) <= set(st) and st["code_digest"], f"{name} [{label}]: {st}"
        assert isinstance(run.get("seconds"), dict), f"{name} [{label}]: no seconds per part"


def test_an_unstamped_file_is_listed_as_older_code(gen: ModuleType, tmp_path: Path) -> None:
    old = {"benchmark": "x", "smoke_test": False, "summary": {"dice": 0.5}}
    commit, verdict = gen._provenance(old)
    assert (commit, verdict) == ("not recorded", gen.OLDER)
    assert gen._provenance({"commit": "a" * 40, "dirty": False})[1].startswith(gen.OLDER)
    from raynas.bench import stamp

    st = stamp({}, dataset=None, dataset_digest=None, seeds=[0], script="x")
    assert gen._provenance({"stamp": st})[1].startswith(gen.CURRENT)
    st["code_digest"] = "0" * 64
    assert gen._provenance({"stamp": st})[1].startswith(gen.NOT_CURRENT)
    # --check ignores the verdict (a code change elsewhere leaves the pages fresh)
    assert gen.mask_verdicts(gen.CURRENT) == gen.mask_verdicts(gen.NOT_CURRENT)


def test_a_labelled_file_shows_each_runs_provenance(
    gen: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from raynas.bench import stamp

    st = stamp({}, dataset=None, dataset_digest=None, seeds=[0], script="x")
    old = {"commit": "b" * 40, "dirty": False, "summary": {"dice": 0.1}}
    new = {"stamp": st, "seconds": {"total": 1.0}, "summary": {"dice": 0.5}}
    results = tmp_path / "benchmarks" / "results"
    results.mkdir(parents=True)
    path = results / "labelled.json"
    path.write_text(json.dumps({"benchmark": "x", "before": old, "after": new}))
    monkeypatch.setattr(gen, "ROOT", tmp_path)
    monkeypatch.setattr(gen, "RESULTS", results)
    page = gen.bench_page(path)
    rows = [_cells(x) for x in gen.provenance_page().splitlines()[4:]]
    assert f"**before** (commit {'b' * 10}; {gen.OLDER}" in page
    assert f"**after** (commit {st['commit'][:10]} (clean); {gen.CURRENT}" in page or (
        f"**after** (commit {st['commit'][:10]} (dirty); {gen.CURRENT}" in page)
    assert [r[0] for r in rows] == ["`labelled.json` [before]", "`labelled.json` [after]"]
    assert rows[0][2].startswith(gen.OLDER) and rows[1][2].startswith(gen.CURRENT)


def test_the_readme_quotes_only_files_the_current_code_wrote(gen: ModuleType) -> None:
    """Every result file the README names was written by the code in this checkout: each
    source file its run loaded (the stamp's ``code_files``) is unchanged here."""
    from raynas.bench.provenance import is_current

    names = {p.relative_to(gen.RESULTS).as_posix() for p in gen.results_files()}
    readme = (ROOT / "README.md").read_text()
    quoted = {n for n in names if f"`{n}`" in readme}
    assert quoted, "the README quotes no result file"
    for name in sorted(quoted):
        data = json.loads((gen.RESULTS / name).read_text())
        for label, run in gen._runs(data).items():
            st = run.get("stamp")
            assert isinstance(st, dict) and st.get("code_files"), f"{name} [{label}]: no code_files"
            assert is_current(st, ROOT), f"{name} [{label}]: code it ran has changed since"
