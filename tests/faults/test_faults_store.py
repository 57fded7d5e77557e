"""The fault corpus of the tracking store, the disk and the driver, through the installed
``raynas`` console script: each case injects its fault into a tiny search and checks the exit
code, the stderr line count, the MLflow runs by status, ``state.json`` and the files left.

======================  ====  ======  =========================  ==========================
case                    exit  stderr  runs                       left
======================  ====  ======  =========================  ==========================
two searches, new store 130   1 each  2 parents KILLED, 0 RUNNING  one store, its lock
store deleted mid-run   1     1       (the store is gone)        stage interrupted, no db
  then --resume, no db  2     1       -                          no db recreated, no Ray
full disk mid-run       1     1       0 RUNNING                  no .tmp-* file
kill -9 of the driver   -9    -       -                          next start stops orphans
======================  ====  ======  =========================  ==========================

The full disk is real where the test can make one: a tmpfs mounted for the test (root with
``CAP_SYS_ADMIN``, as on the CI machine); elsewhere the case is skipped (a quota-like stand-in
such as ``RLIMIT_FSIZE`` would also stop Ray's own processes, which is not what a full disk
does). The disk fills (a filler file takes the rest) once the search is in its coarse stage.

Each case uses its own ``RAY_TMPDIR`` and stops exactly the processes that mention it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from procs import pids_with_marker, stop_pids

pytestmark = [pytest.mark.slow, pytest.mark.ray, pytest.mark.heavy]

RAYNAS = str(Path(sys.executable).with_name("raynas"))
TINY = [
    "search", "--space", "c2f_small", "--dataset", "synthetic", "--preset", "smoke",
    *("--set", "coarse.epochs=1", "--set", "coarse.eval_topologies=2"),
    *("--set", "coarse.population=2", "--set", "coarse.top_k=1", "--set", "fine.epochs=2"),
    *("--set", "fine.warmup_epochs=1", "--set", "retrain.epochs=1"),
    *("--set", "coarse.steps_per_epoch=2", "--set", "fine.steps_per_epoch=2"),
    *("--set", "retrain.steps_per_epoch=2", "--set", "retrain.baselines=[]"),
    *("--set", "data.synthetic_cases=6", "--set", "data.cases=6", "--set", "data.folds=3"),
]  # fmt: skip
FOLDER = Path("raynas") / "c2f_small_synthetic_s0"


@contextlib.contextmanager
def _ray_tmp() -> Iterator[Path]:
    """A short ``RAY_TMPDIR`` of the case (Ray's socket paths must stay under 108 bytes); the
    processes that mention it are stopped afterwards, whatever happened."""
    path = Path(tempfile.mkdtemp(prefix="rn-fault-"))
    try:
        yield path
    finally:
        stop_pids(pids_with_marker(str(path)))


def _start(work: Path, ray_tmp: Path, *args: str) -> subprocess.Popen:
    env = dict(os.environ, RAY_TMPDIR=str(ray_tmp), PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    env.pop("RAY_ADDRESS", None)
    return subprocess.Popen(
        [RAYNAS, *TINY, *args], cwd=work, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip


def _state(folder: Path) -> dict:
    try:
        return json.loads((folder / "state.json").read_text())
    except (OSError, ValueError):
        return {}


def _wait(proc: subprocess.Popen, ready: Callable[[], bool], timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"search ended ({proc.returncode}) before the fault: {err[-3000:]}")
        assert time.monotonic() < deadline, "the search did not get there in time"
        time.sleep(0.3)


def _lines(err: str) -> list[str]:
    return err.strip().splitlines()


def _runs(db: Path) -> Counter:
    """``(raynas.kind, status)`` of every run in the store."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{db}")
    ids = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(ids, max_results=1000)
    return Counter((r.data.tags.get("raynas.kind"), r.info.status) for r in runs)


def _temporary_files(*roots: Path) -> list[Path]:
    return [p for r in roots for p in r.rglob("*") if p.name.startswith((".tmp-", ".mlflow.db."))]


def test_two_searches_on_one_new_store(tmp_path: Path) -> None:
    """Both searches open the same new ``sqlite:///`` store at once; both get through set-up
    (one waits for the other's lock) and are then interrupted: 130 each, one line each, two
    parent runs KILLED, one complete store."""
    db = tmp_path / "store" / "mlflow.db"
    uri = f"sqlite:///{db}"
    works = [tmp_path / "a", tmp_path / "b"]
    with _ray_tmp() as ray_a, _ray_tmp() as ray_b:
        procs = []
        for work, ray_tmp in zip(works, (ray_a, ray_b), strict=True):
            work.mkdir()
            procs.append(_start(work, ray_tmp, "--tracking-uri", uri))
        for work, proc in zip(works, procs, strict=True):
            _wait(proc, lambda w=work: "parent_run_id" in _state(w / "raynas_runs" / FOLDER))
        for proc in procs:
            proc.send_signal(signal.SIGINT)
        results = [proc.communicate(timeout=120) for proc in procs]
    for proc, (_out, err) in zip(procs, results, strict=True):
        assert proc.returncode == 130, err[-3000:]
        assert len(_lines(err)) == 1 and "--resume" in err, err[-3000:]
    runs = _runs(db)
    assert runs[("search", "KILLED")] == 2, runs
    assert not [k for k in runs if k[1] == "RUNNING"], runs
    names = sorted(p.name for p in db.parent.iterdir())
    assert names == ["mlartifacts", "mlflow.db", "mlflow.db.lock"], names


