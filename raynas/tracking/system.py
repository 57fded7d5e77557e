"""System metrics of a trial's own process (CPU, memory, disk, network; GPU with ``pynvml``),
logged on its MLflow run as ``system/...`` (the run's "System metrics" tab).

A trial's run is created on the Ray driver by the Tune callback, not as an active run in the
trial, so MLflow's ``log_system_metrics`` flag cannot be used: the trainable (in the worker)
calls :func:`start_trial_system_metrics`, which finds its run (by trial id, under the parent
run) in a background thread and starts MLflow's ``SystemMetricsMonitor`` for that run id. It
measures the machine the trial runs on. Nothing happens without ``psutil`` (MLflow needs it), or
when ``MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING`` is set to false; the sampling interval is
``MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL`` (default here: 5 s).

Example:
    >>> stop = start_trial_system_metrics(tracking, trial_id)
    >>> ...  # train
    >>> stop()
"""

from __future__ import annotations

import importlib.util
import logging
import os
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["start_trial_system_metrics", "system_metrics_available", "DEFAULT_INTERVAL_S"]

logger = logging.getLogger(__name__)

DEFAULT_INTERVAL_S = 5.0
_FIND_TIMEOUT_S = 120.0


def system_metrics_available() -> bool:
    """Whether MLflow can measure here (``psutil`` importable) and the user did not opt out."""
    flag = os.environ.get("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING", "").strip().lower()
    if flag in ("0", "false", "no", "off"):
        return False
    return importlib.util.find_spec("psutil") is not None


def _interval() -> float:
    try:
        value = float(os.environ.get("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", ""))
    except ValueError:
        return DEFAULT_INTERVAL_S
    return value if value > 0 else DEFAULT_INTERVAL_S


def start_trial_system_metrics(
    tracking: dict[str, Any] | None, trial_id: str
) -> Callable[[], None]:
    """Starts logging system metrics on the run of ``trial_id``; returns the function that stops
    (and flushes) it. ``tracking`` holds ``target``, ``experiment_id``, ``parent_run_id`` and
    ``stage`` (what the trial callback uses); ``None`` or no ``psutil``: a no-op.

    Never raises: measuring must not fail a trial (failures go to the log as warnings)."""
    if not tracking or not system_metrics_available():
        return lambda: None
    stop = threading.Event()
    monitors: list[Any] = []

    def find_and_start() -> None:
        from raynas.tracking.runs import find_trial_run

        try:
            run_id = None
            waited = 0.0
            while run_id is None and not stop.is_set() and waited < _FIND_TIMEOUT_S:
                run_id = find_trial_run(
                    tracking["target"], tracking["experiment_id"], tracking["parent_run_id"],
                    trial_id, stage=tracking.get("stage"),
                )  # fmt: skip
                if run_id is None:
                    stop.wait(1.0)
                    waited += 1.0
            if run_id is None or stop.is_set():
                return
            # MLflow's own INFO lines would reach the driver's terminal through Ray
            logging.getLogger("mlflow.system_metrics").setLevel(logging.ERROR)
            from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

            monitor = SystemMetricsMonitor(
                run_id, sampling_interval=_interval(), samples_before_logging=1,
                resume_logging=True, tracking_uri=tracking["target"].uri,
            )  # fmt: skip
            monitor.start()
            monitors.append(monitor)
        except Exception as exc:  # noqa: BLE001 - never fail the trial for a measurement
            logger.warning("trial %s: no system metrics (%s)", trial_id, exc)

    thread = threading.Thread(target=find_and_start, daemon=True, name="raynas-sysmetrics")
    thread.start()

    def finish() -> None:
        stop.set()
        thread.join(timeout=30)
        for monitor in monitors:
            try:
                monitor.finish()
            except Exception as exc:  # noqa: BLE001
                logger.warning("trial %s: system metrics not flushed (%s)", trial_id, exc)

    return finish
