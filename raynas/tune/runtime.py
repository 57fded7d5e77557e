"""Starting or joining Ray, checking resources, and the pre-flight check run on a worker."""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from raynas.errors import UserError

__all__ = ["RayRuntime", "prepare_ray_env", "init_ray", "shutdown_ray", "preflight_on_worker"]

logger = logging.getLogger(__name__)


def prepare_ray_env() -> None:
    """Environment Ray reads at import: loopback-only listeners for a local Ray, trials that
    keep the driver's working directory, and Ray's own console table quieted."""
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    os.environ.setdefault("RAY_CHDIR_TO_TRIAL_DIR", "0")
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # with verbose=0: no console table
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    os.environ.setdefault("RAY_DEDUP_LOGS", "1")


# Settings of prepare_ray_env that Ray reads in the processes running trials (and, through Ray
# Client, Tune itself): a local Ray inherits them, a running cluster gets them via runtime_env.
_FORWARDED_ENV = (
    "RAY_CHDIR_TO_TRIAL_DIR",
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS",
    "RAY_AIR_NEW_OUTPUT",
    "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S",
)
_AUTH_HINT = (
    "with token auth, set RAY_AUTH_MODE=token and RAY_AUTH_TOKEN (or RAY_AUTH_TOKEN_PATH) "
    "to the cluster's token"
)
# The head's Ray Client proxy starts one server process per client and gives it
# RAY_CLIENT_SERVER_CHECK_CHANNEL_TIMEOUT_S (default 30 s) to come up; on a busy head that can
# pass, the proxy answers with one of these messages, and a new attempt usually succeeds.
_CLIENT_SERVER_FAILED = ("Starting Ray client server failed", "Proxy failed to Connect to backend")
_CLIENT_SERVER_HINT = (
    "the head could not start a Ray Client server for this driver in time: see "
    "ray_client_server_*.err in the head's session logs, or start the head with a larger "
    "RAY_CLIENT_SERVER_CHECK_CHANNEL_TIMEOUT_S (default 30 s)"
)
CLIENT_CONNECT_ATTEMPTS_ENV = "RAYNAS_RAY_CLIENT_ATTEMPTS"  # default 3


def _client_attempts() -> int:
    raw = os.environ.get(CLIENT_CONNECT_ATTEMPTS_ENV, "3")
    try:
        attempts = int(raw)
    except ValueError:
        attempts = 0
    if attempts < 1:
        raise UserError(f"{CLIENT_CONNECT_ATTEMPTS_ENV}={raw}: expected a whole number >= 1")
    return attempts


def _forwarded_env() -> dict[str, Any]:
    """The job-level runtime_env for a running cluster; leaves out variables that a Ray Job's
    own runtime_env already sets (Ray refuses to merge the same key twice)."""
    import json

    taken: set[str] = set()
    job = os.environ.get("RAY_JOB_CONFIG_JSON_ENV_VAR")
    if job:
        try:
            taken = set((json.loads(job).get("runtime_env") or {}).get("env_vars") or {})
        except (ValueError, AttributeError):
            taken = set()
    env = {k: os.environ[k] for k in _FORWARDED_ENV if k in os.environ and k not in taken}
    return {"env_vars": env} if env else {}


@dataclass(frozen=True)
class RayRuntime:
    """What the search may use: the cluster's CPUs and GPUs, and whether we started it."""

    address: str | None
    cpus: float
    gpus: float
    started_here: bool

    @property
    def is_client(self) -> bool:
        return bool(self.address and self.address.startswith("ray://"))


def _client_server_failed(exc: BaseException) -> bool:
    return any(m in str(exc) for m in _CLIENT_SERVER_FAILED)


def _explain(address: str | None, exc: BaseException) -> str:
    """Ray's error on one line (its messages often put the cause after a heading) and a hint.

    For a client server that did not start, the head's proxy sends back its whole traceback:
    only the proxy's own sentence is kept."""
    text = str(exc)
    for marker in _CLIENT_SERVER_FAILED:
        if marker in text:
            text = text[text.index(marker) :].splitlines()[0]
            break
    first = " ".join(text.split())[:400] or type(exc).__name__
    if not (address and address.startswith("ray://")):
        return first
    hint = _CLIENT_SERVER_HINT if _client_server_failed(exc) else _AUTH_HINT
    return f"{first}; {hint}"


