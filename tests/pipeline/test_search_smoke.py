"""End-to-end smoke searches on CPU through the real CLI, Ray (local, 127.0.0.1) and MLflow."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.ray]

SMOKE = [
    # Keep the test inside a few minutes on 2 cores: fewer epochs than the smoke preset.
    "--set",
    "coarse.epochs=2",
    "--set",
    "fine.epochs=2",
    "--set",
    "retrain.epochs=2",
    "--set",
    "coarse.eval_topologies=2",
    "--set",
    "coarse.population=2",
]


def _search(workdir: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run(
        [sys.executable, "-m", "raynas", "search", *args],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _runs(workdir: Path):
    from raynas.tracking import client_for, resolve_tracking_uri

    target = resolve_tracking_uri(None, workdir=workdir)
    client = client_for(target)
    exp = client.get_experiment_by_name("raynas")
    return client.search_runs([exp.experiment_id], max_results=1000)


@pytest.mark.parametrize(
    ("space", "dataset"),
    [("c2f", "synthetic"), ("thrifty", "synthetic2d")],
)
def test_smoke_search_end_to_end(tmp_path: Path, space: str, dataset: str) -> None:
    extra = ["--set", "data.synthetic_cases=6", "--set", "data.cases=6", "--set", "data.folds=3"]
    if space == "thrifty":
        extra += [
            "--set",
            "data.patch_size=[32, 32, 1]",
            "--set",
            "data.retrain_patch_size=[32, 32, 1]",
        ]
    proc = _search(
        tmp_path, "--space", space, "--dataset", dataset, "--preset", "smoke", *SMOKE, *extra
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Pareto frontier" in proc.stdout and "mlflow ui --backend-store-uri" in proc.stdout
    stopped = int(proc.stdout.split("ASHA stopped ")[1].split()[0])
    assert stopped >= 1, "ASHA stopped no trial before its last epoch"

    folder = next((tmp_path / "raynas_runs" / "raynas").iterdir())
    for name in (
        "coarse.csv",
        "fine.csv",
        "retrain.csv",
        "frontier.csv",
        "frontier.png",
        "search.log",
        "state.json",
    ):
        assert (folder / name).is_file(), name
    assert list((folder / "architectures").glob("*.json"))
    # the time split per stage, in search.log and in the end-of-search summary
    log = (folder / "search.log").read_text()
    for stage in ("coarse", "fine", "retrain"):
        assert f"{stage} time: " in log and f"{stage} time: " in proc.stdout, stage
    assert "train " in log.split("coarse time: ")[1].splitlines()[0]
    assert list((folder / "models").glob("*.pt"))

    runs = _runs(tmp_path)
    parents = [r for r in runs if r.data.tags.get("raynas.kind") == "search"]
    assert len(parents) == 1
    parent = parents[0]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert {r.data.tags["stage"] for r in children} == {"coarse", "fine", "retrain"}
    assert any(r.data.tags.get("pareto") == "true" for r in children)
    artifacts = {
        a.path
        for a in __import__("mlflow")
        .MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
        .list_artifacts(parent.info.run_id)
    }
    assert {"pareto.csv", "pareto.json", "pareto.png"} <= artifacts
    # the UI can chart Dice against parameters across runs: every retrain run carries both
    retrain = [r for r in children if r.data.tags["stage"] == "retrain"]
    assert retrain and all({"dice", "params"} <= set(r.data.metrics) for r in retrain)
    split = {f"time_{p}_s" for p in ("train", "data", "eval", "ckpt", "other", "epoch")}
    assert all(split <= set(r.data.metrics) for r in children)  # logged to MLflow per epoch
    assert parent.data.tags.get("best_model")  # the best retrained model, logged as a model
    # no trial ran twice: one MLflow run per Ray trial id
    trial_ids = [r.data.tags["trial_id"] for r in children]
    assert len(trial_ids) == len(set(trial_ids))


def test_bad_input_fails_before_any_trial(tmp_path: Path) -> None:
    proc = _search(
        tmp_path,
        "--space",
        "c2f_small",
        "--dataset",
        "msd_task02",
        "--data-root",
        str(tmp_path / "missing"),
        "--preset",
        "smoke",
        timeout=120,
    )
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "missing" in proc.stderr
    assert not (tmp_path / "raynas_runs").exists()

    proc = _search(
        tmp_path,
        "--space",
        "c2f_small",
        "--dataset",
        "synthetic",
        "--preset",
        "smoke",
        "--tracking-uri",
        "http://127.0.0.1:9",
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "127.0.0.1:9" in proc.stderr
    assert not (tmp_path / "raynas_runs").exists()
