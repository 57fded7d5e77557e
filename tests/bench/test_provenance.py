"""Provenance stamps: dirty detection, the code digest, reuse rules, null statistics, writing."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from raynas.bench import (
    Timer,
    check_reusable,
    code_digest,
    dataset_digest,
    git_state,
    mean_valid,
    stamp,
    synthetic_digest,
    why_not_reusable,
    write_result,
)


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True, timeout=30).stdout  # fmt: skip


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A tiny git checkout with the code folders, one commit, results ignored by nothing."""
    repo = tmp_path / "repo"
    (repo / "raynas").mkdir(parents=True)
    (repo / "benchmarks" / "results").mkdir(parents=True)
    (repo / "raynas" / "a.py").write_text("x = 1\n")
    (repo / "benchmarks" / "b.py").write_text("y = 2\n")
    (repo / "benchmarks" / "results" / "r.json").write_text("{}\n")
    (repo / "docs").mkdir()
    (repo / "docs" / "d.md").write_text("doc\n")
    (repo / ".gitignore").write_text("*.pyc\n")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")
    return repo


def test_a_clean_tree_is_clean_and_its_commit_is_head(repo: Path) -> None:
    commit, dirty = git_state(repo)
    assert commit == _git(repo, "rev-parse", "HEAD").strip() and dirty is False


@pytest.mark.parametrize(
    ("edit", "dirty", "digest_changes"),
    [
        (lambda r: (r / "raynas" / "a.py").write_text("x = 3\n"), True, True),  # modified
        (lambda r: (r / "raynas" / "new.py").write_text("z = 0\n"), True, True),  # untracked
        (lambda r: (r / "benchmarks" / "b.py").unlink(), True, True),  # deleted
        (lambda r: (r / "benchmarks" / "results" / "r.json").write_text("[1]\n"), False, False),
        (lambda r: (r / "docs" / "d.md").write_text("other\n"), False, False),
        (lambda r: (r / "raynas" / "a.pyc").write_bytes(b"\0"), False, False),  # ignored
    ],
)
def test_dirty_and_code_digest_follow_the_code_on_disk(repo: Path, edit, dirty, digest_changes):
    before = code_digest(repo)
    edit(repo)
    assert git_state(repo)[1] is dirty
    assert (code_digest(repo) != before) is digest_changes


def test_the_digest_of_a_dirty_tree_equals_that_of_the_commit_made_from_it(repo: Path) -> None:
    (repo / "raynas" / "a.py").write_text("x = 4\n")
    kw = {"dataset": "synthetic", "dataset_digest": "d1", "seeds": [0], "script": "s"}
    dirty = stamp({}, root=repo, **kw)
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "two")
    clean = stamp({}, root=repo, **kw)
    assert dirty["dirty"] is True and clean["dirty"] is False
    assert dirty["commit"] != clean["commit"] and dirty["code_digest"] == clean["code_digest"]
    assert check_reusable(dirty, clean)


def _stamp(**over) -> dict:
    base = {"commit": "a" * 40, "dirty": False, "code_digest": "c1", "config": {"epochs": 2},
            "dataset": "synthetic", "dataset_digest": "d1", "seeds": [0]}  # fmt: skip
    return {**base, **over}


@pytest.mark.parametrize(
    ("earlier", "reason"),
    [
        (_stamp(), None),
        (_stamp(code_digest="c0"), None),  # same clean commit
        (_stamp(code_digest="c0", dirty=True), "other code"),  # same commit, but edited
        (_stamp(commit="b" * 40), None),  # other commit, same code on disk
        (_stamp(commit="b" * 40, code_digest="c0"), "other code"),
        (_stamp(config={"epochs": 3}), "other config (epochs)"),
        (_stamp(config={"epochs": 2, "lr": 0.1}), "other config (lr)"),
        (_stamp(dataset_digest="d2"), "other data"),
        (_stamp(dataset_digest=None), "no dataset digest"),
        (None, "no stamp"),
    ],
)
def test_reuse_needs_the_same_code_config_and_data(earlier, reason) -> None:
    why = why_not_reusable(earlier, _stamp())
    assert (why is None) if reason is None else why.startswith(reason), why
    assert check_reusable(earlier, _stamp()) is (reason is None)


def test_reuse_may_compare_only_the_recipe_keys() -> None:
    earlier = _stamp(config={"epochs": 2, "seeds_per_run": 5})
    assert not check_reusable(earlier, _stamp())
    assert check_reusable(earlier, _stamp(), config_keys=["epochs"])


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([], {"mean": None, "n_valid": 0, "n": 0}),
        ([None, float("nan")], {"mean": None, "n_valid": 0, "n": 2}),
        ([1.0, None, 0.0, float("nan")], {"mean": 0.5, "n_valid": 2, "n": 4}),
        ([0.2, 0.4, float("inf")], {"mean": pytest.approx(0.3), "n_valid": 2, "n": 3}),
    ],
)
def test_mean_valid_skips_and_counts_undefined_values(values, expected) -> None:
    assert mean_valid(values) == expected


