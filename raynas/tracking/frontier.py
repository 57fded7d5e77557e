"""The Pareto frontier in MLflow: log it on the parent run, and rebuild it from a store.

:func:`log_frontier` writes ``pareto.csv``, ``pareto.json`` and ``pareto.png`` as artifacts of
the search's parent run and tags every point's run ``pareto=true`` or ``pareto=false``, so the
MLflow UI can filter the frontier (``tags.pareto = "true"``), and ``learned=true|false``
(:func:`learned_tags`; a network that did not learn also gets ``result="did not learn"``).

:func:`rebuild_pareto` (behind ``raynas pareto``) reads the retrain-stage runs of an
experiment back: the trial runs of one parent (``stage=retrain``, latest parent by default) plus
the baseline retrain runs (``kind=baseline``) nested under that parent, standalone (no
parent) or nested under a ``raynas baseline`` parent (``raynas.kind=baseline``). It uses the
metrics ``val_dice`` (else ``best_dice``, else the maximum of the per-epoch ``dice`` history:
the validation Dice, the frontier's objective), ``test_dice`` (the held-out test Dice, reported
beside, never deciding membership; a run without one was not retrained to the end and is left
out), the per-class ``test_dice_<class>`` / ``val_dice_<class>``, and ``params``; a point is
named by the run's ``trial`` tag (``<candidate>#<sample>``).
"""

from __future__ import annotations

import logging
import math
import tempfile
from collections.abc import Iterable
from pathlib import Path

from mlflow.entities import Run

from raynas.errors import UserError
from raynas.tracking.pareto import (
    DID_NOT_LEARN,
    POINT_KINDS,
    ParetoPoint,
    pareto_front,
    save_frontier,
)
from raynas.tracking.runs import (
    KIND_TAG,
    PARENT_TAG,
    client_for,
    log_artifact_file,
    quote_value,
    set_tags,
)
from raynas.tracking.uri import TrackingTarget

__all__ = ["ARTIFACT_STEM", "log_frontier", "learned_tags", "rebuild_pareto", "points_from_runs"]

logger = logging.getLogger(__name__)

ARTIFACT_STEM = "pareto"
_SKIPPED_STATUSES = ("FAILED", "KILLED")


def log_frontier(
    target: TrackingTarget, parent_run_id: str, points: Iterable[ParetoPoint]
) -> list[ParetoPoint]:
    """Log the frontier files on the parent run and tag each point's run ``pareto=true|false``
(membership on validation Dice, :func:`raynas.strategy.selection.pareto_front`).

    Returns:
        The frontier (see :func:`raynas.tracking.pareto_front`).
    """
    pts = list(points)
    front = pareto_front(pts)
    with tempfile.TemporaryDirectory(prefix="raynas-pareto-") as tmp:
        paths = save_frontier(pts, tmp, stem=ARTIFACT_STEM)
        for path in paths.values():
            log_artifact_file(target, parent_run_id, path)
    front_runs = {p.run_id for p in front if p.run_id}
    learned = {p.run_id: p.learned for p in pts if p.run_id}
    for run_id in sorted(learned):
        set_tags(target, run_id, {"pareto": "true" if run_id in front_runs else "false",
                                  **learned_tags(learned[run_id])})  # fmt: skip
    set_tags(target, parent_run_id, {"pareto.size": str(len(front))})
    from raynas.tracking.notes import log_search_summary

    log_search_summary(target, parent_run_id, pts, front)  # metrics + description of the parent
    return front


def learned_tags(learned: bool) -> dict[str, str]:
    """The tags of a retrained network's run: ``learned=true|false`` and, where it did not
    learn, ``result="did not learn"`` (so the runs table says it; filter ``tags.learned``)."""
    if learned:
        return {"learned": "true"}
    return {"learned": "false", "result": DID_NOT_LEARN}


def _best_dice(target: TrackingTarget, run: Run) -> float | None:
    metrics = run.data.metrics
    for key in ("val_dice", "best_dice"):
        if key in metrics and math.isfinite(metrics[key]):
            return float(metrics[key])
    if "dice" not in metrics:
        return None
    history = client_for(target).get_metric_history(run.info.run_id, "dice")
    values = [m.value for m in history if math.isfinite(m.value)]
    return max(values) if values else None


