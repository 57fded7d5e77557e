"""MLflow runs of a search: one parent run, one nested run per trial, metrics and artifacts.

Every function takes a :class:`~raynas.tracking.uri.TrackingTarget` and talks to MLflow through an
explicit ``MlflowClient(tracking_uri=...)``: nothing sets a global tracking URI or an active
run, so the same calls work on the driver and inside Ray workers.

Run layout (what the MLflow UI shows):

- parent run (tag ``raynas.kind=search``): flattened resolved config as params; tags ``space``,
  ``dataset``, ``seed``, ``raynas.version`` and ``mlflow.source.git.commit`` when known.
- trial runs (tag ``raynas.kind=trial``), nested through ``mlflow.parentRunId``; tags ``stage``
  (``coarse`` | ``fine`` | ``retrain``), ``space`` (inherited from the parent), ``trial_id``,
  ``kind`` (``searched`` | ``baseline``) and, once the frontier is known, ``pareto``.

Metric names (the Ray callback logs these; :func:`raynas.tracking.rebuild_pareto` reads them):

- per epoch (``step`` = epoch): ``dice`` (mean foreground validation Dice), ``loss`` (training
  loss), ``val_dice_class_<i>`` (validation Dice of class ``i``), ``params`` (parameter count).
- once per run: ``best_dice`` (best validation Dice over the epochs).

Example:
    >>> target = resolve_tracking_uri(None, workdir=tmp)
    >>> exp = ensure_experiment(target, "raynas")
    >>> parent = start_parent_run(target, exp, run_name="search", params={"a": {"b": 1}}, tags={})
    >>> trial = create_trial_run(target, exp, parent_run_id=parent, run_name="t0",
    ...                          stage="coarse", trial_id="t0", params={}, tags={})
    >>> log_metrics(target, trial, {"dice": 0.5, "loss": 1.2}, step=0)
    >>> finish_run(target, trial)
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from raynas.errors import UserError
from raynas.tracking.store import check_store
from raynas.tracking.uri import TrackingTarget

__all__ = [
    "quote_value",
    "KIND_TAG",
    "PARENT_TAG",
    "RUN_STATUSES",
    "client_for",
    "ensure_experiment",
    "start_parent_run",
    "create_trial_run",
    "find_trial_run",
    "log_metrics",
    "log_params",
    "set_tags",
    "log_artifact_file",
    "log_text",
    "finish_run",
    "kill_open_runs",
    "has_run",
    "reopen_run",
    "flatten_params",
    "run_tags",
]

PARENT_TAG = "mlflow.parentRunId"
KIND_TAG = "raynas.kind"  # "search" | "retrain" | "baseline" (parents) | "trial"
RUN_STATUSES = ("FINISHED", "FAILED", "KILLED")
MAX_KEY = 250
MAX_PARAM_VALUE = 6000
MAX_TAG_VALUE = 8000
_BATCH = 100  # MLflow's limit of params + tags per log_batch request
_METRIC_BATCH = 1000
_INHERITED_TAGS = ("space", "dataset", "seed")
_BAD_KEY_CHARS = re.compile(r"[^A-Za-z0-9_\-. /:]")


def client_for(target: TrackingTarget) -> MlflowClient:
    """An explicit client for ``target`` (no global tracking URI is set).

    Raises:
        StoreVanished: If the SQLite file the run opened was deleted or replaced since.
    """
    check_store(target)
    return MlflowClient(tracking_uri=target.uri)


def _key(key: Any) -> str:
    text = _BAD_KEY_CHARS.sub("_", str(key)) or "_"
    return text[:MAX_KEY]


def _value(value: Any, limit: int) -> str:
    text = value if isinstance(value, str) else str(value)
    if len(text) <= limit:
        return text
    marker = "...[truncated]"
    return text[: limit - len(marker)] + marker


def flatten_params(params: Mapping[str, Any], *, prefix: str = "") -> dict[str, str]:
    """Flatten nested dicts with dots and make keys/values fit MLflow's limits.

    Example:
        >>> flatten_params({"train": {"lr": 0.01, "epochs": 3}, "seed": 0})
        {'train.lr': '0.01', 'train.epochs': '3', 'seed': '0'}
    """
    out: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten_params(value, prefix=f"{name}."))
        else:
            out[_key(name)] = _value("None" if value is None else value, MAX_PARAM_VALUE)
    return out


def git_commit(path: str | Path | None = None) -> str | None:
    """The git commit of the checkout holding ``path`` (default: the raynas package), if any."""
    import subprocess

    folder = Path(path) if path is not None else Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip()
    return commit if out.returncode == 0 and re.fullmatch(r"[0-9a-f]{40}", commit) else None


def run_tags(
    *, space: str, dataset: str, seed: int, extra: Mapping[str, Any] | None = None
) -> dict[str, str]:
    """Tags of a parent run: space, dataset, seed, raynas version and git commit (if any).

    Example:
        >>> run_tags(space="c2f", dataset="synthetic", seed=0)["space"]
        'c2f'
    """
    from raynas import __version__

    tags = {"space": space, "dataset": dataset, "seed": str(seed), "raynas.version": __version__}
    commit = git_commit()
    if commit:
        tags["mlflow.source.git.commit"] = commit
    tags.update({k: str(v) for k, v in (extra or {}).items()})
    return tags


def _tags(tags: Mapping[str, Any]) -> dict[str, str]:
    return {_key(k): _value(v, MAX_TAG_VALUE) for k, v in tags.items() if v is not None}


def ensure_experiment(target: TrackingTarget, name: str) -> str:
    """Get or create the experiment ``name``; return its id.

    For SQLite stores a new experiment's artifact location is ``<artifact_root>/<name slug>``
    (never ``./mlruns`` of the current directory).

    Raises:
        UserError: If the experiment exists but is deleted.
    """
    if not name or not name.strip():
        raise UserError("--experiment: the experiment name must not be empty")
    client = client_for(target)
    exp = client.get_experiment_by_name(name)
    if exp is None:
        location = None
        if target.artifact_root is not None:
            slug = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
            location = (target.artifact_root / slug).as_uri()
        try:
            return client.create_experiment(name, artifact_location=location)
        except MlflowException:  # created concurrently by another process
            exp = client.get_experiment_by_name(name)
            if exp is None:
                raise
    if exp.lifecycle_stage == "deleted":
        raise UserError(
            f"--experiment {name}: the experiment is deleted in {target.uri}; restore it in the "
            "MLflow UI or choose another name"
        )
    return exp.experiment_id


def _log_batch(
    client: MlflowClient,
    run_id: str,
    *,
    params: Mapping[str, str] | None = None,
    tags: Mapping[str, str] | None = None,
) -> None:
    items: list[Param | RunTag] = [Param(k, v) for k, v in (params or {}).items()]
    items += [RunTag(k, v) for k, v in (tags or {}).items()]
    for i in range(0, len(items), _BATCH):
        chunk = items[i : i + _BATCH]
        client.log_batch(
            run_id,
            params=[p for p in chunk if isinstance(p, Param)],
            tags=[t for t in chunk if isinstance(t, RunTag)],
        )


def start_parent_run(
    target: TrackingTarget,
    experiment_id: str,
    *,
    run_name: str,
    params: Mapping[str, Any],
    tags: Mapping[str, Any],
    kind: str = "search",
) -> str:
    """Create the parent run of a search and return its id.

    Args:
        params: The resolved config (nested dicts are flattened with dots).
        tags: ``space``, ``dataset``, ``seed``, git commit, ... (see :func:`run_tags`).
        kind: The ``raynas.kind`` tag: ``search``, or the command of a standalone parent
            (``retrain``, ``baseline``), which :func:`raynas.tracking.rebuild_pareto` does not
            take for a search.
    """
    from raynas import __version__

    all_tags = {"raynas.version": __version__, **_tags(tags), KIND_TAG: kind}
    client = client_for(target)
    run = client.create_run(experiment_id, run_name=run_name, tags=all_tags)
    _log_batch(client, run.info.run_id, params=flatten_params(params))
    return run.info.run_id


def create_trial_run(
    target: TrackingTarget,
    experiment_id: str,
    *,
    parent_run_id: str,
    run_name: str,
    stage: str,
    trial_id: str,
    params: Mapping[str, Any],
    tags: Mapping[str, Any],
) -> str:
    """Create a trial run nested under ``parent_run_id`` and return its id.

    The run carries tags ``mlflow.parentRunId``, ``stage``, ``trial_id``, ``raynas.kind=trial`` and
    the parent's ``space`` / ``dataset`` / ``seed`` unless ``tags`` gives them. Use
    :func:`find_trial_run` first when a search resumes, so no run is duplicated.
    """
    client = client_for(target)
    parent_tags = client.get_run(parent_run_id).data.tags
    inherited = {k: parent_tags[k] for k in _INHERITED_TAGS if k in parent_tags}
    all_tags = {
        **inherited,
        "kind": "searched",
        **_tags(tags),
        PARENT_TAG: parent_run_id,
        "stage": str(stage),
        "trial_id": str(trial_id),
        KIND_TAG: "trial",
    }
    run = client.create_run(experiment_id, run_name=run_name, tags=all_tags)
    _log_batch(client, run.info.run_id, params=flatten_params(params))
    return run.info.run_id


def quote_value(value: str) -> str:
    """``value`` as a quoted string literal of MLflow's search filter syntax."""
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def find_trial_run(
    target: TrackingTarget,
    experiment_id: str,
    parent_run_id: str,
    trial_id: str,
    *,
    stage: str | None = None,
) -> str | None:
    """The id of the (oldest) run of ``trial_id`` under ``parent_run_id``, or ``None``."""
    query = (f"tags.`{PARENT_TAG}` = {quote_value(parent_run_id)} "
             f"and tags.trial_id = {quote_value(trial_id)}")
    if stage is not None:
        query += f" and tags.stage = {quote_value(stage)}"
    runs = client_for(target).search_runs(
        [experiment_id], filter_string=query, max_results=1, order_by=["attributes.start_time ASC"]
    )
    return runs[0].info.run_id if runs else None


