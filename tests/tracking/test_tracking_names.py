"""What trial runs are called: short unique run names, one meaning per metric name, and the
descriptions and summary metrics a search's runs carry."""

from __future__ import annotations

import pytest

from raynas.tracking import ParetoPoint, pareto_front
from raynas.tracking.names import final_metrics, is_constant, mlflow_metrics, short_run_name
from raynas.tracking.notes import architecture_note, frontier_note, summary_metrics

RESULT = {
    "dice": 0.4, "best_dice": 0.5, "loss": 1.2, "params": 12_000, "epoch": 3, "evaluated": 7,
    "topology": "0-1-0", "arch_json": "{}", "training_iteration": 3, "time_total_s": 9.0,
    "time_train_s": 1.5, "val_dice_class_1": 0.3, "arch_updates": True,
}  # fmt: skip


@pytest.mark.parametrize(
    ("stage", "expected"),
    [
        ("coarse", {"coarse/dice": 0.4, "coarse/best_dice": 0.5, "coarse/loss": 1.2,
                    "coarse/params": 12_000.0, "coarse/evaluated": 7.0,
                    "coarse/time_train_s": 1.5, "coarse/val_dice_class_1": 0.3}),
        ("fine", {"fine/dice": 0.4, "fine/best_dice": 0.5, "fine/loss": 1.2,
                  "fine/derived_params": 12_000.0, "fine/evaluated": 7.0,
                  "fine/time_train_s": 1.5, "fine/val_dice_class_1": 0.3}),
        ("retrain", {"dice": 0.4, "best_dice": 0.5, "loss": 1.2, "params": 12_000.0,
                     "evaluated": 7.0, "time_train_s": 1.5, "val_dice_class_1": 0.3}),
    ],
)  # fmt: skip
def test_metric_names_per_stage(stage: str, expected: dict[str, float]) -> None:
    got = mlflow_metrics(stage, RESULT)
    assert got == expected
    assert "epoch" not in got and not any(k.endswith("time_total_s") for k in got)


def test_held_out_figures_pass_through_and_final_metrics() -> None:
    got = mlflow_metrics("retrain", {"test_dice": 0.6, "val_dice": 0.7, "test_dice_organ": 0.5,
                                     "val_dice_organ": 0.8})  # fmt: skip
    assert got == {"test_dice": 0.6, "val_dice": 0.7, "test_dice_organ": 0.5,
                   "val_dice_organ": 0.8}  # fmt: skip
    assert final_metrics("retrain", {"best_dice": 0.5, "params": 100}) == {
        "val_dice": 0.5, "params_M": 0.0001, "log10_params": 2.0}  # fmt: skip
    # a trial that reports its own val_dice keeps it
    assert "val_dice" not in final_metrics("retrain", {"val_dice": 0.4, "best_dice": 0.5})
    assert final_metrics("coarse", RESULT) == {}
    assert is_constant("params") and is_constant("fine/derived_params")
    assert not is_constant("coarse/dice")


@pytest.mark.parametrize(
    ("stage", "key", "kind", "params", "name"),
    [
        ("retrain", "searched0-0-1-1-2-1-0-0-0-0-0-0-0#0", "searched", 12_345, "searched0#0 (12k)"),
        ("retrain", "searched1-0-1-0#2", "searched", None, "searched1#2"),
        ("retrain", "baseline-unet#0", "baseline", 1_432_000, "unet#0 (1.4M)"),
        ("retrain", "baseline-unet#1", "baseline", None, "unet#1"),
        ("retrain", "tiny", "searched", 13_000, "tiny (13k)"),
        ("coarse", "cluster3", "searched", 9_000, "coarse cluster3"),
        ("coarse", "d3_w16", "searched", None, "coarse d3_w16"),
        ("fine", "fine0-cluster3", "searched", None, "fine#0 cluster3"),
    ],
)  # fmt: skip
def test_short_run_names(stage: str, key: str, kind: str, params, name: str) -> None:
    got = short_run_name(stage, key, kind=kind)
    if params is not None and stage == "retrain":
        got = short_run_name(stage, key, kind=kind, params=params)
    assert got == name and len(got) <= 40


def _points() -> list[ParetoPoint]:
    return [
        ParetoPoint("searched#0 (13k)", dice=0.32, params=13_000, kind="searched", run_id="a"),
        ParetoPoint("searched#1 (40k)", dice=0.30, params=40_000, kind="searched", run_id="b"),
        ParetoPoint("unet (1.4M)", dice=0.43, params=1_400_000, kind="baseline", run_id="c"),
    ]


def test_frontier_note_and_summary_metrics() -> None:
    points = _points()
    front = pareto_front(points)
    note = frontier_note(points, front, dice_label="validation Dice")
    rows = [ln for ln in note.splitlines() if ln.startswith("| ")][1:]
    assert [r.split("|")[2].strip() for r in rows] == [
        "searched#0 (13k)", "unet (1.4M)", "searched#1 (40k)"]  # fmt: skip
    assert [r.split("|")[1].strip() for r in rows] == ["*", "*", ""]
    assert summary_metrics(points, front) == {
        "frontier_size": 2.0, "networks": 3.0, "best_searched_dice": 0.32,
        "best_searched_params": 13_000.0, "best_baseline_dice": 0.43,
        "best_baseline_params": 1_400_000.0, "networks_did_not_learn": 0.0,
    }  # fmt: skip


def test_architecture_note_lists_the_cells() -> None:
    arch = {"space": "c2f", "spatial_dims": 3, "in_channels": 1, "out_channels": 2, "width": 8,
            "levels": 3, "topology": "0-1-0", "ops": [["conv3"], ["p3d"], ["skip", "conv3"]]}
    note = architecture_note(arch, name="searched#0 (12k)",
                             metrics={"val_dice": 0.5, "params": 12_000})  # fmt: skip
    assert note.startswith("### searched#0 (12k)")
    assert "val_dice 0.5000" in note and "params 12,000" in note
    assert "`0-1-0`" in note and "2: `skip + conv3`" in note
