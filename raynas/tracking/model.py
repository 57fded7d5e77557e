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
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from raynas.tracking.runs import client_for, log_text
from raynas.tracking.uri import TrackingTarget

if TYPE_CHECKING:
    import torch

__all__ = ["log_pytorch_model", "load_pytorch_model", "example_input", "MODEL_METRICS_FIRST"]

logger = logging.getLogger(__name__)

ARCH_FILE = "architecture.json"
MODEL_METRICS_FIRST = ("val_dice", "test_dice", "params")  # what a user reads first
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
    metrics: Mapping[str, float] | None = None,
    params: Mapping[str, Any] | None = None,
    step: int = 0,
) -> str:
    """Log ``model`` as an MLflow logged model whose source is run ``run_id``.

    Saved in MLflow's safe ``pt2`` format (``torch.export``; loading needs no pickle of raynas
    classes) with a signature from a small input example (batch 1, one channel per
    ``in_channels``, sides of the network's total stride: see :func:`example_input`). Where the
    Architecture JSON names no dimensions or ``torch.export`` fails on the network, it falls
    back to the state dict + Architecture JSON with a loader (:mod:`raynas.tracking.loader`,
    a ``pyfunc`` model from code: nothing pickled either), with a warning in the log.
    Requirements name torch, mlflow and raynas.

    The Architecture JSON goes into the model package (``extra_files``, or the loader's
    artifacts) and into the run's artifacts as ``<name>/architecture.json``. ``metrics`` are
    logged on the run at ``step`` linked to the model (``model_id``), ``val_dice``,
    ``test_dice`` and ``params`` first (:data:`MODEL_METRICS_FIRST`: the model page lists them
    in that order), ``params`` on the model (besides the run's params), so the experiment's
    Models tab shows them. They are the model's only metrics: ``mlflow.pytorch.log_model``
    given a ``run_id`` copies every metric of the run at ``step`` onto the model (the trial's
    ``system/*`` samples at step 0 came first on the model page), so the model is logged with
    no run and linked to it here as the run's output (``log_outputs``).

    Args:
        target: The tracking store.
        run_id: The (retrain) run the model belongs to; its status is not changed.
        model: The trained network (logged on CPU, in eval mode; the caller's copy is untouched).
        architecture_json: ``Architecture.to_json()`` of the network.
        name: Model name in MLflow (no ``/``).
        metrics: Figures of the model (``test_dice``, ``val_dice``, ``params``, ...).
        params: Extra params of the model (strings).
        step: The step of ``metrics``.

    Returns:
        The model URI (``models:/<model_id>``) for :func:`load_pytorch_model`.
    """
    import copy

    import mlflow

    from raynas import __version__

    if not name or "/" in name:
        raise ValueError(f"name must be a non-empty name without '/', got {name!r}")
    import torch

    active_before = mlflow.active_run()
    cpu_model = copy.deepcopy(model).to("cpu").eval()
    requirements = [f"torch=={torch.__version__.split('+')[0]}", f"mlflow=={mlflow.__version__}",
                    f"raynas=={__version__}"]  # fmt: skip
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
        model_params = {**run.data.params, **{k: str(v) for k, v in (params or {}).items()}}
        logged = client.create_logged_model(
            run.info.experiment_id, name=name, source_run_id=run_id,
            params=model_params, tags={"raynas.architecture": ARCH_FILE},
        )  # fmt: skip
        with _tracking_uri(target.uri):
            uri = None
            if example is not None:
                try:
                    uri = _log_pt2(cpu_model, example, logged.model_id, name,
                                   requirements, arch_path)  # fmt: skip
                except Exception as exc:  # noqa: BLE001 - torch.export cannot handle every net
                    logger.warning("%s: not exportable with torch.export (%s); logged as a "
                                   "state dict with its loader", name,
                                   " ".join(str(exc).split())[:300])  # fmt: skip
            if uri is None:
                uri = _log_state_dict(client, cpu_model, example, logged.model_id,
                                      requirements, arch_path)  # fmt: skip
        from mlflow.entities import LoggedModelOutput

        client.log_outputs(run_id, [LoggedModelOutput(logged.model_id, step=step)])
        for key, value in _ordered(metrics or {}):
            client.log_metric(run_id, key, float(value), step=step, model_id=logged.model_id)
    log_text(target, run_id, architecture_json, f"{name}/{ARCH_FILE}")
    active_after = mlflow.active_run()
    before_id = active_before.info.run_id if active_before else None
    if active_after is not None and active_after.info.run_id != before_id:  # pragma: no cover
        mlflow.end_run()  # defensive: never leave a run active that we did not find active
    return uri