def log_metrics(
    target: TrackingTarget, run_id: str, metrics: Mapping[str, float], step: int
) -> int:
    """Log ``metrics`` at ``step`` in one batch; non-finite or non-numeric values are skipped.

    Returns:
        How many metrics were logged.
    """
    now = int(time.time() * 1000)
    batch = []
    for key, value in metrics.items():
        if isinstance(value, bool):
            value = float(value)
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        if math.isfinite(number):
            batch.append(Metric(_key(key), number, now, int(step)))
    client = client_for(target)
    for i in range(0, len(batch), _METRIC_BATCH):
        client.log_batch(run_id, metrics=batch[i : i + _METRIC_BATCH])
    return len(batch)


def log_params(target: TrackingTarget, run_id: str, params: Mapping[str, Any]) -> None:
    """Log (flattened, truncated) params; keys already logged with the same value are skipped.

    Raises:
        ValueError: If a key was already logged with a different value (MLflow params are
            immutable).
    """
    client = client_for(target)
    existing = client.get_run(run_id).data.params
    flat = flatten_params(params)
    changed = sorted(k for k, v in flat.items() if k in existing and existing[k] != v)
    if changed:
        raise ValueError(
            f"params already logged with other values on run {run_id}: {', '.join(changed)}"
        )
    _log_batch(client, run_id, params={k: v for k, v in flat.items() if k not in existing})


