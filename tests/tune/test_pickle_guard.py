"""The keyed digests of Ray's pickles: what is signed, what is refused, the secret's file, and a
planted ``tuner.pkl`` that ``raynas search --resume`` refuses (exit 2, one line) before anything
unpickles it."""

from __future__ import annotations

import json
import os
import pickle
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from raynas.errors import UserError
from raynas.tune.guard import (
    DIGEST_FILE,
    guarded_files,
    load_secret,
    sign_files,
    verify_search,
    verify_stage,
)


class _Planted:
    """A pickle that creates ``path`` when it is loaded."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


def _stage(folder: Path) -> Path:
    """A stage folder as Ray Tune leaves it (the parts the guard looks at)."""
    trial = folder / "stage_trainable_0_candidate=a"
    (trial / "checkpoint_000000").mkdir(parents=True)
    (folder / "tuner.pkl").write_bytes(pickle.dumps({"tuner": 1}))
    (folder / "experiment_state-2026.json").write_text('{"trial_data": []}')
    (folder / "basic-variant-state-2026.json").write_bytes(pickle.dumps({"variants": 1}))
    (trial / "params.pkl").write_bytes(pickle.dumps({"candidate": "a"}))
    (trial / "result.json").write_text("{}")
    (trial / "checkpoint_000000" / "state.pt").write_bytes(b"weights")
    return folder


def test_guarded_files_are_the_top_level_files_and_every_pickle(tmp_path: Path) -> None:
    folder = _stage(tmp_path / "coarse")
    assert sorted(guarded_files(folder)) == [
        "basic-variant-state-2026.json",
        "experiment_state-2026.json",
        "stage_trainable_0_candidate=a/params.pkl",
        "tuner.pkl",
    ]


def test_signed_stage_verifies(tmp_path: Path) -> None:
    folder = _stage(tmp_path / "ray" / "coarse")
    sign_files(folder, guarded_files(folder))
    verify_stage(folder)
    verify_search(tmp_path / "ray")
    assert (folder / DIGEST_FILE).is_file()


@pytest.mark.parametrize(
    ("change", "culprit", "why"),
    [
        ("tamper", "tuner.pkl", "does not match"),
        ("plant", "searcher-state-2026.pkl", "has no raynas digest"),
        ("plant_trial", "params2.pkl", "has no raynas digest"),
        ("forge", "tuner.pkl", "does not match"),
        ("drop_manifest", "", "has no raynas digest"),
        ("rename", "experiment_state-2027.json", "has no raynas digest"),
    ],
)
def test_unsigned_or_changed_files_are_refused(
    tmp_path: Path, change: str, culprit: str, why: str
) -> None:
    folder = _stage(tmp_path / "coarse")
    sign_files(folder, guarded_files(folder))
    planted = _Planted(tmp_path / "pwned")
    if change == "tamper":
        (folder / "tuner.pkl").write_bytes(pickle.dumps(planted))
    elif change == "plant":
        (folder / culprit).write_bytes(pickle.dumps(planted))
    elif change == "plant_trial":
        (folder / "stage_trainable_0_candidate=a" / culprit).write_bytes(pickle.dumps(planted))
    elif change == "forge":  # a digest made with another key does not pass
        (folder / "tuner.pkl").write_bytes(pickle.dumps(planted))
        sign_files(folder, {"tuner.pkl": folder / "tuner.pkl"}, key=b"x" * 64)
    elif change == "drop_manifest":
        (folder / DIGEST_FILE).unlink()
    elif change == "rename":  # digests are bound to the file's name
        (folder / "experiment_state-2026.json").rename(folder / culprit)
    with pytest.raises(UserError, match=why) as info:
        verify_stage(folder)
    assert culprit in str(info.value) and "\n" not in str(info.value)
    assert not (tmp_path / "pwned").exists()


def test_the_last_few_versions_of_a_file_verify(tmp_path: Path) -> None:
    """The stage folder's copy may lag the staged file raynas signed last."""
    folder = _stage(tmp_path / "coarse")
    state = folder / "experiment_state-2026.json"
    for n in range(3):
        state.write_text(json.dumps({"n": n}))
        sign_files(folder, guarded_files(folder))
    state.write_text(json.dumps({"n": 0}))
    verify_stage(folder)


def test_secret_is_created_private_and_refused_when_others_can_read_it(tmp_path: Path) -> None:
    path = tmp_path / "cfg" / "raynas" / "secret"
    key = load_secret(path)
    assert len(key) >= 32 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_secret(path) == key
    path.chmod(0o644)
    with pytest.raises(UserError, match="chmod 600"):
        load_secret(path)


def test_secret_file_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from raynas.tune.guard import secret_path

    monkeypatch.setenv("RAYNAS_SECRET_FILE", str(tmp_path / "k"))
    assert secret_path() == tmp_path / "k"
    monkeypatch.delenv("RAYNAS_SECRET_FILE")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert secret_path() == tmp_path / "xdg" / "raynas" / "secret"


def test_planted_tuner_pkl_is_refused_on_resume(tmp_path: Path) -> None:
    """A search folder whose ``ray/coarse/tuner.pkl`` was replaced by a pickle that would
    create a file: ``--resume`` exits 2 with one line naming it, the file is not created, and
    Ray never starts."""
    folder = tmp_path / "raynas_runs" / "raynas" / "c2f_small_synthetic_s0"
    coarse = _stage(folder / "ray" / "coarse")
    sign_files(coarse, guarded_files(coarse))  # what raynas signed ...
    marker = tmp_path / "pwned"
    (coarse / "tuner.pkl").write_bytes(pickle.dumps(_Planted(marker)))  # ... and a planted file
    (folder / "state.json").write_text(json.dumps({"interrupted": {"stage": "coarse"}}))
    ray_tmp = tmp_path / "rt"
    env = dict(os.environ, RAY_TMPDIR=str(ray_tmp), PYTHONUNBUFFERED="1")
    args = ["--space", "c2f_small", "--dataset", "synthetic", "--preset", "smoke", "--resume"]
    proc = subprocess.run(
        [sys.executable, "-m", "raynas", "search", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and str(coarse / "tuner.pkl") in lines[0], proc.stderr
    assert "does not match its raynas digest" in lines[0]
    assert not marker.exists()
    assert not ray_tmp.exists()  # refused before Ray started
    # the planted pickle is live: loading it is what would have created the file
    pickle.loads((coarse / "tuner.pkl").read_bytes())
    assert marker.exists()
