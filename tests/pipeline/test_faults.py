"""A full disk while writing outputs (raynas.pipeline.faults, SearchFolder's atomic writes):
on a real small file system (a tmpfs mounted by the test; skipped where it cannot mount one)
no write leaves a partial or temporary file, the clean-up never raises in place of the first
error, and the error becomes one line naming the path. Real MLflow store, no Ray."""

from __future__ import annotations

import contextlib
import errno
import json
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from raynas.errors import RunError
from raynas.pipeline.faults import run_fault, stop_on_fault, trial_fault
from raynas.pipeline.outputs import SearchFolder
from raynas.pipeline.setup import SearchSetup
from raynas.tune import TrialRecord


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs, filled up but for a few bytes, with a search folder on it that holds a
    ``state.json`` written before the disk filled."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.strip()[:200]}")
    try:
        folder = SearchFolder(disk / "runs" / "search")
        folder.create()
        folder.state.update(running="coarse")
        folder.save_state()
        with contextlib.suppress(OSError), open(disk / "filler", "wb") as fh:
            while True:
                fh.write(b"\0" * 4096)
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def _temporary(root: Path) -> list[str]:
    return [p.name for p in root.rglob(".tmp*")] + [p.name for p in root.rglob("*.tmp")]


def test_outputs_on_a_full_disk_leave_no_partial_file(full_disk: Path) -> None:
    folder = SearchFolder(full_disk / "runs" / "search")
    before = folder.state_file.read_text()
    folder.state["records"] = {"coarse": [{"x": "y" * 100_000}]}
    with pytest.raises(OSError) as info:
        folder.save_state()
    assert info.value.errno == errno.ENOSPC
    with pytest.raises(OSError):
        folder.write_table("coarse", [{"a": "b" * 100_000}])
    with pytest.raises(OSError):
        folder.write_architecture("x", json.dumps({"pad": "c" * 100_000}))
    assert folder.state_file.read_text() == before  # the last whole state, for --resume
    assert _temporary(full_disk) == []
    assert not (folder.root / "coarse.csv").exists()
    assert not (folder.root / "architectures" / "x.json").exists()


def test_fault_clean_up_marks_runs_killed_and_never_raises(full_disk: Path, tmp_path: Path) -> None:
    """The stage cannot be marked interrupted (the disk is full): the runs are still KILLED,
    nothing is raised in place of the fault, and state.json keeps its last whole content."""
    from raynas.tracking import (
        client_for,
        create_trial_run,
        ensure_experiment,
        prepare_store,
        resolve_tracking_uri,
        start_parent_run,
    )

    target = prepare_store(resolve_tracking_uri(str(tmp_path / "store"), workdir=tmp_path))
    exp = ensure_experiment(target, "faults")
    parent = start_parent_run(target, exp, run_name="p", params={}, tags={})
    child = create_trial_run(target, exp, parent_run_id=parent, run_name="t", stage="coarse",
                             trial_id="t0", params={}, tags={})  # fmt: skip
    folder = SearchFolder(full_disk / "runs" / "search")
    setup = SearchSetup(
        preset=None, space=None, space_ref="", dataset=None, target=target,
        folder=folder, seed=0, experiment_id=exp, parent_run_id=parent,
    )  # fmt: skip
    fault = run_fault(OSError(errno.ENOSPC, "No space left on device", str(folder.state_file)))
    assert fault is not None
    stop_on_fault(setup, fault)  # must not raise
    client = client_for(target)
    assert {client.get_run(r).info.status for r in (parent, child)} == {"KILLED"}
    assert json.loads(folder.state_file.read_text())["running"] == "coarse"
    assert _temporary(full_disk) == []


class _TuneError(Exception):
    """Stands for ray.tune's TuneError: what fit() raises around a callback's exception."""


def _wrapped(inner: BaseException) -> BaseException:
    try:
        try:
            raise inner
        except BaseException as exc:
            raise _TuneError("The Ray Tune run failed.") from exc
    except _TuneError as outer:
        return outer


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (OSError(errno.ENOSPC, "No space left on device", "/r/x/state.json"),
         "cannot write /r/x/state.json: No space left on device (ENOSPC)"),
        (_wrapped(OSError(errno.EFBIG, "File too large", "/r/ray/coarse/x.pkl")),
         "cannot write /r/ray/coarse/x.pkl: File too large (EFBIG)"),
        (_wrapped(sqlite3.OperationalError("database or disk is full")),
         "the MLflow store's disk is full"),
        (_wrapped(RunError("the store /s/mlflow.db was deleted; ... --resume")), "was deleted"),
        (ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"), None),
        (ValueError("a bug"), None),
    ],
    ids=["enospc", "in-tune-error", "sqlite-full", "store-vanished", "network", "bug"],
)  # fmt: skip
def test_run_fault_finds_the_first_cause(exc: BaseException, expected: str | None) -> None:
    fault = run_fault(exc)
    if expected is None:
        assert fault is None
    else:
        assert fault is not None and expected in str(fault), fault
        assert "\n" not in str(fault) and "--resume" in str(fault)


def test_trial_that_could_not_write_is_a_fault_not_a_result() -> None:
    def record(status: str, error: str | None) -> TrialRecord:
        return TrialRecord(
            trial_id="a1", candidate="cluster0", status=status, iterations=1, best_dice=0.0,
            last={}, checkpoint=None, error=error,
        )  # fmt: skip

    assert trial_fault([record("done", None), record("failed", "ValueError: nan loss")]) is None
    fault = trial_fault([record("failed", "OSError: [Errno 28] No space left on device: '/r/c'")])
    assert fault is not None and "trial a1 (cluster0)" in str(fault) and "/r/c" in str(fault)
