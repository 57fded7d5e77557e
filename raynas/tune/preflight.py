"""The worker pre-flight check: before any trial, a task on every node that can run trials
checks that the data root, the search's preprocess cache and the tracking store are reachable
there, so a multi-node cluster with node-local storage stops with one line naming the node and
what it cannot see, instead of failing inside every trial.

Example:
    >>> preflight_on_worker(None, "sqlite:////shared/mlflow.db", None,
    ...                     cache="/shared/raynas_runs/cache/synthetic-0123")  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from raynas.errors import UserError

__all__ = ["preflight_on_worker"]


def _check_worker(
    data_root: str | None, tracking_uri: str, artifact_root: str | None, cache: str | None = None
) -> str:
    """Runs on a worker: returns "" if the data, the preprocess cache and the tracking store are
    reachable there."""
    from raynas.data.preprocess import cache_visible
    from raynas.errors import UserError as _UserError
    from raynas.tracking import TrackingTarget, check_tracking_reachable

    if data_root is not None and not Path(data_root).is_dir():
        return f"--data-root {data_root}: not found on the Ray worker (use shared storage)"
    if cache is not None:
        problem = cache_visible(cache)
        if problem is not None:
            return (
                f"--storage-path: the preprocess cache is not readable on the Ray worker "
                f"({problem}); put --storage-path (default ./raynas_runs) on storage every "
                "node shares"
            )
    target = TrackingTarget(tracking_uri, Path(artifact_root) if artifact_root else None)
    try:
        check_tracking_reachable(target, timeout=10.0)
    except _UserError as exc:
        return f"{exc} (checked from a Ray worker)"
    return ""


def _worker_nodes() -> list[tuple[str, Any]]:
    """``(address, scheduling strategy)`` of every live node that can run a trial (has CPUs);
    Ray's default placement when the list cannot be read."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    try:
        nodes = [n for n in ray.nodes() if n.get("Alive") and n.get("Resources", {}).get("CPU")]
    except Exception:  # noqa: BLE001 - fall back to one worker anywhere
        nodes = []
    if not nodes:
        return [("a Ray node", "DEFAULT")]
    return [
        (str(n.get("NodeManagerAddress")), NodeAffinitySchedulingStrategy(n["NodeID"], soft=False))
        for n in nodes
    ]


def preflight_on_worker(
    data_root: Path | None,
    tracking_uri: str,
    artifact_root: Path | None,
    *,
    cache: Path | str | None = None,
    timeout: float | None = None,
) -> None:
    """Checks from a worker on every node that can run trials that the data root, the
    preprocess ``cache`` folder (its manifest and files, by size) and the tracking URI are
    reachable there; raises UserError naming the first node and what it cannot see.

    ``timeout`` (default ``$RAYNAS_PREFLIGHT_TIMEOUT_S``, else 600 s) bounds the wait for the
    workers, whose start (a fresh Python importing torch) takes minutes on a loaded machine."""
    import os

    import ray

    if timeout is None:
        try:
            timeout = float(os.environ.get("RAYNAS_PREFLIGHT_TIMEOUT_S", "600"))
        except ValueError:
            raise UserError("RAYNAS_PREFLIGHT_TIMEOUT_S: not a number of seconds") from None

    task = ray.remote(num_cpus=0)(_check_worker)
    args = (
        str(data_root) if data_root else None,
        tracking_uri,
        str(artifact_root) if artifact_root else None,
        str(cache) if cache else None,
    )
    nodes = _worker_nodes()
    refs = [task.options(scheduling_strategy=how).remote(*args) for _, how in nodes]
    try:
        problems = ray.get(refs, timeout=timeout)
    except ray.exceptions.GetTimeoutError:
        raise UserError(
            f"pre-flight check on a Ray worker timed out after {timeout:.0f} s (no worker "
            "started; a busy machine may need more: RAYNAS_PREFLIGHT_TIMEOUT_S)"
        ) from None
    for (address, _), problem in zip(nodes, problems, strict=True):
        if problem:
            where = f" [node {address}]" if len(nodes) > 1 else ""
            raise UserError(f"{problem}{where}")