def _connect_client(ray: Any, address: str) -> None:
    """``ray.init("ray://...")``, tried again when the head's proxy failed to start this client's
    server in time (a busy head); any other failure, or the last attempt's, is raised."""
    attempts = _client_attempts()
    for attempt in range(1, attempts + 1):
        try:
            with warnings.catch_warnings():
                # Ray warns (stderr) before it raises; the error line says it once
                warnings.filterwarnings("ignore", "Ray Client connection timed out", UserWarning)
                ray.init(
                    address=address,
                    logging_level=logging.WARNING,
                    log_to_driver=False,
                    runtime_env=_forwarded_env(),
                )
            return
        except ConnectionError as exc:
            if not _client_server_failed(exc) or attempt == attempts:
                raise
            logger.warning(
                "%s: the head's Ray Client server did not start in time (attempt %d of %d); "
                "trying again",
                address,
                attempt,
                attempts,
            )


def init_ray(address: str | None, *, num_cpus: int | None = None) -> RayRuntime:
    """Starts a local Ray bound to 127.0.0.1 (no address) or joins ``auto`` / ``ray://HOST:PORT``."""
    prepare_ray_env()
    import ray

    from raynas.logs import capture_logger

    capture_logger("ray")  # its notices go to the run's search.log, not the terminal
    if ray.is_initialized():
        res = ray.cluster_resources()
        return RayRuntime(address, res.get("CPU", 0.0), res.get("GPU", 0.0), False)
    kwargs: dict[str, Any] = {
        "log_to_driver": False,
        "logging_level": logging.WARNING,
        "include_dashboard": False,
    }
    try:
        if address is None:
            ray.init(num_cpus=num_cpus, _node_ip_address="127.0.0.1", **kwargs)
        elif address.startswith("ray://"):
            _connect_client(ray, address)
        else:
            ray.init(address=address, runtime_env=_forwarded_env(), **kwargs)
    except (ConnectionError, RuntimeError, ValueError, ray.exceptions.RayError) as exc:
        raise UserError(
            f"--address {address}: cannot connect to Ray ({_explain(address, exc)})"
        ) from None
    res = ray.cluster_resources()
    return RayRuntime(address, float(res.get("CPU", 0.0)), float(res.get("GPU", 0.0)), True)


def shutdown_ray(runtime: RayRuntime) -> None:
    import ray

    if runtime.started_here and ray.is_initialized():
        ray.shutdown()


def _check_worker(data_root: str | None, tracking_uri: str, artifact_root: str | None) -> str:
    """Runs on a worker: returns "" if the data and the tracking store are reachable there."""
    from raynas.errors import UserError as _UserError
    from raynas.tracking import TrackingTarget, check_tracking_reachable

    if data_root is not None and not Path(data_root).is_dir():
        return f"--data-root {data_root}: not found on the Ray worker (use shared storage)"
    target = TrackingTarget(tracking_uri, Path(artifact_root) if artifact_root else None)
    try:
        check_tracking_reachable(target, timeout=10.0)
    except _UserError as exc:
        return f"{exc} (checked from a Ray worker)"
    return ""


def preflight_on_worker(
    data_root: Path | None, tracking_uri: str, artifact_root: Path | None, *, timeout: float = 120
) -> None:
    """Checks from a Ray worker that the data root and the tracking URI are reachable there."""
    import ray

    task = ray.remote(num_cpus=0)(_check_worker)
    ref = task.remote(
        str(data_root) if data_root else None,
        tracking_uri,
        str(artifact_root) if artifact_root else None,
    )
    try:
        problem = ray.get(ref, timeout=timeout)
    except ray.exceptions.GetTimeoutError:
        raise UserError(
            f"pre-flight check on a Ray worker timed out after {timeout:.0f} s"
        ) from None
    if problem:
        raise UserError(problem)
