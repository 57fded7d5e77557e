"""Starting or joining Ray, checking resources, and the pre-flight check run on a worker."""

from __future__ import annotations

import contextlib
import fnmatch
import logging
import os
import signal
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from raynas.errors import UserError
from raynas.interrupts import SignalReceived, active_guard
from raynas.tune.processes import (
    alive_processes,
    kill_processes,
    record_session,
    session_processes,
    stop_orphaned_sessions,
)

__all__ = [
    "RayRuntime",
    "init_ray",
    "is_secret_name",
    "keep_secrets_from_trials",
    "prepare_ray_env",
    "shutdown_ray",
    "stop_orphaned_sessions",
]

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
    # Ctrl-C goes through raynas's interrupt path (raynas.interrupts), which asks Tune to stop
    # through the SIGUSR1 handler fit() installs; Tune's own SIGINT handler would end a stage
    # quietly, as if it had finished.
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"


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


# Environment variables that look like secrets: a local Ray started by raynas does not get them
# (its workers, agents and their logs inherit its environment), and nothing raynas forwards to a
# cluster's runtime_env matches them. Ray's and MLflow's own settings stay (RAY_AUTH_TOKEN for
# token auth, MLFLOW_TRACKING_* for the worker's check of the tracking server, raynas's own
# RAYNAS_* settings, e.g. RAYNAS_SECRET_FILE, a path); a user can keep
# more with RAYNAS_PASS_ENV=NAME,NAME (glob patterns allowed).
SECRET_PATTERNS = (
    "AWS_*", "AZURE_*", "GOOGLE_APPLICATION_CREDENTIALS", "*TOKEN*", "*SECRET*", "*PASSWORD*",
    "*PASSWD*", "*CREDENTIAL*", "*_KEY", "*_KEY_ID", "*APIKEY*", "*API_KEY*", "*PRIVATE_KEY*",
)  # fmt: skip
KEEP_PATTERNS = ("RAY_*", "MLFLOW_TRACKING_*", "RAYNAS_*")
PASS_ENV = "RAYNAS_PASS_ENV"


def is_secret_name(name: str) -> bool:
    """True for an environment variable raynas keeps out of the Ray processes it starts."""
    upper = name.upper()
    keep = [*KEEP_PATTERNS, *(p.strip() for p in os.environ.get(PASS_ENV, "").split(",") if p)]
    if any(fnmatch.fnmatchcase(upper, p.upper()) for p in keep):
        return False
    return any(fnmatch.fnmatchcase(upper, p) for p in SECRET_PATTERNS)


@contextlib.contextmanager
def _without_secrets() -> Iterator[list[str]]:
    """Removes secret-looking variables from ``os.environ`` while a local Ray starts (the
    processes it spawns inherit the environment), and puts them back afterwards."""
    removed = {k: os.environ.pop(k) for k in list(os.environ) if is_secret_name(k)}
    try:
        yield sorted(removed)
    finally:
        os.environ.update(removed)


def keep_secrets_from_trials() -> None:
    """Ray Tune copies ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``
    ... from the driver into every trial actor's ``runtime_env`` (and so into
    ``runtime_env_agent.log``); raynas's trials need none of them (their storage is a local or
    mounted folder), so secret-looking names are taken off Tune's list, unless
    ``RAYNAS_PASS_ENV`` keeps them."""
    try:
        from ray.tune.execution import class_cache
    except ImportError:  # pragma: no cover - another Ray layout: nothing to take off
        return
    names = getattr(class_cache, "ENV_VARS_TO_PROPAGATE", None)
    if isinstance(names, set | frozenset):
        class_cache.ENV_VARS_TO_PROPAGATE = {n for n in names if not is_secret_name(n)}


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
    env = {
        k: os.environ[k]
        for k in _FORWARDED_ENV
        if k in os.environ and k not in taken and not is_secret_name(k)
    }
    return {"env_vars": env} if env else {}


@dataclass(frozen=True)
class RayRuntime:
    """What the search may use: the cluster's CPUs and GPUs, and whether we started it."""

    address: str | None
    cpus: float
    gpus: float
    started_here: bool
    # the force-exit cleanup that kills the local Ray's processes, removed by shutdown_ray
    cleanup: Any = field(default=None, compare=False, repr=False)


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
    """Starts a local Ray bound to 127.0.0.1 (no address) or joins ``auto`` / ``ray://HOST:PORT``.

    A signal while a local Ray starts stops what had started and raises
    :class:`~raynas.interrupts.SignalReceived`."""
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
    guard = active_guard()
    cleanup = None
    if address is None and guard is not None:
        cleanup = guard.on_force_exit(
            lambda: kill_processes(session_processes(), signal.SIGKILL), name="kill local Ray"
        )
    if address is None:
        stop_orphaned_sessions()  # of a driver killed earlier (kill -9): before Ray starts
    try:
        if address is None:
            with _without_secrets() as removed:
                if removed:
                    logger.info("local Ray started without %s", ", ".join(removed))
                ray.init(num_cpus=num_cpus, _node_ip_address="127.0.0.1", **kwargs)
            record_session()
        elif address.startswith("ray://"):
            _connect_client(ray, address)
        else:
            ray.init(address=address, runtime_env=_forwarded_env(), **kwargs)
    except (ConnectionError, RuntimeError, ValueError, ray.exceptions.RayError) as exc:
        if cleanup is not None:
            cleanup.remove()
        raise UserError(
            f"--address {address}: cannot connect to Ray ({_explain(address, exc)})"
        ) from None
    except BaseException as exc:
        if address is None:
            _stop_local_ray()
        if cleanup is not None:
            cleanup.remove()
        # ray.init's own SIGTERM handler exits with the signal number
        if isinstance(exc, SystemExit) and exc.code == signal.SIGTERM:
            if guard is not None and guard.signum is None:
                guard.signum = signal.SIGTERM
            raise SignalReceived(signal.SIGTERM) from None
        raise
    finally:
        if guard is not None:
            guard.install()  # ray.init replaced the SIGTERM handler
    res = ray.cluster_resources()
    cpus, gpus = float(res.get("CPU", 0.0)), float(res.get("GPU", 0.0))
    return RayRuntime(address, cpus, gpus, True, cleanup=cleanup)


def _stop_local_ray(grace: float = 5.0) -> None:
    """``ray.shutdown()``, then SIGTERM (and after ``grace`` seconds SIGKILL) to whatever of
    this driver's Ray session outlived it: the agents of a raylet that died first otherwise
    linger for minutes."""
    import ray

    procs = session_processes()
    with contextlib.suppress(Exception):
        if ray.is_initialized():
            ray.shutdown()
    for sig in (signal.SIGTERM, signal.SIGKILL):
        kill_processes(procs, sig)
        deadline = time.monotonic() + grace
        while alive_processes(procs) and time.monotonic() < deadline:
            time.sleep(0.1)
        if not alive_processes(procs):
            return


def shutdown_ray(runtime: RayRuntime) -> None:
    """Disconnects; a Ray started here is stopped with all its processes."""
    import ray

    if runtime.started_here and runtime.address is None:
        _stop_local_ray()
    elif runtime.started_here and ray.is_initialized():
        ray.shutdown()
    if runtime.cleanup is not None:
        runtime.cleanup.remove()