def set_tags(target: TrackingTarget, run_id: str, tags: Mapping[str, Any]) -> None:
    """Set (or overwrite) tags on a run; ``None`` values are skipped."""
    _log_batch(client_for(target), run_id, tags=_tags(tags))


def log_artifact_file(
    target: TrackingTarget, run_id: str, path: str | Path, artifact_path: str | None = None
) -> None:
    """Copy one local file into the run's artifacts (under ``artifact_path`` if given)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"artifact file not found: {path}")
    client_for(target).log_artifact(run_id, str(path), artifact_path=artifact_path)


def log_text(target: TrackingTarget, run_id: str, text: str, artifact_file: str) -> None:
    """Write ``text`` as the artifact ``artifact_file`` (e.g. ``"architecture.json"``)."""
    client_for(target).log_text(run_id, text, artifact_file)


def finish_run(target: TrackingTarget, run_id: str, status: str = "FINISHED") -> None:
    """Mark a run terminated with ``status`` (``FINISHED``, ``FAILED`` or ``KILLED``)."""
    if status not in RUN_STATUSES:
        raise ValueError(f"status must be one of {', '.join(RUN_STATUSES)}; got {status!r}")
    client_for(target).set_terminated(run_id, status=status)


def kill_open_runs(target: TrackingTarget, experiment_id: str, parent_run_id: str) -> int:
    """Marks the parent run and every nested run under it that is still RUNNING as KILLED
    (an interrupted search); returns how many runs it marked."""
    client = client_for(target)
    query = f"tags.`{PARENT_TAG}` = {quote_value(parent_run_id)} and attributes.status = 'RUNNING'"
    runs = client.search_runs([experiment_id], filter_string=query, max_results=10000)
    ids = [r.info.run_id for r in runs]
    if client.get_run(parent_run_id).info.status == "RUNNING":
        ids.append(parent_run_id)
    for run_id in ids:
        client.set_terminated(run_id, status="KILLED")
    return len(ids)


def has_run(target: TrackingTarget, run_id: str) -> bool:
    """Whether the store holds run ``run_id`` (a store deleted and recreated does not)."""
    try:
        client_for(target).get_run(run_id)
    except MlflowException:
        return False
    return True


def reopen_run(target: TrackingTarget, run_id: str) -> None:
    """Marks a run RUNNING again (a resumed search continues its KILLED or FAILED runs)."""
    client = client_for(target)
    if client.get_run(run_id).info.status != "RUNNING":
        client.update_run(run_id, status="RUNNING")


def last_logged_step(target: TrackingTarget, run_id: str, key: str = "epoch") -> int:
    """The highest step logged for metric ``key`` (-1 if none): a resumed trial that redoes an
    epoch whose checkpoint Ray had not recorded skips the steps its run already holds."""
    history = client_for(target).get_metric_history(run_id, key)
    return max((m.step for m in history), default=-1)
