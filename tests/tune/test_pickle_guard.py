"""The keyed digests of Ray's pickles: what is signed, what is refused, the secret's file (its
mode and its owner), digests bound to one search (no replay from another, no rollback), a stage
with nothing signed (said, and refused), a restore that reads the bytes that were verified, and
a planted ``tuner.pkl`` that ``raynas search --resume`` refuses (exit 2, one line) before anything
unpickles it."""

from __future__ import annotations

import json
import logging
import os
import pickle
import shutil
import stat
import subprocess
import sys
import types
from pathlib import Path

import pytest

from raynas.errors import UserError
from raynas.pipeline.outputs import SearchFolder
from raynas.tune.guard import (
    DIGEST_FILE,
    SearchSeal,
    SigningCallback,
    guarded_files,
    load_secret,
    sign_files,
    signing,
    verify_search,
    verify_stage,
)


def _seal(identity: str = "search-a", **counters: int) -> SearchSeal:
    return SearchSeal(identity, dict(counters))


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
    sign_files(folder, guarded_files(folder), _seal())
    verify_stage(folder, _seal())
    verify_search(tmp_path / "ray", _seal())
    assert (folder / DIGEST_FILE).is_file()


@pytest.mark.parametrize(
    ("change", "culprit", "why"),
    [
        ("tamper", "tuner.pkl", "does not match"),
        ("plant", "searcher-state-2026.pkl", "has no raynas digest"),
        ("plant_trial", "params2.pkl", "has no raynas digest"),
        ("forge", DIGEST_FILE, "not signed with your raynas secret"),
        ("drop_manifest", DIGEST_FILE, "nothing of this stage was signed"),
        ("rename", "experiment_state-2027.json", "has no raynas digest"),
    ],
)
def test_unsigned_or_changed_files_are_refused(
    tmp_path: Path, change: str, culprit: str, why: str
) -> None:
    folder = _stage(tmp_path / "coarse")
    sign_files(folder, guarded_files(folder), _seal())
    planted = _Planted(tmp_path / "pwned")
    if change == "tamper":
        (folder / "tuner.pkl").write_bytes(pickle.dumps(planted))
    elif change == "plant":
        (folder / culprit).write_bytes(pickle.dumps(planted))
    elif change == "plant_trial":
        (folder / "stage_trainable_0_candidate=a" / culprit).write_bytes(pickle.dumps(planted))
    elif change == "forge":  # a digest made with another key does not pass
        (folder / "tuner.pkl").write_bytes(pickle.dumps(planted))
        sign_files(folder, {"tuner.pkl": folder / "tuner.pkl"}, _seal(), b"x" * 64)
    elif change == "drop_manifest":
        (folder / DIGEST_FILE).unlink()
    elif change == "rename":  # digests are bound to the file's name
        (folder / "experiment_state-2026.json").rename(folder / culprit)
    with pytest.raises(UserError, match=why) as info:
        verify_stage(folder, _seal())
    assert culprit in str(info.value) and "\n" not in str(info.value)
    assert not (tmp_path / "pwned").exists()


def test_the_last_few_versions_of_a_file_verify(tmp_path: Path) -> None:
    """The stage folder's copy may lag the staged file raynas signed last."""
    folder = _stage(tmp_path / "coarse")
    state = folder / "experiment_state-2026.json"
    for n in range(3):
        state.write_text(json.dumps({"n": n}))
        sign_files(folder, guarded_files(folder), _seal())
    state.write_text(json.dumps({"n": 0}))
    verify_stage(folder, _seal())


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
    search = SearchFolder(folder)
    search.state["interrupted"] = {"stage": "coarse"}
    search.create()  # a sealed state.json with the search's identity
    sign_files(coarse, guarded_files(coarse), search.search_seal())  # what raynas signed ...
    marker = tmp_path / "pwned"
    (coarse / "tuner.pkl").write_bytes(pickle.dumps(_Planted(marker)))  # ... and a planted file
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


