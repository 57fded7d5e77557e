"""log_pytorch_model: logged under the run's experiment, loads back, leaks no global state."""

from __future__ import annotations

import json
import os
from pathlib import Path

import mlflow
import mlflow.pytorch
import pytest
import torch
from mlflow.tracking import MlflowClient

from raynas.tracking import (
    TrackingTarget,
    create_trial_run,
    load_pytorch_model,
    log_pytorch_model,
    start_parent_run,
)


def test_log_pytorch_model_round_trip(
    target: TrackingTarget,
    experiment_id: str,
    tmp_path: Path,
    capfd: pytest.CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", raising=False)
    torch.set_num_threads(2)
    torch.manual_seed(0)
    parent = start_parent_run(target, experiment_id, run_name="p", params={}, tags={})
    run_id = create_trial_run(
        target,
        experiment_id,
        parent_run_id=parent,
        run_name="best",
        stage="retrain",
        trial_id="best",
        params={"lr": 0.1},
        tags={},
    )
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(4, 2, 1)
    )
    arch = json.dumps({"space": "toy", "widths": [4, 2]})
    uri_before = mlflow.get_tracking_uri()
    model_uri = log_pytorch_model(target, run_id, net, arch)

    assert mlflow.active_run() is None
    assert mlflow.get_tracking_uri() == uri_before
    assert "MLFLOW_TRACKING_URI" not in os.environ
    assert "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR" not in os.environ
    assert "Downloading artifacts" not in capfd.readouterr().err  # no tqdm bar in the way
    client = MlflowClient(tracking_uri=target.uri)
    assert client.get_run(run_id).info.status == "RUNNING"  # not closed by logging

    x = torch.randn(2, 1, 16, 16)
    loaded = load_pytorch_model(target, model_uri)
    torch.testing.assert_close(loaded(x), net(x))

    logged = client.get_logged_model(model_uri.rsplit("/", 1)[-1])
    assert logged.experiment_id == experiment_id and logged.source_run_id == run_id
    assert target.artifact_root is not None
    assert logged.artifact_location.startswith(target.artifact_root.as_uri())
    again = mlflow.pytorch.load_model(logged.artifact_location)  # plain MLflow, by location
    torch.testing.assert_close(again(x), net(x))
    packaged = Path(logged.artifact_location.removeprefix("file://")) / "extra_files"
    assert (packaged / "architecture.json").read_text() == arch
    beside = client.download_artifacts(run_id, "model/architecture.json", str(tmp_path))
    assert Path(beside).read_text() == arch
    assert not Path("mlruns").exists()
