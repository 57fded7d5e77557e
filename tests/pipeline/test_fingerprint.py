"""``state.json`` fingerprints the resolved preset, space, dataset and split; ``--resume`` with
another configuration stops with one line (exit 2) before Ray starts; the most recent search is
chosen by time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from raynas.config import load_preset
from raynas.data import open_dataset
from raynas.errors import UserError
from raynas.pipeline.fingerprint import (
    fingerprint_differences,
    resume_mismatch,
    search_fingerprint,
)
from raynas.pipeline.folders import check_resume_fingerprint, find_folder
from raynas.pipeline.outputs import SearchFolder
from raynas.spaces import load_space

BASE = ["data.folds=3"]


def _fp(root: Path, overrides=(), space="c2f_small", cases=None) -> dict:
    preset = load_preset("smoke", [*BASE, *overrides])
    ds = open_dataset("synthetic", root, limit_cases=cases)
    return search_fingerprint(preset=preset, space=load_space(space), dataset=ds)


def test_same_configuration_same_fingerprint(synthetic_root):
    a, b = _fp(synthetic_root), _fp(synthetic_root)
    assert a == b and len(a["hash"]) == 64
    assert set(a["parts"]) == {"preset", "space", "dataset", "split"}
    assert a["parts"]["dataset"]["cases"] == sorted(a["parts"]["dataset"]["cases"]) and len(
        a["parts"]["dataset"]["cases"]) == 6
    split = a["parts"]["split"]
    assert len(split["train"]) + len(split["val"]) + len(split["test"]) == 6 and split["folds"] == 3
    assert split["test"]
    # where trials run does not change what the search computes
    assert _fp(synthetic_root, ["resources.cpus_per_trial=2"])["hash"] == a["hash"]


@pytest.mark.parametrize("change,named", [
    ({"overrides": ["coarse.epochs=5"]}, ["preset coarse.epochs (3 -> 5)"]),
    ({"overrides": ["seed=4"]}, ["preset seed (0 -> 4)", "split seed (0 -> 4)"]),
    ({"overrides": ["data.fold=1"]}, ["preset data.fold (0 -> 1)", "split fold (0 -> 1)"]),
    ({"space": "c2f"}, ["space cells", "space name"]),
    ({"cases": 5}, ["dataset cases (6 -> 5 items)", "split"]),
])
def test_differences_name_what_changed(synthetic_root, change, named):
    diffs = fingerprint_differences(_fp(synthetic_root), _fp(synthetic_root, **change))
    for text in named:
        assert any(d.startswith(text) for d in diffs), (text, diffs)


def test_a_changed_case_file_changes_the_dataset_digest(synthetic_root, tmp_path):
    import shutil

    copy = Path(shutil.copytree(synthetic_root, tmp_path / "synthetic"))
    before = _fp(copy)
    label = sorted((copy / "labelsTr").glob("*.nii.gz"))[0]
    label.write_bytes(label.read_bytes() + b"\0")
    assert "dataset digest" in resume_mismatch(before, _fp(copy))


def test_check_resume_names_the_difference_in_one_line(synthetic_root, tmp_path):
    folder = SearchFolder(tmp_path / "c2f_small_synthetic_s0")
    folder.create()
    folder.state["fingerprint"] = _fp(synthetic_root)
    folder.save_state()
    check_resume_fingerprint(SearchFolder(folder.root), _fp(synthetic_root))  # same: fine
    with pytest.raises(UserError) as info:
        check_resume_fingerprint(SearchFolder(folder.root),
                                 _fp(synthetic_root, ["coarse.epochs=5", "fine.lr=0.1"]))
    msg = str(info.value)
    assert msg.startswith("--resume: ") and str(folder.root) in msg and "\n" not in msg
    assert "preset coarse.epochs (3 -> 5)" in msg and "preset fine.lr (0.05 -> 0.1)" in msg


def _search_folder(root: Path, name: str, updated: float | None, mtime: float) -> Path:
    path = root / "raynas" / name
    path.mkdir(parents=True)
    state = {"done": []} if updated is None else {"done": [], "updated": updated}
    (path / "state.json").write_text(json.dumps(state))
    os.utime(path / "state.json", (mtime, mtime))
    os.utime(path, (mtime, mtime))
    return path


@pytest.mark.parametrize("times,expected", [
    # (updated, mtime) of base, _2, _10: the newest by state.json's updated time wins
    ({"": (300, 1), "_2": (100, 3), "_10": (200, 2)}, ""),
    ({"": (100, 3), "_2": (300, 1), "_10": (200, 2)}, "_2"),
    ({"": (100, 1), "_2": (200, 2), "_10": (300, 3)}, "_10"),
    # no updated time (older raynas): state.json's mtime
    ({"": (None, 30), "_2": (None, 10), "_10": (None, 20)}, ""),
])
def test_resume_picks_the_most_recent_search_by_time(tmp_path, times, expected):
    name = "c2f_small_synthetic_s0"
    for suffix, (updated, mtime) in times.items():
        _search_folder(tmp_path, name + suffix, updated, 1_700_000_000 + mtime)
    assert find_folder(tmp_path, "raynas", name, resume=True).root.name == name + expected


def test_save_state_records_created_and_updated(tmp_path):
    folder = SearchFolder(tmp_path / "s")
    folder.create()
    folder.save_state()
    first = json.loads(folder.state_file.read_text())
    time.sleep(0.01)
    folder.save_state()
    again = json.loads(folder.state_file.read_text())
    assert again["created"] == first["created"] and again["updated"] > first["updated"]


def test_cli_resume_with_another_config_exits_2_before_ray(tmp_path):
    """Through the console entry: a search folder saved with coarse.epochs=3, resumed with 5."""
    preset = load_preset("smoke")
    from raynas.pipeline.validate import open_run_dataset

    ds = open_run_dataset("synthetic", None, preset=preset, workdir=tmp_path,
                          plan_cache=tmp_path / "unused", write_plan=False, validate="none")
    space = load_space("c2f_small")
    folder = SearchFolder(tmp_path / "raynas_runs" / "raynas" / "c2f_small_synthetic_s0")
    folder.create()
    folder.state["fingerprint"] = search_fingerprint(preset=preset, space=space, dataset=ds)
    folder.save_state()
    ray_tmp = tmp_path / "ray"
    env = dict(os.environ, RAY_TMPDIR=str(ray_tmp))
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "raynas", "search", "--space", "c2f_small", "--dataset",
         "synthetic", "--preset", "smoke", "--resume", "--set", "coarse.epochs=5"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-2000:]
    lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "preset coarse.epochs (3 -> 5)" in lines[0], done.stderr
    assert str(folder.root) in lines[0]
    assert not ray_tmp.exists()  # Ray never started
    assert time.monotonic() - started < 300