@pytest.mark.skipif(os.getuid() != 0, reason="giving a file to another user needs root")
def test_secret_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    load_secret(path)
    os.chown(path, 4711, 4711)  # mode 0600 still: only its owner may read it, and that is not us
    with pytest.raises(UserError, match="belongs to another user") as info:
        load_secret(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_another_searchs_signed_state_is_refused(tmp_path: Path) -> None:
    """Digests are bound to the search: a stage folder signed for search B, or one file of it
    put into search A's signed folder, does not verify for A."""
    theirs = _stage(tmp_path / "b" / "coarse")
    sign_files(theirs, guarded_files(theirs), _seal("search-b"))
    verify_stage(theirs, _seal("search-b"))
    with pytest.raises(UserError, match="signed for another search"):
        verify_stage(theirs, _seal("search-a"), private_copy=False)
    ours = _stage(tmp_path / "a" / "coarse")
    (ours / "tuner.pkl").write_bytes(pickle.dumps({"tuner": 2}))
    sign_files(ours, guarded_files(ours), _seal("search-a"))
    (ours / "tuner.pkl").write_bytes((theirs / "tuner.pkl").read_bytes())
    with pytest.raises(UserError, match="tuner.pkl: does not match"):
        verify_stage(ours, _seal("search-a"))
    # and another stage's file of the same search, under the same name
    fine = _stage(tmp_path / "a" / "fine")
    sign_files(fine, guarded_files(fine), _seal("search-a"))
    (ours / "tuner.pkl").write_bytes((fine / "tuner.pkl").read_bytes())
    sign_files(fine, {"tuner.pkl": ours / "tuner.pkl"}, _seal("search-a"))
    with pytest.raises(UserError, match="tuner.pkl: does not match"):
        verify_stage(ours, _seal("search-a"))


_KEEP_PLUS = 5  # more signings than digests kept per file


def test_a_rolled_back_stage_is_refused(tmp_path: Path) -> None:
    """An older digest file (and the files it signed) put back: its counter is below the one
    ``state.json`` recorded, so it is refused; the current one verifies."""
    folder = _stage(tmp_path / "coarse")
    recorded: dict[str, int] = {}
    seal = SearchSeal("search-a", record=lambda stage, n: recorded.__setitem__(stage, n))
    sign_files(folder, guarded_files(folder), seal)
    old = tmp_path / "old"
    shutil.copytree(folder, old)
    for n in range(_KEEP_PLUS):  # enough signings that the old digests are dropped too
        (folder / "tuner.pkl").write_bytes(pickle.dumps({"tuner": n + 10}))
        sign_files(folder, guarded_files(folder), seal)
    assert recorded == {"coarse": _KEEP_PLUS + 1}
    verify_stage(folder, _seal(coarse=recorded["coarse"]))
    shutil.rmtree(folder)
    shutil.copytree(old, folder)  # the whole stage folder as it was, digests and all
    with pytest.raises(UserError, match="rolled back") as info:
        verify_stage(folder, _seal(coarse=recorded["coarse"]))
    assert DIGEST_FILE in str(info.value)


def test_nothing_signed_is_said_and_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A stage whose staging folder was never found (no trial named it) signs nothing; it says
    so, and ``--resume`` refuses the stage instead of trusting it."""
    folder = _stage(tmp_path / "coarse")
    with caplog.at_level(logging.WARNING, logger="raynas.tune.guard"):
        with signing(folder, _seal()):
            SigningCallback().on_step_end(1, [])
            SigningCallback().on_experiment_end([])
    said = [r.getMessage() for r in caplog.records if "could be signed" in r.getMessage()]
    assert len(said) == 1 and str(folder) in said[0] and "--resume will refuse" in said[0]
    with pytest.raises(UserError, match="nothing of this stage was signed"):
        verify_stage(folder, _seal())


def test_only_this_tuners_staging_is_signed_wherever_the_folder_is(tmp_path: Path) -> None:
    """The callback signs the staging folder its own trials name, for the stage folder made
    active now; it pickles no path (a moved search folder is signed where it is now)."""
    ours = _stage(tmp_path / "session" / "artifacts" / "t1" / "coarse" / "driver_artifacts")
    theirs = _stage(tmp_path / "session" / "artifacts" / "t0" / "coarse" / "driver_artifacts")
    (theirs / "searcher-state-x.pkl").write_bytes(pickle.dumps(_Planted(tmp_path / "pwned")))
    callback = pickle.loads(pickle.dumps(SigningCallback()))
    assert str(tmp_path).encode() not in pickle.dumps(SigningCallback())
    moved = tmp_path / "moved" / "ray" / "coarse"
    moved.mkdir(parents=True)
    trial = types.SimpleNamespace(local_experiment_path=str(ours))  # a Tune Trial's attribute
    with signing(moved, _seal()):
        callback.on_step_end(1, [trial])
    manifest = json.loads((moved / DIGEST_FILE).read_text())
    assert sorted(manifest["files"]) == sorted(guarded_files(ours))
    assert "searcher-state-x.pkl" not in manifest["files"]


def test_restore_reads_the_bytes_that_were_verified(tmp_path: Path) -> None:
    """Someone holding a signed file open (or a hard link to it) writes into it after the
    check: what is at the path afterwards is still the verified bytes, in a private file."""
    folder = _stage(tmp_path / "coarse")
    sign_files(folder, guarded_files(folder), _seal())
    good = (folder / "tuner.pkl").read_bytes()
    link = tmp_path / "link.pkl"
    os.link(folder / "tuner.pkl", link)
    with open(folder / "tuner.pkl", "r+b") as held:
        verify_stage(folder, _seal())
        held.write(pickle.dumps(_Planted(tmp_path / "pwned")))
    link.write_bytes(pickle.dumps(_Planted(tmp_path / "pwned")))
    assert (folder / "tuner.pkl").read_bytes() == good
    assert stat.S_IMODE((folder / "tuner.pkl").stat().st_mode) == 0o600
    assert not stat.S_IMODE(folder.stat().st_mode) & (stat.S_IWGRP | stat.S_IWOTH)
    verify_stage(folder, _seal())
