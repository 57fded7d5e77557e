"""Log a trained network as an MLflow PyTorch model (``pt2`` where ``torch.export`` handles
it), with its Architecture JSON beside it.

``mlflow.pytorch.log_model`` only knows the global tracking URI, so it runs inside
:func:`_tracking_uri`, a context that sets the URI and restores the previous state exactly
(including the ``MLFLOW_TRACKING_URI`` environment variable) afterwards. No run is started or
left active: the model is attached to the given run through ``run_id``.

Example:
    >>> uri = log_pytorch_model(target, run_id, net, arch.to_json())
    >>> net2 = load_pytorch_model(target, uri)
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from raynas.tracking.runs import client_for, log_text
from raynas.tracking.uri import TrackingTarget

if TYPE_CHECKING:
    import torch

__all__ = ["log_pytorch_model", "load_pytorch_model", "example_input"]

logger = logging.getLogger(__name__)

ARCH_FILE = "architecture.json"
_LOCK = threading.Lock()


@contextlib.contextmanager
def _tracking_uri(uri: str) -> Iterator[None]:
    """Temporarily make ``uri`` MLflow's global tracking URI; restore everything afterwards."""
    import mlflow
    from mlflow.tracking._tracking_service import utils as tracking_utils

    with _LOCK:
        # no tqdm bar for the artifact round trip of log_model, unless the user asked for one
        quiet = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR" not in os.environ
        old_uri = tracking_utils._tracking_uri
        old_env = os.environ.get("MLFLOW_TRACKING_URI")
        try:
            if quiet:
                os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
            mlflow.set_tracking_uri(uri)
            yield
        finally:
            mlflow.set_tracking_uri(old_uri)
            if quiet:
                os.environ.pop("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", None)
            if old_env is None:
                os.environ.pop("MLFLOW_TRACKING_URI", None)
            else:
                os.environ["MLFLOW_TRACKING_URI"] = old_env


def log_pytorch_model(
    target: TrackingTarget,
    run_id: str,
    model: torch.nn.Module,
    architecture_json: str,
    *,
    name: str = "model",
) -> str:
    """Log ``model`` as an MLflow PyTorch model of run ``run_id``.

    Saved in MLflow's safe ``pt2`` format (``torch.export``; loading needs no pickle of raynas
    classes) with a signature from a small input example (batch 1, one channel per
    ``in_channels``, sides of the network's total stride: see :func:`example_input`); where the
    Architecture JSON does not name its dimensions or ``torch.export`` fails on the network,
    it falls back to the pickle format (with a warning in the log and raynas in the
    requirements).

    The Architecture JSON goes into the model package (``extra_files``) and into the run's
    artifacts as ``<name>/architecture.json``, so the network can be rebuilt without pickles.

    Args:
        target: The tracking store.
        run_id: The (retrain) run the model belongs to; its status is not changed.
        model: The trained network (logged on CPU, in eval mode; the caller's copy is untouched).
        architecture_json: ``Architecture.to_json()`` of the network.
        name: Model name in MLflow.

    Returns:
        The model URI (``models:/<model_id>``) for ``mlflow.pytorch.load_model``.
    """
    import copy

    import mlflow
    import mlflow.pytorch
    import torch

    if not name or "/" in name:
        raise ValueError(f"name must be a non-empty name without '/', got {name!r}")
    active_before = mlflow.active_run()
    cpu_model = copy.deepcopy(model).to("cpu").eval()
    requirements = [f"torch=={torch.__version__.split('+')[0]}", f"mlflow=={mlflow.__version__}"]
    example = example_input(cpu_model, architecture_json)
    from raynas.logs import capture_logger

    capture_logger("torch")  # torch.export's notes go to the run's log, not the terminal
    with tempfile.TemporaryDirectory(prefix="raynas-model-") as tmp:
        arch_path = Path(tmp) / ARCH_FILE
        arch_path.write_text(architecture_json, encoding="utf-8")
        client = client_for(target)
        run = client.get_run(run_id)
        # Created here so it lands in the run's experiment (with its artifact location), not in
        # whatever experiment MLflow's global state points at.
        logged = client.create_logged_model(
            run.info.experiment_id,
            name=name,
            source_run_id=run_id,
            params=dict(run.data.params),
            tags={"raynas.architecture": ARCH_FILE},
        )
        common = {"name": name, "run_id": run_id, "model_id": logged.model_id,
                  "extra_files": [str(arch_path)]}  # fmt: skip
        with _tracking_uri(target.uri):
            info = None
            if example is not None:
                try:
                    info = mlflow.pytorch.log_model(
                        cpu_model, input_example=example, pip_requirements=requirements,
                        serialization_format="pt2", **common,
                    )  # fmt: skip
                except Exception as exc:  # noqa: BLE001 - torch.export cannot handle every net
                    logger.warning("%s: not exportable with torch.export (%s); logged as a "
                                   "pickle", name, " ".join(str(exc).split())[:300])  # fmt: skip
            if info is None:
                from raynas import __version__

                info = mlflow.pytorch.log_model(
                    cpu_model, pip_requirements=[*requirements, f"raynas=={__version__}"],
                    serialization_format="pickle", **common,
                )  # fmt: skip
    log_text(target, run_id, architecture_json, f"{name}/{ARCH_FILE}")
    active_after = mlflow.active_run()
    before_id = active_before.info.run_id if active_before else None
    if active_after is not None and active_after.info.run_id != before_id:  # pragma: no cover
        mlflow.end_run()  # defensive: never leave a run active that we did not find active
    return info.model_uri


def example_input(model: torch.nn.Module, architecture_json: str) -> Any:
    """A tiny input example for ``model``: ``(1, in_channels, s, ..., s)`` float32 with ``s``
    the smallest power of two (8 to 128) the network maps to an output of the same size (its
    total stride); ``None`` when the JSON names no ``spatial_dims`` or no size works."""
    import json

    import numpy as np
    import torch

    try:
        data = json.loads(architecture_json)
        dims, channels = int(data["spatial_dims"]), int(data.get("in_channels", 1))
    except (ValueError, KeyError, TypeError):
        return None
    for side in (8, 16, 32, 64, 128):
        x = torch.zeros((1, channels, *([side] * dims)))
        try:
            with torch.no_grad():
                y = model(x)
        except (RuntimeError, ValueError):
            continue
        if tuple(y.shape[2:]) == tuple(x.shape[2:]):
            return np.random.default_rng(0).random(x.shape, dtype=np.float32)
    return None


def load_pytorch_model(target: TrackingTarget, model_uri: str) -> torch.nn.Module:
    """Load a model logged by :func:`log_pytorch_model` (``models:/...`` or ``runs:/...``)."""
    import mlflow.pytorch

    with _tracking_uri(target.uri):
        return mlflow.pytorch.load_model(model_uri)
