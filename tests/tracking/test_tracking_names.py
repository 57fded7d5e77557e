"""What trial runs are called: one short name per network everywhere, one meaning per metric
name, and the descriptions (in the form MLflow renders) and summary metrics a search's runs
carry."""

from __future__ import annotations

import pytest

from raynas.tracking import ParetoPoint, pareto_front
from raynas.tracking.names import (
    final_metrics,
    is_constant,
    mlflow_metrics,
    network_name,
    short_run_name,
)
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
    ("stage", "key", "kind", "name"),
    [
        ("retrain", "searched0-0-1-1-2-1-0-0-0-0-0-0-0#0", "searched", "searched0-0"),
        ("retrain", "searched1-0-1-0#2", "searched", "searched1-2"),
        ("retrain", "baseline-unet#0", "baseline", "unet-0"),
        ("retrain", "random1#0", "random", "random1-0"),
        ("retrain", "tiny#0", "searched", "tiny-0"),
        ("coarse", "cluster3", "searched", "coarse cluster3"),
        ("coarse", "d3_w16", "searched", "coarse d3_w16"),
        ("fine", "fine0-cluster3", "searched", "fine#0 cluster3"),
    ],
)  # fmt: skip
def test_short_run_names(stage: str, key: str, kind: str, name: str) -> None:
    got = short_run_name(stage, key, kind=kind)
    assert got == name and len(got) <= 40


@pytest.mark.parametrize(
    ("trial", "kind", "name"),
    [
        ("searched0-0-0-1-2-2-3-2-2-1-1-0-0-0#0", "searched", "searched0-0"),
        ("baseline-unet#0", "baseline", "unet-0"),
        ("baseline-dynunet#3", "baseline", "dynunet-3"),
        ("random1#0", "random", "random1-0"),
        ("my.arch v2#0", "searched", "my_arch_v2-0"),  # raynas retrain "my.arch v2.json"
        ("a:b/c%d'e\"f#1", "searched", "a_b_c_d_e_f-1"),
    ],
)  # fmt: skip
def test_one_name_per_network_is_a_valid_mlflow_model_name(
    trial: str, kind: str, name: str
) -> None:
    """Issue 25: one network had three names (``baseline-unet#0``, ``unet#0 (1.4M)``,
    ``baseline-unet-0``); now one, short, without its size, and a name MLflow accepts for a
    logged model (and an artifact path: no ``#``)."""
    from mlflow.utils.validation import _validate_logged_model_name

    got = network_name(trial, kind)
    assert got == name
    _validate_logged_model_name(got)
    assert "#" not in got and " " not in got and "(" not in got


def _trial_points() -> list[ParetoPoint]:
    return [
        ParetoPoint("searched0-0-1-1-2-1-0#0", val_dice=0.32, params=13_000, kind="searched",
                    run_id="8553341f0123456789abcdef01234567", test_dice=0.2),
        ParetoPoint("random1#0", val_dice=0.30, params=40_000, kind="random",
                    run_id="b" * 32, test_dice=0.9),
        ParetoPoint("baseline-unet#0", val_dice=0.43, params=1_411_787, kind="baseline",
                    run_id="c" * 32, test_dice=0.41),
    ]  # fmt: skip


def test_one_name_in_table_files_plot_and_descriptions(tmp_path) -> None:
    """The terminal table, pareto.csv/.json, the plot's labels and the parent's description all
    name a network the way its MLflow run and logged model are named."""
    import csv
    import json
    import re

    from rich.console import Console

    from raynas.pipeline.finish import model_name
    from raynas.tracking.pareto import frontier_table, save_frontier
    from raynas.tracking.plots import frontier_figure

    points = _trial_points()
    names = ["searched0-0", "random1-0", "unet-0"]
    assert [p.network for p in points] == names
    assert [model_name(p.name, p.kind) for p in points] == names  # the logged models
    assert [short_run_name("retrain", p.name, kind=p.kind) for p in points] == names  # runs
    console = Console(width=120, record=True)
    console.print(frontier_table(points))
    text = console.export_text()
    assert all(n in text for n in names) and "#" not in text and "baseline-" not in text
    paths = save_frontier(points, tmp_path, stem="pareto")
    rows = list(csv.DictReader(paths["csv"].open()))
    assert sorted(r["name"] for r in rows) == sorted(names)
    assert {r["name"]: r["trial"] for r in rows}["unet-0"] == "baseline-unet#0"  # models/<trial>
    data = json.loads(paths["json"].read_text())
    assert sorted(data["front"]) == ["searched0-0", "unet-0"]
    _, labels = frontier_figure(points, pareto_front(points))
    assert sorted(a.get_text() for a in labels) == sorted(names)  # the size is the x axis
    note = frontier_note(points, pareto_front(points), dice_label="validation Dice")
    for name in names:
        assert re.search(rf"^- {name}: validation Dice ", note, re.M), note