def test_a_result_without_stamp_or_seconds_or_with_nan_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    st = stamp({"a": (1, 2)}, dataset="synthetic", dataset_digest="d", seeds=[0, 1], script="x")
    timer = Timer()
    with timer.part("train"):
        pass
    with pytest.raises(ValueError, match="stamp"):
        write_result(out, {"seconds": timer.seconds()})
    with pytest.raises(ValueError, match="seconds"):
        write_result(out, {"stamp": st})
    with pytest.raises(ValueError, match="NaN"):
        write_result(out, {"stamp": st, "seconds": timer.seconds(), "tau": math.nan})
    assert not out.exists() and not list(tmp_path.iterdir())  # nothing half-written
    write_result(out, {"stamp": st, "seconds": timer.seconds(), "tau": None})
    data = json.loads(out.read_text())
    assert data["stamp"]["config"] == {"a": [1, 2]} and data["stamp"]["seeds"] == [0, 1]
    assert set(data["seconds"]) == {"train", "total"}


def test_a_stamp_refuses_a_dataset_without_digest_and_bad_seeds() -> None:
    with pytest.raises(ValueError, match="digest"):
        stamp({}, dataset="synthetic", dataset_digest=None, seeds=[0], script="x")
    with pytest.raises(ValueError, match="seeds"):
        stamp({}, dataset=None, dataset_digest=None, seeds=["0"], script="x")


def test_a_generated_dataset_digest_follows_its_seed_cases_and_generator() -> None:
    a = synthetic_digest("synthetic_hard", seed=0, cases=16)
    assert a == dataset_digest("synthetic_hard", seed=0, cases=16)
    assert a == dataset_digest("synthetic_hard", seed=0, cases=20, limit_cases=16)
    others = {synthetic_digest("synthetic_hard", seed=1, cases=16),
              synthetic_digest("synthetic_hard", seed=0, cases=8),
              synthetic_digest("synthetic", seed=0, cases=16)}  # fmt: skip
    assert a not in others and len(others) == 3
    with pytest.raises(ValueError, match="valid: synthetic"):
        synthetic_digest("msd_task02", seed=0, cases=1)


def test_a_folder_dataset_digest_reads_its_files(tmp_path: Path) -> None:
    from raynas.data import write_synthetic

    root = write_synthetic(tmp_path / "d", name="synthetic", cases=2, seed=0, shape=(8, 8, 4))
    first = dataset_digest("synthetic", data_root=root)
    assert first.startswith("files:") and first == dataset_digest("synthetic", data_root=root)
    label = next((root / "labelsTr").iterdir())
    label.write_bytes(label.read_bytes() + b"\0")
    assert dataset_digest("synthetic", data_root=root) != first


def test_the_instrument_imports_without_ray_mlflow_or_torch() -> None:
    code = (
        "import sys\nsys.modules['ray'] = sys.modules['mlflow'] = None\n"
        "import raynas.bench as b\n"
        "b.stamp({}, dataset=None, dataset_digest=None, seeds=[0], script='x')\n"
        "assert 'torch' not in sys.modules, 'torch imported'\nprint('ok')"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


def test_current_means_the_code_the_run_loaded_is_unchanged(tmp_path: Path) -> None:
    """A written stamp lists the files the run loaded; an edit to one of them makes the result
    not current, an edit anywhere else leaves it current."""
    import shutil

    from raynas.bench.provenance import is_current, repo_root

    st = stamp({"k": 1}, dataset=None, dataset_digest=None, seeds=[0],
               script="benchmarks/equal_cost.py")  # fmt: skip
    out = write_result(tmp_path / "r.json", {"stamp": st, "seconds": {"total": 1.0}})
    written = json.loads(out.read_text())["stamp"]
    files = written["code_files"]
    assert "raynas/bench/provenance.py" in files and "benchmarks/equal_cost.py" in files
    copy = tmp_path / "copy"
    for name in files:
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(repo_root() / name, copy / name)
    assert is_current(written, copy)
    elsewhere = copy / "raynas" / "never_loaded.py"  # code this run did not load
    assert "raynas/never_loaded.py" not in files
    elsewhere.write_text("# edited elsewhere\n")
    assert is_current(written, copy)
    with open(copy / "raynas/bench/provenance.py", "a") as fh:
        fh.write("# edited\n")
    assert not is_current(written, copy)


def test_a_loaded_file_changed_during_the_run_marks_the_stamp_dirty(tmp_path: Path) -> None:
    import time

    from raynas.bench.provenance import is_current, loaded_code, note_code

    script = tmp_path / "benchmarks" / "late.py"
    script.parent.mkdir(parents=True)
    started = time.time() - 60
    script.write_text("x = 1\n")  # written after the run "started"
    from raynas.bench import provenance

    note_code(["benchmarks/late.py"])
    try:
        files, changed = loaded_code(None, root=tmp_path, since=started)
    finally:
        provenance._NOTED.discard("benchmarks/late.py")  # not this process's code after all
    assert files["benchmarks/late.py"] is not None and changed == ["benchmarks/late.py"]
    st = {"code_files": files, "changed_during_run": changed}
    assert not is_current(st, tmp_path)
