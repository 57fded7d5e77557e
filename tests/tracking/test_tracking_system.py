"""System metrics of a trial's process, logged on the trial's run found by its trial id."""

from __future__ import annotations

import importlib.util
import time

import pytest
from mlflow.tracking import MlflowClient

from raynas.tracking import TrackingTarget, create_trial_run, start_parent_run
from raynas.tracking.system import start_trial_system_metrics, system_metrics_available

HAVE_PSUTIL = importlib.util.find_spec("psutil") is not None


def _runs(target: TrackingTarget, experiment_id: str) -> tuple[dict, str]:
    parent = start_parent_run(target, experiment_id, run_name="p", params={}, tags={})
    tracking = {"target": target, "experiment_id": experiment_id, "parent_run_id": parent,
                "stage": "retrain"}  # fmt: skip
    return tracking, parent


@pytest.mark.skipif(not HAVE_PSUTIL, reason="psutil not installed (MLflow's system metrics)")
def test_trial_logs_system_metrics_on_its_run(
    target: TrackingTarget, experiment_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", "0.5")
    tracking, parent = _runs(target, experiment_id)
    # the trial starts before the driver's callback has created its run: it waits for it
    stop = start_trial_system_metrics(tracking, "t0")
    time.sleep(0.5)
    run_id = create_trial_run(target, experiment_id, parent_run_id=parent, run_name="a#0",
                              stage="retrain", trial_id="t0", params={}, tags={})  # fmt: skip
    other = create_trial_run(target, experiment_id, parent_run_id=parent, run_name="b#0",
                             stage="retrain", trial_id="t1", params={}, tags={})  # fmt: skip
    time.sleep(3.0)
    stop()
    client = MlflowClient(tracking_uri=target.uri)
    metrics = client.get_run(run_id).data.metrics
    assert "system/cpu_utilization_percentage" in metrics, sorted(metrics)
    assert "system/system_memory_usage_megabytes" in metrics
    assert not client.get_run(other).data.metrics  # only the trial's own run


def test_no_tracking_or_opt_out_is_a_no_op(
    target: TrackingTarget, experiment_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    start_trial_system_metrics(None, "t0")()  # no MLflow callback: nothing to do
    monkeypatch.setenv("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING", "false")
    monkeypatch.setenv("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", "0.5")
    assert not system_metrics_available()
    tracking, parent = _runs(target, experiment_id)
    run_id = create_trial_run(target, experiment_id, parent_run_id=parent, run_name="a#0",
                              stage="retrain", trial_id="t0", params={}, tags={})  # fmt: skip
    stop = start_trial_system_metrics(tracking, "t0")
    time.sleep(1.5)
    stop()
    assert not MlflowClient(tracking_uri=target.uri).get_run(run_id).data.metrics
