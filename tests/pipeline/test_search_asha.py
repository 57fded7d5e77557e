"""Whole searches with ``coarse.strategy=asha`` through the console script: stand-alone coarse
trials under Ray Tune's ASHA, survivors by ``coarse.rank_by`` into the fine stage, retrain,
frontier and MLflow as with the supernet strategy; and a search killed in its coarse stage
resumes (``--resume``) without rerunning or duplicating a trial."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from procs import kill_when, pids_with_marker, stop_pids

pytestmark = [pytest.mark.heavy, pytest.mark.slow, pytest.mark.ray]

SAMPLES = 6
ARGS = [
    "search", "--space", "c2f_small", "--dataset", "synthetic", "--preset", "smoke",
    "--set", "coarse.strategy=asha", "--set", f"coarse.asha_samples={SAMPLES}",
    "--set", "coarse.epochs=3", "--set", "coarse.asha.grace_period=1",
    "--set", "coarse.asha.reduction_factor=2", "--set", "coarse.top_k=2",
    "--set", "fine.epochs=2", "--set", "fine.top_k=1", "--set", "retrain.epochs=2",
    "--set", "retrain.baselines=[]",
    "--set", "data.synthetic_cases=6", "--set", "data.cases=6", "--set", "data.folds=3",
]  # fmt: skip


def _env() -> dict[str, str]:
    ray_tmp = tempfile.mkdtemp(prefix="rna")  # short: Ray's socket paths must stay < 108 chars
    return dict(os.environ, RAY_TMPDIR=ray_tmp, PYTHONUNBUFFERED="1")


def _trial_runs(workdir: Path) -> list:
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{workdir / 'mlflow.db'}")
    exp = client.get_experiment_by_name("raynas")
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    return [r for r in runs if r.data.tags.get("raynas.kind") == "trial"]


def test_asha_search_end_to_end(tmp_path: Path) -> None:
    env = _env()
    try:
        proc = subprocess.run([sys.executable, "-m", "raynas", *ARGS], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=900)  # fmt: skip
    finally:
        stop_pids(pids_with_marker(env["RAY_TMPDIR"]))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    folder = next((tmp_path / "raynas_runs" / "raynas").iterdir())
    state = json.loads((folder / "state.json").read_text())
    assert state["done"] == ["coarse", "fine", "retrain"]
    coarse = state["records"]["coarse"]
    # one stand-alone trial per sampled topology, each reporting its own network
    topologies = [r["last"]["topology"] for r in coarse]
    assert len(coarse) == SAMPLES and len(set(topologies)) == SAMPLES
    assert all(r["last"]["evaluated"] == 1 for r in coarse)
    # ASHA (grace 1, rf 2, max_t 3) stopped some trials before their last epoch
    assert any(r["iterations"] < 3 for r in coarse) and any(r["iterations"] == 3 for r in coarse)
    # the survivors, best rank_score first (rank_by: loss), are what the fine stage searched
    ranked = sorted(coarse, key=lambda r: (-r["last"]["best_rank_score"], r["last"]["params"],
                                           f"{r['candidate']}#{r['sample']}"))  # fmt: skip
    survivors = [r["last"]["topology"] for r in ranked[:2]]
    fine = list(csv.DictReader((folder / "fine.csv").open()))
    assert [row["candidate"] for row in fine] and {row["candidate"] for row in fine} == set(
        survivors)
    log = (folder / "search.log").read_text()
    assert f"coarse selection: #1 {survivors[0]} " in log and "score=" in log
    rows = list(csv.DictReader((folder / "frontier.csv").open()))
    assert {r["kind"] for r in rows} == {"searched", "random"}
    # MLflow: one nested run per coarse trial, tagged stage=coarse like the supernet strategy's
    runs = _trial_runs(tmp_path)
    assert sum(r.data.tags["stage"] == "coarse" for r in runs) == SAMPLES
    assert {r.data.tags["stage"] for r in runs} == {"coarse", "fine", "retrain"}


def _coarse_checkpoints(root: Path) -> list[Path]:
    return list(root.glob("raynas_runs/raynas/*/ray/coarse/*/checkpoint_*"))


def test_asha_search_killed_in_coarse_resumes(tmp_path: Path) -> None:
    env = _env()
    cmd = [sys.executable, "-m", "raynas", *ARGS]
    kill_when(cmd, cwd=tmp_path, env=env, ready=lambda: bool(_coarse_checkpoints(tmp_path)),
              what="a coarse checkpoint")  # fmt: skip
    folder = next((tmp_path / "raynas_runs" / "raynas").iterdir())
    state = json.loads((folder / "state.json").read_text())
    assert not state.get("done") and state["running"] == "coarse"  # killed in the coarse stage
    try:
        done = subprocess.run([*cmd, "--resume"], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=900)  # fmt: skip
    finally:
        stop_pids(pids_with_marker(env["RAY_TMPDIR"]))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    state = json.loads((folder / "state.json").read_text())
    assert state["done"] == ["coarse", "fine", "retrain"] and state["finished"]
    coarse = state["records"]["coarse"]
    assert len(coarse) == SAMPLES and len({r["last"]["topology"] for r in coarse}) == SAMPLES
    assert "coarse stage: restoring" in (folder / "search.log").read_text()
    runs = _trial_runs(tmp_path)
    ids = [r.data.tags["trial_id"] for r in runs]
    assert len(ids) == len(set(ids)), "a trial got a second MLflow run"
    assert sum(r.data.tags["stage"] == "coarse" for r in runs) == SAMPLES
