"""Kill a search mid-stage, then ``--resume``: it completes without re-running finished trials
and without duplicating MLflow runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from procs import kill_when, pids_with_marker, stop_pids

pytestmark = [pytest.mark.slow, pytest.mark.ray]

ARGS = [
    "search",
    "--space",
    "c2f_small",
    "--dataset",
    "synthetic",
    "--preset",
    "smoke",
    "--set",
    "coarse.epochs=1",
    "--set",
    "coarse.eval_topologies=1",
    "--set",
    "coarse.population=1",
    "--set",
    "coarse.generations=0",
    "--set",
    "coarse.top_k=1",
    "--set",
    "fine.epochs=6",
    "--set",
    "fine.warmup_epochs=1",
    "--set",
    "fine.asha.enabled=false",
    "--set",
    "retrain.epochs=1",
    "--set",
    "retrain.baselines=[]",
    "--set",
    "data.synthetic_cases=6",
    "--set",
    "data.cases=6",
    "--set",
    "data.folds=3",
]


def _fine_checkpoints(root: Path) -> list[Path]:
    return list(root.glob("raynas_runs/raynas/*/ray/fine/*/checkpoint_*"))


def test_kill_mid_stage_then_resume(tmp_path: Path) -> None:
    ray_tmp = tempfile.mkdtemp(prefix="rnr")  # short: Ray's socket paths must stay < 108 chars
    env = dict(os.environ, RAY_TMPDIR=ray_tmp, PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "raynas", *ARGS]
    kill_when(cmd, cwd=tmp_path, env=env, ready=lambda: bool(_fine_checkpoints(tmp_path)),
              what="a fine-stage checkpoint")  # fmt: skip

    folder = next((tmp_path / "raynas_runs" / "raynas").iterdir())
    state = json.loads((folder / "state.json").read_text())
    assert state["done"] == ["coarse"]  # killed in the fine stage
    coarse_trials = len(state["records"]["coarse"])

    try:
        done = subprocess.run(
            [*cmd, "--resume"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
    finally:
        stop_pids(pids_with_marker(ray_tmp))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    state = json.loads((folder / "state.json").read_text())
    assert state["done"] == ["coarse", "fine", "retrain"] and state["finished"]
    assert "coarse stage: finished earlier, skipped" in (folder / "search.log").read_text()

    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = client.get_experiment_by_name("raynas")
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    parents = [r for r in runs if r.data.tags.get("raynas.kind") == "search"]
    assert len(parents) == 1  # the resumed search reused its parent run
    trials = [r for r in runs if r.data.tags.get("raynas.kind") == "trial"]
    ids = [r.data.tags["trial_id"] for r in trials]
    assert len(ids) == len(set(ids)), "a trial got a second MLflow run"
    assert sum(r.data.tags["stage"] == "coarse" for r in trials) == coarse_trials
    for run in trials:  # "epoch" is the step; each stage logs its per-epoch Dice under a name
        stage = run.data.tags["stage"]
        key = "dice" if stage == "retrain" else f"{stage}/dice"
        steps = [m.step for m in client.get_metric_history(run.info.run_id, key)]
        assert len(steps) == len(set(steps)), f"{run.info.run_name} logged an epoch twice"
    fine = [r for r in trials if r.data.tags["stage"] == "fine"]
    for run in fine:
        history = client.get_metric_history(run.info.run_id, "fine/dice")
        assert max(m.step for m in history) == 6  # the interrupted trial finished its epochs
