"""Fault corpus: what ``--resume`` reads back from the output folder, edited by hand.

One tiny search is run through the *installed* ``raynas`` console script and interrupted
(SIGINT) in its retrain stage, so its folder holds finished coarse and fine records, a
selection, and the architecture JSONs retrain trains. Each case copies that work folder, edits
one file as a hostile operator would, and runs ``raynas search ... --resume`` as a subprocess:
exit 2, exactly one stderr line naming the edited file, before Ray starts (no session under the
case's ``RAY_TMPDIR``); MLflow's runs by status unchanged (none RUNNING); every file left as
the case found it (nothing rewritten, no temporary file).
"""

from __future__ import annotations

import collections
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from procs import pids_with_marker, stop_group, stop_pids

pytestmark = [pytest.mark.slow, pytest.mark.ray, pytest.mark.heavy]

RAYNAS = str(Path(sys.executable).with_name("raynas"))
ARGS = [
    "search", "--space", "c2f_small", "--dataset", "synthetic", "--preset", "smoke",
    "--set", "coarse.epochs=1", "--set", "coarse.eval_topologies=1",
    "--set", "coarse.population=1", "--set", "coarse.generations=0", "--set", "coarse.top_k=1",
    "--set", "coarse.asha.enabled=false", "--set", "fine.epochs=1",
    "--set", "fine.warmup_epochs=0", "--set", "fine.asha.enabled=false",
    "--set", "retrain.epochs=4", "--set", "retrain.baselines=[]",
    "--set", "data.synthetic_cases=6", "--set", "data.cases=6", "--set", "data.folds=3",
]  # fmt: skip


def _env(ray_tmp: str) -> dict[str, str]:
    return dict(os.environ, RAY_TMPDIR=ray_tmp, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")


def _folder(work: Path) -> Path:
    return next((work / "raynas_runs" / "raynas").iterdir())


def _state(work: Path) -> dict:
    try:
        return json.loads((_folder(work) / "state.json").read_text())
    except (OSError, ValueError, StopIteration):
        return {}


def _runs_by_status(work: Path) -> dict[str, int]:
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{work / 'mlflow.db'}")
    exp = client.get_experiment_by_name("raynas")
    runs = [] if exp is None else client.search_runs([exp.experiment_id], max_results=1000)
    return dict(collections.Counter(r.info.status for r in runs))


def _files(work: Path) -> dict[str, bytes]:
    root = _folder(work)
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A work folder whose search was interrupted (SIGINT) once its retrain stage ran."""
    work = tmp_path_factory.mktemp("interrupted")
    ray_tmp = tempfile.mkdtemp(prefix="rfs")  # short: Ray's socket paths < 108 chars
    err = work / "stderr.txt"
    with err.open("w") as handle:
        proc = subprocess.Popen(
            [RAYNAS, *ARGS], cwd=work, env=_env(ray_tmp), start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=handle,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 600
        while _state(work).get("running") != "retrain":
            assert proc.poll() is None, f"the search ended early: {err.read_text()[-3000:]}"
            assert time.monotonic() < deadline, "the retrain stage did not start in 10 minutes"
            time.sleep(0.3)
        os.kill(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=180) == 130, err.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            stop_group(proc.pid)
            proc.wait(timeout=30)
        stop_pids(pids_with_marker(ray_tmp))
        shutil.rmtree(ray_tmp, ignore_errors=True)
    state = _state(work)
    assert state["done"] == ["coarse", "fine"] and state["interrupted"]["stage"] == "retrain"
    assert list((_folder(work) / "architectures").glob("searched0-*.json"))
    return work


def _other_ops(arch_json: str) -> str:
    """The same architecture (still valid) with every cell's operations changed."""
    arch = json.loads(arch_json)
    swap = {"skip": "p3d", "p3d": "conv3d", "conv3d": "skip", "conv2d_in_3d": "p3d"}
    arch["ops"] = [[swap.get(op, "skip") for op in cell] for cell in arch["ops"]]
    return json.dumps(arch, indent=2)


def _edit_record(folder: Path) -> Path:
    path = folder / "state.json"
    state = json.loads(path.read_text())
    last = state["records"]["fine"][0]["last"]
    last["arch_json"] = _other_ops(last["arch_json"])
    path.write_text(json.dumps(state, indent=1, sort_keys=True))
    return path


def _edit_score(folder: Path) -> Path:
    path = folder / "state.json"
    state = json.loads(path.read_text())
    for record in state["records"]["coarse"]:  # another cluster would be selected
        record["best_dice"] = 1.0 - record["best_dice"]
    path.write_text(json.dumps(state, indent=1, sort_keys=True))
    return path


def _edit_architecture(folder: Path) -> Path:
    path = next((folder / "architectures").glob("searched0-*.json"))
    path.write_text(_other_ops(path.read_text()))
    return path


def _edit_done(folder: Path) -> Path:
    path = folder / "state.json"
    state = json.loads(path.read_text())
    state["done"].append("retrain")  # while retrain was interrupted: no records for it
    path.write_text(json.dumps(state, indent=1, sort_keys=True))
    return path


CASES: dict[str, Callable[[Path], Path]] = {
    "edited_record": _edit_record,
    "edited_score": _edit_score,
    "edited_architecture": _edit_architecture,
    "edited_done": _edit_done,
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_edited_file_is_refused_before_ray(interrupted: Path, tmp_path: Path, case: str) -> None:
    work = tmp_path / "work"
    shutil.copytree(interrupted, work, symlinks=True)
    edited = CASES[case](_folder(work))
    before_runs, before_files = _runs_by_status(work), _files(work)
    ray_tmp = tempfile.mkdtemp(prefix="rfc")
    try:
        proc = subprocess.run(
            [RAYNAS, *ARGS, "--resume"], cwd=work, env=_env(ray_tmp), capture_output=True,
            text=True, timeout=300, start_new_session=True,
        )  # fmt: skip
        ray_started = any(Path(ray_tmp).rglob("session_*"))
    finally:
        stop_pids(pids_with_marker(ray_tmp))
        shutil.rmtree(ray_tmp, ignore_errors=True)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-3000:]
    assert str(edited) in lines[0] and "raynas" in lines[0], lines[0]
    assert not ray_started, "Ray started before the edited file was refused"
    after_runs = _runs_by_status(work)
    assert after_runs == before_runs and "RUNNING" not in after_runs, after_runs
    assert after_runs.get("KILLED", 0) >= 1  # the interrupted parent (and its open trials)
    assert _files(work) == before_files  # nothing rewritten, nothing left behind