def _points() -> list[ParetoPoint]:
    return [
        ParetoPoint("searched0-0-1-0#0", val_dice=0.32, params=13_000, kind="searched",
                    run_id="a", test_dice=0.2),
        ParetoPoint("searched1-0-1-1-0#0", val_dice=0.30, params=40_000, kind="searched",
                    run_id="b", test_dice=0.9),  # the best test Dice: picks nothing
        ParetoPoint("baseline-unet#0", val_dice=0.43, params=1_400_000, kind="baseline",
                    run_id="c"),
    ]


def test_frontier_note_and_summary_metrics() -> None:
    points = _points()
    front = pareto_front(points)
    note = frontier_note(points, front, dice_label="validation Dice")
    bullets = [ln[2:].split(":")[0] for ln in note.splitlines() if ln.startswith("- ")]
    assert bullets == ["searched0-0", "unet-0", "searched1-0"]  # the frontier first
    front_part, rest = note.split("Not on it:")
    assert "searched1-0" in rest and "searched1-0" not in front_part
    assert "validation Dice up" in note and "test Dice 0.9000" in note
    assert summary_metrics(points, front) == {
        "frontier_size": 2.0, "networks": 3.0, "best_searched_val_dice": 0.32,
        "best_searched_test_dice": 0.2, "best_searched_params": 13_000.0,
        "best_baseline_val_dice": 0.43, "best_baseline_params": 1_400_000.0,
        "networks_did_not_learn": 0.0,
    }  # fmt: skip


def test_descriptions_in_the_form_mlflow_shows() -> None:
    """Issue 25: the parent's description was a Markdown table MLflow 3.17 shows raw (its
    separator ``|:-:|`` is no table to showdown), the tooltips a raw ``###``: plain lines and
    ``-`` bullets only, the first line saying what it is about."""
    points = _trial_points()
    arch = {"space": "c2f", "spatial_dims": 3, "in_channels": 1, "out_channels": 2, "width": 8,
            "levels": 3, "topology": "0-1-0", "ops": [["conv3"], ["p3d"], ["skip", "conv3"]]}
    notes = [
        frontier_note(points, pareto_front(points), dice_label="validation Dice"),
        architecture_note(arch, name="searched0-0", kind="searched",
                          metrics={"val_dice": 0.5, "test_dice": 0.4, "params": 12_000}),
    ]  # fmt: skip
    for note in notes:
        lines = note.splitlines()
        assert not any(ln.lstrip().startswith(("#", "|")) for ln in lines), note
        assert "|" not in note and "`" not in note and "###" not in note
        assert lines[0] and not lines[0].startswith("- ")
    assert notes[0].startswith("Pareto frontier: 2 of 3 networks")
    assert notes[1].splitlines()[0] == (
        "searched0-0 (searched): validation Dice 0.5000 · test Dice 0.4000 · 12,000 parameters")


def test_architecture_note_lists_the_cells() -> None:
    arch = {"space": "c2f", "spatial_dims": 3, "in_channels": 1, "out_channels": 2, "width": 8,
            "levels": 3, "topology": "0-1-0", "ops": [["conv3"], ["p3d"], ["skip", "conv3"]]}
    note = architecture_note(arch, name="searched0-0",
                             metrics={"val_dice": 0.5, "params": 12_000})  # fmt: skip
    assert note.startswith("searched0-0: validation Dice 0.5000 · 12,000 parameters")
    assert "- topology (level of each cell): 0-1-0" in note and "2: skip + conv3" in note
