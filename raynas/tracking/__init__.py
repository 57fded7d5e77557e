"""raynas.tracking: MLflow tracking of searches and the Pareto frontier.

The only package of raynas that imports ``mlflow``. Every call takes an explicit
:class:`TrackingTarget` (from :func:`resolve_tracking_uri`) and uses its own ``MlflowClient``,
so it works the same on the Ray driver and in workers.

Metric and run names: see :mod:`raynas.tracking.names` (retrain runs: ``dice``, ``loss``,
``best_dice``, ``val_dice_class_<i>`` per epoch, ``params`` once; at the end ``test_dice`` /
``test_dice_<class>`` (the best-epoch weights on the held-out test cases: the frontier's Dice),
``val_dice`` / ``val_dice_<class>`` (the best epoch's validation Dice; ``<class>`` = the label
name), ``params_M``, ``log10_params``; supernet runs: ``coarse/dice``,
``fine/derived_params``, ...; ``epoch`` is the step). The comparison link:
:mod:`raynas.tracking.links`. Run tags: ``stage``
(``coarse`` | ``fine`` | ``retrain``), ``space``, ``dataset``, ``seed``, ``trial_id``, ``kind``
(``searched`` | ``baseline``), ``pareto`` (``true`` | ``false``), ``raynas.kind``
(``search`` for the parent run, ``trial`` for nested runs), ``trial`` (a retrain run's
``<candidate>#<sample>``).

Example:
    >>> target = resolve_tracking_uri(None, workdir=Path.cwd())
    >>> check_tracking_reachable(target)
    >>> exp = ensure_experiment(target, "raynas")
    >>> parent = start_parent_run(target, exp, run_name="search", params=cfg, tags=tags)
"""

from __future__ import annotations

from raynas.tracking.frontier import log_frontier, points_from_runs, rebuild_pareto
from raynas.tracking.model import load_pytorch_model, log_pytorch_model
from raynas.tracking.pareto import (
    ParetoPoint,
    frontier_table,
    pareto_front,
    save_frontier,
    sort_points,
)
from raynas.tracking.runs import (
    client_for,
    create_trial_run,
    ensure_experiment,
    find_trial_run,
    finish_run,
    flatten_params,
    has_run,
    kill_open_runs,
    last_logged_step,
    log_artifact_file,
    log_metrics,
    log_params,
    log_text,
    reopen_run,
    run_tags,
    set_tags,
    start_parent_run,
)
from raynas.tracking.store import StoreVanished, check_store, prepare_store
from raynas.tracking.uri import TrackingTarget, check_tracking_reachable, resolve_tracking_uri

__all__ = [
    "TrackingTarget",
    "resolve_tracking_uri",
    "check_tracking_reachable",
    "prepare_store",
    "check_store",
    "StoreVanished",
    "client_for",
    "ensure_experiment",
    "start_parent_run",
    "create_trial_run",
    "find_trial_run",
    "last_logged_step",
    "log_metrics",
    "log_params",
    "set_tags",
    "log_artifact_file",
    "log_text",
    "finish_run",
    "has_run",
    "kill_open_runs",
    "reopen_run",
    "flatten_params",
    "run_tags",
    "log_pytorch_model",
    "load_pytorch_model",
    "ParetoPoint",
    "pareto_front",
    "sort_points",
    "save_frontier",
    "frontier_table",
    "log_frontier",
    "rebuild_pareto",
    "points_from_runs",
]
