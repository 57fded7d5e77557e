"""Test cases decide nothing: the end of a search (``finish_search``: frontier files, ``pareto``
tags, ``best_model``) run twice on the same retrain records, once with the test Dice as measured
and once as scrambled test labels would leave it, gives the same frontier, tags and best model;
only the test figures differ. Real MLflow (SQLite in a temp folder), no Ray, no training."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from mlflow.tracking import MlflowClient

from raynas.pipeline.outputs import SearchFolder
from raynas.tracking import (
    create_trial_run,
    ensure_experiment,
    resolve_tracking_uri,
    start_parent_run,
)

# candidate, kind, validation Dice, params, test Dice as measured, test Dice scrambled
RETRAINED = [
    ("searched0-a", "searched", 0.70, 20_000, 0.40, 0.95),
    ("searched1-b", "searched", 0.65, 10_000, 0.80, 0.10),
    ("searched2-c", "searched", 0.60, 30_000, 0.90, 0.20),
    ("baseline-unet", "baseline", 0.72, 400_000, 0.30, 0.99),
]


def _finish(tmp_path: Path, column: int, name: str) -> tuple[dict, dict, dict]:
    from raynas.pipeline.finish import finish_search

    target = resolve_tracking_uri(str(tmp_path / "store"), workdir=Path("/"))
    experiment_id = ensure_experiment(target, name)
    parent = start_parent_run(target, experiment_id, run_name=name, params={}, tags={})
    folder = SearchFolder(tmp_path / name)
    folder.create()
    records, kinds, candidates, runs = [], {}, {}, {}
    for row in RETRAINED:
        cand, kind, val, params = row[:4]
        test = row[column]
        runs[f"{cand}#0"] = create_trial_run(
            target, experiment_id, parent_run_id=parent, run_name=cand, stage="retrain",
            trial_id=cand, params={}, tags={"kind": kind},
        )  # fmt: skip
        kinds[cand] = kind
        candidates[cand] = {"label": cand, "arch_json": "{}"}
        records.append(SimpleNamespace(
            trial_id=cand, candidate=cand, trial=f"{cand}#0", status="done", iterations=2,
            best_dice=val, checkpoint=None, error=None,
            last={"params": params, "val_dice": val, "test_dice": test},
        ))  # fmt: skip
    setup = SimpleNamespace(
        target=target, experiment_id=experiment_id, experiment=name, parent_run_id=parent,
        folder=folder,
        close=lambda failed: None,
    )  # fmt: skip
    result = finish_search(setup, {"coarse": [], "fine": [], "retrain": records}, candidates,
                           kinds)  # fmt: skip
    client = MlflowClient(tracking_uri=target.uri)
    tags = {n: client.get_run(r).data.tags.get("pareto") for n, r in runs.items()}
    parent_run = client.get_run(parent).data
    front_json = json.loads((folder.root / "frontier.json").read_text())
    picks = {
        "front": [p.name for p in result.front],
        "front_json": front_json["front"],
        "on_front": {p["name"]: p["on_front"] for p in front_json["points"]},
        "pareto_tags": tags,
        "best_model": parent_run.tags.get("best_model"),
        "best_trial": parent_run.tags.get("best_trial"),
        "state_model": folder.state.get("model"),
    }
    tests = {p["name"]: p["test_dice"] for p in front_json["points"]}
    return picks, tests, parent_run.metrics


def test_scrambled_test_labels_change_no_pick(tmp_path: Path) -> None:
    picks, tests, metrics = _finish(tmp_path, 4, "measured")
    scrambled, scrambled_tests, scrambled_metrics = _finish(tmp_path, 5, "scrambled")
    assert picks == scrambled
    # on validation Dice: b (10k) < a (20k) < unet (400k); c (30k) is dominated by a
    assert picks["front"] == ["searched1-b#0", "searched0-a#0", "baseline-unet#0"]
    # the files and the tag name each network by its one name (issue 25)
    assert picks["front_json"] == ["searched1-0", "searched0-0", "unet-0"]
    assert picks["best_model"] == "searched0-0"  # the best validation Dice among searched
    assert picks["best_trial"] == picks["state_model"] == "searched0-a#0"
    # only the test figures changed, and they are reported
    assert tests != scrambled_tests
    assert tests["searched0-0"] == pytest.approx(0.40)
    assert scrambled_tests["searched0-0"] == pytest.approx(0.95)
    assert metrics["best_searched_val_dice"] == scrambled_metrics["best_searched_val_dice"]
    assert metrics["best_searched_test_dice"] == pytest.approx(0.40)
    assert scrambled_metrics["best_searched_test_dice"] == pytest.approx(0.95)