def _ordered(metrics: Mapping[str, float]) -> list[tuple[str, float]]:
    """``metrics`` with :data:`MODEL_METRICS_FIRST` first, then the rest by name."""
    first = [(k, metrics[k]) for k in MODEL_METRICS_FIRST if k in metrics]
    return first + sorted((k, v) for k, v in metrics.items() if k not in MODEL_METRICS_FIRST)


def _log_pt2(
    model: torch.nn.Module, example: Any, model_id: str, name: str,
    requirements: list[str], arch_path: Path,
) -> str:  # fmt: skip
    """Logs the ``pt2`` package into the logged model ``model_id``, with no run: given one,
    ``log_model`` would copy the run's metrics (system metrics too) onto the model."""
    import mlflow.pytorch

    info = mlflow.pytorch.log_model(
        model, name=name, model_id=model_id, input_example=example,
        pip_requirements=requirements, serialization_format="pt2",
        extra_files=[str(arch_path)],
    )  # fmt: skip
    return info.model_uri


def _log_state_dict(
    client: Any, model: torch.nn.Module, example: Any, model_id: str,
    requirements: list[str], arch_path: Path,
) -> str:  # fmt: skip
    """The fallback: ``weights.pt`` (a state dict) + ``architecture.json`` + the loader file,
    saved as a ``pyfunc`` model and uploaded as the logged model's artifacts."""
    import mlflow.pyfunc
    import torch
    from mlflow.entities import LoggedModelStatus

    from raynas.tracking import loader

    weights = arch_path.with_name("weights.pt")
    torch.save(model.state_dict(), weights)
    signature = None
    if example is not None:  # any batch and size (the rebuilt network takes them): axes -1
        import numpy as np
        from mlflow.models import ModelSignature
        from mlflow.types.schema import Schema, TensorSpec

        with torch.no_grad():
            out = model(torch.from_numpy(example)).numpy()
        signature = ModelSignature(
            inputs=Schema([TensorSpec(np.dtype(np.float32), _any_size(example.shape))]),
            outputs=Schema([TensorSpec(out.dtype, _any_size(out.shape))]),
        )
    local = arch_path.parent / "package"
    mlflow.pyfunc.save_model(
        str(local), python_model=loader.__file__, pip_requirements=requirements,
        artifacts={loader.WEIGHTS: str(weights), loader.ARCHITECTURE: str(arch_path)},
        signature=signature, input_example=example,
    )  # fmt: skip
    client.log_model_artifacts(model_id, str(local))
    client.finalize_logged_model(model_id, LoggedModelStatus.READY)
    return f"models:/{model_id}"


def _any_size(shape: tuple[int, ...]) -> tuple[int, ...]:
    """``(batch, channels, *sides)`` with batch and sides free (``-1``)."""
    return (-1, shape[1], *([-1] * (len(shape) - 2)))


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
    """Load a model logged by :func:`log_pytorch_model` (``models:/...`` or ``runs:/...``): the
    exported graph of a ``pt2`` model, the rebuilt network of a state-dict model."""
    import mlflow.pyfunc
    import mlflow.pytorch
    from mlflow.models import Model

    with _tracking_uri(target.uri):
        if "pytorch" in Model.load(model_uri).flavors:
            return mlflow.pytorch.load_model(model_uri)
        return mlflow.pyfunc.load_model(model_uri).unwrap_python_model().network
