"""log_frontier on a parent run and rebuild_pareto from a store filled through the API."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from raynas.errors import UserError
from raynas.tracking import (
    ParetoPoint,
    TrackingTarget,
    create_trial_run,
    finish_run,
    log_frontier,
    log_metrics,
    pareto_front,
    rebuild_pareto,
    run_tags,
    start_parent_run,
)

# name, stage, kind, per-epoch (validation) Dice, params, log best_dice?, test Dice at the end
RUNS = [
    ("coarse-0", "coarse", "searched", [0.3, 0.4], 1_000, True, None),
    ("small", "retrain", "searched", [0.50, 0.60, 0.55], 10_000, True, 0.58),
    ("medium", "retrain", "searched", [0.60, 0.70], 30_000, False, 0.66),  # val: max of history
    ("big-worse", "retrain", "searched", [0.65], 50_000, True, 0.50),
    ("unet", "retrain", "baseline", [0.72], 400_000, True, 0.69),
    # never reached its last epoch: no test Dice, so not on any frontier (though its val is best)
    ("unscored", "retrain", "searched", [0.90], 5_000, True, None),
]


def _populate(target: TrackingTarget, experiment_id: str) -> tuple[str, dict[str, str]]:
    parent = start_parent_run(
        target,
        experiment_id,
        run_name="search",
        params={"seed": 0},
        tags=run_tags(space="c2f", dataset="synthetic", seed=0),
    )
    ids = {}
    for name, stage, kind, dices, params, best, test in RUNS:
        run_id = create_trial_run(
            target,
            experiment_id,
            parent_run_id=parent,
            run_name=name,
            stage=stage,
            trial_id=name,
            params={},
            tags={"kind": kind},
        )
        for epoch, dice in enumerate(dices):
            log_metrics(target, run_id, {"dice": dice, "loss": 1 - dice, "params": params}, epoch)
        if best:
            log_metrics(target, run_id, {"best_dice": max(dices)}, len(dices) - 1)
        if test is not None:
            final = {"test_dice": test, "test_dice_organ": test + 0.1, "val_dice_class_1": 0.3}
            log_metrics(target, run_id, final, len(dices) - 1)
        finish_run(target, run_id)
    return parent, ids


def _runs_by_name(target: TrackingTarget, experiment_id: str) -> dict[str, object]:
    runs = MlflowClient(tracking_uri=target.uri).search_runs([experiment_id])
    return {r.info.run_name: r for r in runs}


def test_log_frontier_tags_and_artifacts(target: TrackingTarget, experiment_id: str) -> None:
    parent = start_parent_run(target, experiment_id, run_name="p", params={}, tags={})
    kids = {
        name: create_trial_run(
            target,
            experiment_id,
            parent_run_id=parent,
            run_name=name,
            stage="retrain",
            trial_id=name,
            params={},
            tags={},
        )
        for name in ("a", "b", "c")
    }
    points = [
        ParetoPoint("a", val_dice=0.6, params=10, run_id=kids["a"]),
        ParetoPoint("b", val_dice=0.5, params=20, run_id=kids["b"]),  # dominated by a
        ParetoPoint("c", val_dice=0.8, params=30, run_id=kids["c"]),
        ParetoPoint("unet", val_dice=0.7, params=50, run_id=None, kind="baseline"),
    ]
    front = log_frontier(target, parent, points)
    assert [p.name for p in front] == ["a", "c"]
    client = MlflowClient(tracking_uri=target.uri)
    tags = {name: client.get_run(rid).data.tags.get("pareto") for name, rid in kids.items()}
    assert tags == {"a": "true", "b": "false", "c": "true"}
    names = sorted(a.path for a in client.list_artifacts(parent))
    assert names == ["pareto.csv", "pareto.json", "pareto.png"]
    filtered = client.search_runs([experiment_id], filter_string="tags.pareto = 'true'")
    assert sorted(r.info.run_name for r in filtered) == ["a", "c"]


def test_rebuild_pareto(target: TrackingTarget, experiment_id: str, tmp_path: Path) -> None:
    _populate(target, experiment_id)  # an older search: must be ignored
    parent, _ = _populate(target, experiment_id)
    exp_name = MlflowClient(tracking_uri=target.uri).get_experiment(experiment_id).name
    points = rebuild_pareto(target, exp_name, out_dir=tmp_path / "out")
    by_name = {p.name: p for p in points}
    # retrain stage only, and only runs with a test Dice
    assert sorted(by_name) == ["big-worse", "medium", "small", "unet"]
    assert all(p.stage == "retrain" for p in points)
    assert by_name["medium"].test_dice == pytest.approx(0.66)  # reported beside, decides nothing
    assert by_name["medium"].val_dice == pytest.approx(0.70)  # the frontier's: dice history
    assert by_name["small"].val_dice == pytest.approx(0.60)  # best_dice, not the last epoch
    assert by_name["small"].per_class == {"test_dice_organ": pytest.approx(0.68)}
    assert by_name["unet"].kind == "baseline" and by_name["unet"].params == 400_000
    assert [p.name for p in pareto_front(points)] == ["small", "medium", "unet"]
    client = MlflowClient(tracking_uri=target.uri)
    assert all(client.get_run(p.run_id).data.tags["mlflow.parentRunId"] == parent for p in points)
    with (tmp_path / "out" / "pareto.csv").open() as fh:
        rows = {r["name"]: r["on_front"] for r in csv.DictReader(fh)}
    assert rows == {"small": "True", "medium": "True", "big-worse": "False", "unet": "True"}
    assert sorted(a.path for a in client.list_artifacts(parent)) == [
        "pareto.csv",
        "pareto.json",
        "pareto.png",
    ]
    tags = {p.name: client.get_run(p.run_id).data.tags["pareto"] for p in points}
    assert tags == {"small": "true", "medium": "true", "big-worse": "false", "unet": "true"}


def test_rebuild_pareto_explicit_parent(
    target: TrackingTarget, experiment_id: str, tmp_path: Path
) -> None:
    first, _ = _populate(target, experiment_id)
    _populate(target, experiment_id)
    exp_name = MlflowClient(tracking_uri=target.uri).get_experiment(experiment_id).name
    points = rebuild_pareto(target, exp_name, out_dir=tmp_path, parent_run_id=first)
    client = MlflowClient(tracking_uri=target.uri)
    parents = {client.get_run(p.run_id).data.tags["mlflow.parentRunId"] for p in points}
    assert parents == {first}
    with pytest.raises(UserError, match="parent run nope: not found"):
        rebuild_pareto(target, exp_name, out_dir=tmp_path, parent_run_id="nope")


def test_rebuild_pareto_errors(target: TrackingTarget, experiment_id: str, tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"--experiment missing: no such experiment .* known: "):
        rebuild_pareto(target, "missing", out_dir=tmp_path)
    exp_name = MlflowClient(tracking_uri=target.uri).get_experiment(experiment_id).name
    start_parent_run(target, experiment_id, run_name="empty", params={}, tags={})
    with pytest.raises(UserError, match="no retrain runs"):
        rebuild_pareto(target, exp_name, out_dir=tmp_path)
    no_store = TrackingTarget(uri=f"sqlite:///{tmp_path}/none.db", artifact_root=tmp_path)
    with pytest.raises(UserError, match="no MLflow store"):
        rebuild_pareto(no_store, "raynas", out_dir=tmp_path)
    assert not (tmp_path / "none.db").exists()
