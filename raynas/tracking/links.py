"""One link to the comparison: the MLflow UI's runs of a search, filtered to the networks to
compare, in chart mode, with a Dice-vs-parameters scatter already there.

The MLflow 3.17 UI (its JS bundle, ``mlflow/server/js/build``) reads, from the hash route
``#/experiments/<id>/runs``:

- ``workflowType=machine_learning`` — the machine-learning view (the default is the GenAI one);
- ``compareRunsMode=CHART`` — the chart view instead of the table;
- ``viewStateShareKey=<key>`` — a saved view: the experiment tag
  ``mlflow.sharedViewState.<key>`` holds JSON with the search facets (``searchFilter``, ...) and
  the UI state (``compareRunCharts``, ``compareRunSections``, ...). The UI ignores the saved
  view when the URL carries a search facet itself, so the filter lives in the saved view.

The saved view filters ``tags.stage = 'retrain'`` under the search's parent run, lists the runs
best **validation** Dice first (what every pick uses), and holds a scatter of ``val_dice``
against ``log10_params`` (the UI's scatter has no log axis; :mod:`raynas.tracking.names` logs the
base-10 logarithm of the parameter count for that), one against ``params``, and one of
``test_dice`` (held-out, reported only) against ``log10_params`` where the runs report it.

Example:
    >>> compare_url(target, experiment_id, parent_run_id)  # doctest: +SKIP
    'http://127.0.0.1:5000/#/experiments/1/runs?workflowType=machine_learning&compareRunsMode=...'
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from raynas.tracking.runs import KIND_TAG, PARENT_TAG, client_for, quote_value
from raynas.tracking.uri import TrackingTarget, resolve_tracking_uri

__all__ = [
    "LOCAL_UI",
    "SHARED_VIEW_TAG",
    "compare_filter",
    "compare_view_state",
    "compare_url",
    "comparison_lines",
    "ui_hint",
]

LOCAL_UI = "http://127.0.0.1:5000"
SHARED_VIEW_TAG = "mlflow.sharedViewState."
_SECTION = "raynas-compare"


def compare_filter(parent_run_id: str) -> str:
    """The runs filter of the networks a search compares: its retrain runs."""
    return f"tags.stage = 'retrain' and tags.`{PARENT_TAG}` = {quote_value(parent_run_id)}"


def _scatter(uuid: str, x: str, y: str, title: str) -> dict[str, Any]:
    return {
        "uuid": uuid,
        "type": "SCATTER",
        "runsCountToCompare": 100,
        "metricSectionId": _SECTION,
        "deleted": False,
        "isGenerated": False,
        "displayName": title,
        "xaxis": {"key": x, "type": "METRIC"},
        "yaxis": {"key": y, "type": "METRIC"},
    }


def compare_view_state(
    parent_run_id: str, *, dice: str = "val_dice", reported: str | None = "test_dice"
) -> dict[str, Any]:
    """The saved view (search facets + UI state) the comparison link opens: ordered and charted
    by ``dice`` (the picking figure), with ``reported`` (the test Dice) charted beside it."""
    charts = [
        _scatter("raynas-dice-vs-log-params", "log10_params", dice,
                 f"{dice} vs log10(parameters)"),
        _scatter("raynas-dice-vs-params", "params", dice, f"{dice} vs parameters"),
    ]  # fmt: skip
    if reported is not None and reported != dice:
        charts.append(_scatter("raynas-test-dice-vs-log-params", "log10_params", reported,
                               f"{reported} (reported only) vs log10(parameters)"))
    return {
        "searchFilter": compare_filter(parent_run_id),
        # sorted by a metric (not by start time), the UI lists the matching runs flat instead
        # of folding them under their parent, so the charts plot every network
        "orderByKey": f"metrics.`{dice}`",
        "orderByAsc": False,
        "compareRunCharts": charts,
        "compareRunSections": [
            {
                "uuid": _SECTION,
                "name": "Dice vs parameters (raynas)",
                "display": True,
                "isReordered": False,
                "deleted": False,
                "isGenerated": False,
            }
        ],
        "isAccordionReordered": True,
        "hideEmptyCharts": True,
    }


def _dice_metrics(
    target: TrackingTarget, experiment_id: str, parent_run_id: str
) -> tuple[str, str | None]:
    """(the picking Dice the runs report: ``val_dice``, else ``best_dice``; ``test_dice`` where
    they report it, else None)."""
    runs = client_for(target).search_runs(
        [experiment_id], filter_string=compare_filter(parent_run_id), max_results=200
    )
    keys = {k for r in runs for k in r.data.metrics}
    dice = "val_dice" if "val_dice" in keys or "best_dice" not in keys else "best_dice"
    return dice, ("test_dice" if "test_dice" in keys else None)


def compare_url(
    target: TrackingTarget, experiment_id: str, parent_run_id: str, *, base: str | None = None
) -> str:
    """Saves the comparison view on the experiment and returns the URL that opens it.

    ``base``: the UI's address (default: the server of an ``http(s)://`` store, else
    :data:`LOCAL_UI`, where ``mlflow ui`` listens by default).
    """
    dice, reported = _dice_metrics(target, experiment_id, parent_run_id)
    state = json.dumps(compare_view_state(parent_run_id, dice=dice, reported=reported),
                       sort_keys=True)
    key = hashlib.sha256(state.encode()).hexdigest()
    client_for(target).set_experiment_tag(experiment_id, SHARED_VIEW_TAG + key, state)
    if base is None:
        base = target.uri if target.is_server else LOCAL_UI
    query = urlencode(
        {"workflowType": "machine_learning", "compareRunsMode": "CHART", "viewStateShareKey": key}
    )
    return f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs?{query}"


def ui_hint(target: TrackingTarget) -> str | None:
    """For a local store, the command that serves the UI at :data:`LOCAL_UI`; else ``None``."""
    if target.is_server:
        return None
    return f"mlflow ui --backend-store-uri {target.uri} --port 5000"


def comparison_lines(
    tracking_uri: str, experiment: str, parent_run_id: str | None = None
) -> list[str]:
    """What a command that ends a run prints: how to open the UI and the comparison URL.

    ``parent_run_id`` ``None``: the latest search of ``experiment``. Falls back to the plain
    ``mlflow ui`` line (and a warning in the log) when the store cannot save the view.
    """
    target = resolve_tracking_uri(tracking_uri, workdir=Path.cwd())
    where = f"(experiment '{experiment}', parent run {parent_run_id or 'the latest search'})"
    hint = ui_hint(target)
    try:
        client = client_for(target)
        exp = client.get_experiment_by_name(experiment)
        if exp is None:
            raise LookupError(f"no experiment {experiment!r}")
        if parent_run_id is None:
            parents = client.search_runs(
                [exp.experiment_id], filter_string=f"tags.`{KIND_TAG}` = 'search'",
                max_results=1, order_by=["attributes.start_time DESC"],
            )  # fmt: skip
            if not parents:
                raise LookupError("no search in the experiment")
            parent_run_id = parents[0].info.run_id
        url = compare_url(target, exp.experiment_id, parent_run_id)
    except Exception as exc:  # noqa: BLE001 - a link must never fail a finished run
        logging.getLogger("raynas.search").warning("no MLflow comparison link (%s)", exc)
        return [f"MLflow:   {hint or 'open ' + target.uri}   {where}"]
    if hint:
        return [f"MLflow:   {hint}   {where}", f"          then open {url}"]
    return [f"MLflow:   open {url}   {where}"]