def test_store_deleted_mid_run_then_resume_without_it(tmp_path: Path) -> None:
    """The store is deleted while the coarse stage runs: one line naming it, exit 1, the stage
    marked interrupted, no store recreated; ``--resume`` without it: one line, exit 2."""
    db = tmp_path / "mlflow.db"
    folder = tmp_path / "raynas_runs" / FOLDER
    with _ray_tmp() as ray_tmp:
        proc = _start(tmp_path, ray_tmp)
        _wait(proc, lambda: _state(folder).get("running") in ("coarse", "fine"))
        db.unlink()
        _out, err = proc.communicate(timeout=300)
        assert pids_with_marker(str(ray_tmp)) == []  # Ray stopped by the run itself
    assert proc.returncode == 1, err[-3000:]
    (line,) = _lines(err)
    assert str(db) in line and "was deleted while the run used it" in line, line
    state = _state(folder)
    assert state["interrupted"]["stage"] in ("coarse", "fine") and "running" not in state, state
    assert not db.exists()
    assert _temporary_files(tmp_path) == []

    with _ray_tmp() as ray_tmp:
        again = _start(tmp_path, ray_tmp, "--resume")
        _out, err = again.communicate(timeout=300)
        assert not any(ray_tmp.rglob("session_*"))  # refused before Ray
    assert again.returncode == 2, err[-3000:]
    (line,) = _lines(err)
    assert line.startswith("error: --resume: the MLflow store") and str(db) in line, line
    assert not db.exists()


@contextlib.contextmanager
def _small_disk(path: Path, size: str) -> Iterator[Path]:
    path.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.strip()[:200]}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_full_disk_mid_run(tmp_path: Path) -> None:
    """``--storage-path`` on a small file system that fills during the coarse stage: one line
    naming the path and ``No space left on device``, exit 1, no run left RUNNING, no temporary
    file left; ``state.json`` is whole (the stage marked interrupted, or, where even that
    could not be written, still the running stage: ``--resume`` continues from either)."""
    db = tmp_path / "mlflow.db"
    with _small_disk(tmp_path / "disk", "64m") as disk, _ray_tmp() as ray_tmp:
        folder = disk / "runs" / FOLDER
        proc = _start(tmp_path, ray_tmp, "--storage-path", str(disk / "runs"))
        _wait(proc, lambda: _state(folder).get("running") == "coarse")
        with contextlib.suppress(OSError), open(disk / "filler", "wb") as fh:
            while True:
                fh.write(b"\0" * (1 << 20))
        _out, err = proc.communicate(timeout=300)
        assert pids_with_marker(str(ray_tmp)) == []
        state = _state(folder)
        left = _temporary_files(disk, tmp_path)
    assert proc.returncode == 1, err[-3000:]
    # one error line; where the disk fills while a warning is being written (timing), that
    # warning may stand before it, never a traceback
    lines = _lines(err)
    errors = [ln for ln in lines if ln.startswith("error: ")]
    assert len(errors) == 1 and all(ln.startswith(("error: ", "warning: ")) for ln in lines), err
    (line,) = errors
    assert line.startswith("error: ") and "No space left on device" in line, line
    assert str(disk) in line, line
    assert state.get("interrupted", {}).get("stage") == "coarse" or state["running"] == "coarse"
    runs = _runs(db)
    assert runs and not [k for k in runs if k[1] == "RUNNING"], runs
    assert left == [], left


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"


def test_killed_driver_orphans_are_stopped_by_the_next_start(tmp_path: Path) -> None:
    """kill -9 of the driver leaves its Ray's processes running (parent pid 1); the next start
    (here ``--resume``) stops them, found by the dead driver's session record, before its own
    Ray starts; the resumed search is then interrupted (130)."""
    folder = tmp_path / "raynas_runs" / FOLDER
    with _ray_tmp() as ray_tmp:
        proc = _start(tmp_path, ray_tmp)
        _wait(proc, lambda: _state(folder).get("running") == "coarse"
              and any(_cmdline(p).startswith("ray::") for p in pids_with_marker(str(ray_tmp))))
        (record,) = ray_tmp.rglob("raynas_driver.json")
        proc.kill()
        proc.communicate(timeout=60)
        # Ray's GCS and raylet die with the driver; its agents and workers linger for a while
        # (seconds, by load): the orphans are taken at once, before they could go by themselves
        orphans = [p for p in pids_with_marker(str(ray_tmp)) if _alive(p)]
        assert orphans, "a killed driver's Ray left nothing running (nothing to test)"
        again = _start(tmp_path, ray_tmp, "--resume")
        _wait(again, lambda: len(list(ray_tmp.rglob("raynas_driver.json"))) == 1 and not
              record.exists())  # fmt: skip
        still = [p for p in orphans if _alive(p)]
        again.send_signal(signal.SIGINT)
        _out, err = again.communicate(timeout=120)
    assert still == [], still
    assert record.with_name("raynas_driver.json.stopped").is_file()
    assert again.returncode == 130, err[-3000:]
    assert len(_lines(err)) == 1, err[-3000:]
