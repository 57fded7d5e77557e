"""A network whose validation Dice stayed at 0.00 on every epoch is labelled "did not learn" in
the printed table, pareto.png, the parent's description and the MLflow tags (records built by
hand; one real SQLite store)."""

from __future__ import annotations

import math

import pytest
from mlflow.tracking import MlflowClient
from rich.console import Console

from raynas.tracking import (
    ParetoPoint,
    TrackingTarget,
    create_trial_run,
    frontier_table,
    log_frontier,
    pareto_front,
    start_parent_run,
)
from raynas.tracking.notes import NOTE_TAG, summary_metrics
from raynas.tracking.pareto import learned
from raynas.tracking.plots import frontier_figure


def _points() -> list[ParetoPoint]:
    """The smoke search as the issue saw it: the searched net learnt, the U-Net did not (its
    test Dice 0.0075 from an all-background net), plus a tiny searched net that did not learn
    (on the front as the smallest network)."""
    return [
        ParetoPoint("searched0#0", test_dice=0.41, params=300_000, run_id="s0", val_dice=0.45),
        ParetoPoint("searched1#0", test_dice=0.0, params=9_000, run_id="s1", val_dice=0.0),
        ParetoPoint("baseline-unet#0", test_dice=0.0075, params=1_411_787, run_id="u",
                    kind="baseline", val_dice=0.0),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("val_dice", "expected"),
    [(0.0, False), (-0.0, False), (0.0072, False), (0.01, True), (0.43, True), (math.nan, True)],
)
def test_learned_is_val_dice_above_zero_to_two_decimals(val_dice: float, expected: bool) -> None:
    assert learned(val_dice) is expected
    point = ParetoPoint("n", test_dice=0.1, params=1, val_dice=val_dice)
    assert point.learned is expected


def test_the_front_is_unchanged_by_the_label() -> None:
    """The label says what a figure is; it does not move networks on or off the front."""
    points = _points()
    assert [p.name for p in pareto_front(points)] == ["searched1#0", "searched0#0"]


def test_table_says_did_not_learn() -> None:
    console = Console(width=160, record=True)
    console.print(frontier_table(_points()))
    lines = {line.split("\u2502")[2].strip(): line for line in console.export_text().splitlines()
             if line.count("\u2502") > 3}  # fmt: skip
    assert "did not learn" in lines["unet-0"] and "0.0075" not in lines["unet-0"]
    assert "did not learn" in lines["searched1-0"]
    assert "did not learn" not in lines["searched0-0"] and "0.4100" in lines["searched0-0"]


def test_plot_labels_and_legend_say_did_not_learn() -> None:
    points = _points()
    fig, labels = frontier_figure(points, pareto_front(points))
    texts = sorted(t.get_text() for t in labels)
    assert texts == ["searched0-0", "searched1-0: did not learn", "unet-0: did not learn"]
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "did not learn" in legend and "baseline" not in legend  # the only baseline failed


def test_mlflow_tags_note_and_summary(target: TrackingTarget, experiment_id: str) -> None:
    parent = start_parent_run(target, experiment_id, run_name="p", params={}, tags={})
    points = []
    for p in _points():
        rid = create_trial_run(target, experiment_id, parent_run_id=parent, run_name=p.name,
                               stage="retrain", trial_id=p.name, params={}, tags={})
        points.append(ParetoPoint(p.name, test_dice=p.test_dice, params=p.params, run_id=rid,
                                  kind=p.kind, val_dice=p.val_dice))  # fmt: skip
    log_frontier(target, parent, points)
    client = MlflowClient(tracking_uri=target.uri)
    tags = {p.name: client.get_run(p.run_id).data.tags for p in points}
    assert tags["baseline-unet#0"]["learned"] == "false"
    assert tags["baseline-unet#0"]["result"] == "did not learn"
    assert tags["baseline-unet#0"]["pareto"] == "false" and tags["searched1#0"]["pareto"] == "true"
    assert tags["searched0#0"]["learned"] == "true" and "result" not in tags["searched0#0"]
    note = client.get_run(parent).data.tags[NOTE_TAG]
    unet_row = next(line for line in note.splitlines() if "unet-0" in line)
    assert "did not learn" in unet_row and "0.0075" not in unet_row
    metrics = client.get_run(parent).data.metrics
    assert metrics["networks_did_not_learn"] == 2
    summary = summary_metrics(points, pareto_front(points))
    assert summary["best_searched_val_dice"] == 0.45 and summary["best_searched_test_dice"] == 0.41