def points_from_runs(target: TrackingTarget, runs: Iterable[Run]) -> list[ParetoPoint]:
    """Turn retrain runs into points; runs without test Dice or parameter count are skipped."""
    points = []
    for run in runs:
        if run.info.status in _SKIPPED_STATUSES:
            continue
        metrics = run.data.metrics
        test = metrics.get("test_dice")
        params = metrics.get("params")
        if test is None or params is None or not math.isfinite(params):
            logger.warning(
                "run %s (%s) has no 'test_dice' or 'params' metric (not retrained to the end, "
                "or by a raynas without held-out test cases); left out",
                run.info.run_id,
                run.info.run_name,
            )
            continue
        val = _best_dice(target, run)
        tags = run.data.tags
        kind = tags.get("kind", "searched")
        per_class = {
            k: v
            for k, v in metrics.items()
            if k.startswith(("test_dice_", "val_dice_")) and not k.startswith("val_dice_class_")
        }
        points.append(
            ParetoPoint(
                name=tags.get("trial") or run.info.run_name or run.info.run_id,
                val_dice=val if val is not None else math.nan,
                params=int(round(params)),
                run_id=run.info.run_id,
                kind=kind if kind in POINT_KINDS else "searched",
                stage=tags.get("stage", "retrain"),
                test_dice=test,
                per_class=per_class,
            )
        )
    return points


def _experiment(target: TrackingTarget, experiment_name: str) -> str:
    db = target.db_path
    if db is not None and not db.is_file():
        raise UserError(
            f"--tracking-uri {target.uri}: no MLflow store at {db} (run `raynas search` first, "
            "or pass --tracking-uri)"
        )
    client = client_for(target)
    exp = client.get_experiment_by_name(experiment_name)
    if exp is None or exp.lifecycle_stage == "deleted":
        names = sorted(e.name for e in client.search_experiments())
        raise UserError(
            f"--experiment {experiment_name}: no such experiment in {target.uri}; "
            f"known: {', '.join(names) or '(none)'}"
        )
    return exp.experiment_id


def _search(target: TrackingTarget, experiment_id: str, query: str) -> list[Run]:
    return list(
        client_for(target).search_runs(
            [experiment_id],
            filter_string=query,
            max_results=50000,
            order_by=["attributes.start_time ASC"],
        )
    )


def rebuild_pareto(
    target: TrackingTarget,
    experiment_name: str,
    *,
    out_dir: str | Path,
    parent_run_id: str | None = None,
) -> list[ParetoPoint]:
    """Rebuild the frontier of a search from MLflow, write it to ``out_dir`` and re-log it.

    Args:
        target: The tracking store.
        experiment_name: MLflow experiment (``--experiment``).
        out_dir: Folder for ``pareto.csv``, ``pareto.json`` and ``pareto.png``.
        parent_run_id: The search's parent run; default: the latest one in the experiment.

    Returns:
        All points (the frontier is ``pareto_front(points)``).

    Raises:
        UserError: Unknown experiment, no store, no parent run, or no retrain runs with metrics.
    """
    experiment_id = _experiment(target, experiment_name)
    if parent_run_id is not None:
        from mlflow.exceptions import MlflowException

        try:
            client_for(target).get_run(parent_run_id)
        except MlflowException:
            raise UserError(f"parent run {parent_run_id}: not found in {target.uri}") from None
    else:
        parents = _search(target, experiment_id, f"tags.`{KIND_TAG}` = 'search'")
        if parents:
            parent_run_id = parents[-1].info.run_id
    runs: dict[str, Run] = {}
    if parent_run_id is not None:
        query = f"tags.`{PARENT_TAG}` = {quote_value(parent_run_id)} and tags.stage = 'retrain'"
        runs.update((r.info.run_id, r) for r in _search(target, experiment_id, query))
    baseline_query = "tags.stage = 'retrain' and tags.kind = 'baseline'"
    # `raynas baseline` runs nest their trial under a parent of their own (raynas.kind=baseline)
    command_query = f"tags.`{KIND_TAG}` = 'baseline'"
    commands = {r.info.run_id for r in _search(target, experiment_id, command_query)}
    for run in _search(target, experiment_id, baseline_query):
        parent = run.data.tags.get(PARENT_TAG)
        if parent in (None, parent_run_id) or parent in commands:  # standalone or this search's
            runs[run.info.run_id] = run
    points = points_from_runs(target, runs.values())
    if not points:
        where = f"parent run {parent_run_id}" if parent_run_id else "the experiment"
        raise UserError(
            f"--experiment {experiment_name}: no retrain runs with 'test_dice' and 'params' "
            f"metrics in {where}"
        )
    save_frontier(points, out_dir, stem=ARTIFACT_STEM)
    if parent_run_id is not None:
        log_frontier(target, parent_run_id, points)
    return points
