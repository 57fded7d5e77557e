"""The one link: a saved chart view on the experiment and the URL that opens it."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlparse

from raynas.tracking import create_trial_run, log_metrics, start_parent_run
from raynas.tracking.links import (
    SHARED_VIEW_TAG,
    compare_filter,
    compare_url,
    comparison_lines,
    ui_hint,
)
from raynas.tracking.runs import client_for


def _search(target, experiment_id, metric: str) -> str:
    parent = start_parent_run(target, experiment_id, run_name="s", params={}, tags={})
    run = create_trial_run(target, experiment_id, parent_run_id=parent, run_name="unet (1.4M)",
                           stage="retrain", trial_id="t0", params={}, tags={})  # fmt: skip
    log_metrics(target, run, {metric: 0.4, "params": 1e6, "log10_params": 6.0}, step=1)
    return parent


def test_url_opens_the_saved_chart_view(target, experiment_id) -> None:
    parent = _search(target, experiment_id, "val_dice")
    url = compare_url(target, experiment_id, parent)
    parsed = urlparse(url)
    assert f"{parsed.scheme}://{parsed.netloc}" == "http://127.0.0.1:5000"
    route, _, query = parsed.fragment.partition("?")
    assert route == f"/experiments/{experiment_id}/runs"
    q = parse_qs(query)
    assert q["workflowType"] == ["machine_learning"] and q["compareRunsMode"] == ["CHART"]
    assert "searchFilter" not in q  # the UI ignores a saved view when the URL has a facet
    tags = client_for(target).get_experiment(experiment_id).tags
    state = json.loads(tags[SHARED_VIEW_TAG + q["viewStateShareKey"][0]])
    assert state["searchFilter"] == compare_filter(parent)
    assert state["orderByKey"] == "metrics.`val_dice`"  # flat list, best first
    charts = state["compareRunCharts"]
    assert {(c["xaxis"]["key"], c["yaxis"]["key"]) for c in charts} == {
        ("log10_params", "val_dice"), ("params", "val_dice")}  # fmt: skip
    assert all(c["type"] == "SCATTER" for c in charts)
    assert {c["metricSectionId"] for c in charts} == {s["uuid"] for s in
                                                      state["compareRunSections"]}  # fmt: skip
    # the filter is one the tracking server accepts, and it finds the retrain run only
    runs = client_for(target).search_runs([experiment_id], filter_string=state["searchFilter"])
    assert [r.info.run_name for r in runs] == ["unet (1.4M)"]


def test_ordered_by_val_dice_test_dice_charted_beside_and_lines(
    target, experiment_id, request
) -> None:
    parent = _search(target, experiment_id, "test_dice")
    runs = client_for(target).search_runs([experiment_id], filter_string=compare_filter(parent))
    log_metrics(target, runs[0].info.run_id, {"val_dice": 0.45}, step=1)
    url = compare_url(target, experiment_id, parent, base="http://mlflow.example:5000/")
    assert url.startswith(f"http://mlflow.example:5000/#/experiments/{experiment_id}/runs?")
    key = parse_qs(urlparse(url).fragment.partition("?")[2])["viewStateShareKey"][0]
    state = json.loads(client_for(target).get_experiment(experiment_id).tags[SHARED_VIEW_TAG + key])
    assert state["orderByKey"] == "metrics.`val_dice`"  # what every pick uses, never test Dice
    assert [(c["xaxis"]["key"], c["yaxis"]["key"]) for c in state["compareRunCharts"]] == [
        ("log10_params", "val_dice"), ("params", "val_dice"), ("log10_params", "test_dice")]
    lines = comparison_lines(target.uri, request.node.name, parent)
    assert lines[0].startswith(f"MLflow:   {ui_hint(target)}") and "--port 5000" in lines[0]
    assert lines[1].strip().startswith("then open http://127.0.0.1:5000/#/experiments/")
    # no parent given: the latest search of the experiment
    assert comparison_lines(target.uri, request.node.name, None)[1] == lines[1]
