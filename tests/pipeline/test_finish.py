"""The end of a retrain trial and of a search, Ray-free: the test Dice a trial measures at its
end equals the one the driver measures from its saved weights (the fallback for trials ASHA
stopped), and the best model is chosen among the frontier's searched trials by validation Dice
(the frontier itself on validation Dice; test Dice decides nothing)."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import pytest

from raynas.tracking import ParetoPoint

pytestmark = pytest.mark.slow  # trains a tiny network for one epoch (~20 s on 2 cores)


def _preset():
    from raynas.config import load_preset

    return load_preset(
        "smoke",
        [
            "data.synthetic_cases=6",
            "data.cases=6",
            "data.folds=3",
            "retrain.epochs=1",
            "retrain.steps_per_epoch=1",
        ],
    )


def test_trial_and_driver_score_the_same_test_cases(tmp_path: Path) -> None:
    import torch

    from raynas.data import open_dataset
    from raynas.pipeline.finish import trial_scores
    from raynas.spaces import load_space
    from raynas.stages import RetrainProgram, TrialSpec

    torch.set_num_threads(2)
    preset = _preset()
    arch = load_space("c2f_small").sample_architecture(
        seed=0, in_channels=1, out_channels=3, width=4
    )
    spec = TrialSpec(
        stage="retrain",
        space="c2f_small",
        dataset="synthetic",
        data_root=None,
        seed=0,
        preset=preset.model_dump(mode="json"),
        candidate={"arch_json": arch.to_json()},
        device="cpu",
    )
    program = RetrainProgram(spec)
    metrics = program.run_epoch()
    assert program.finished and metrics["test_volumes"] == 1
    assert set(program.data.bundle.test_cases).isdisjoint(
        program.data.bundle.train_cases + program.data.bundle.val_cases
    )
    assert metrics["val_dice"] == metrics["best_dice"] == metrics["dice"]
    assert {"test_dice", "test_dice_organ", "test_dice_lesion", "val_dice_organ"} <= set(metrics)
    state = program.state_dict()
    assert state["extra"]["test"]["test_dice"] == metrics["test_dice"]  # measured once, kept

    weights = tmp_path / "net#0.pt"
    torch.save(program.best_state, weights)
    dataset = open_dataset("synthetic", seed=0, synthetic_cases=6, limit_cases=6)
    setup = SimpleNamespace(preset=preset, dataset=dataset, gpus_per_trial=0.0, target=None)
    # a record as ASHA leaves it: stopped before its last epoch, no test Dice reported
    record = SimpleNamespace(
        last={"dice": metrics["dice"]},
        best_dice=metrics["best_dice"],
        checkpoint=None,
        iterations=1,
        trial="net#0",
    )
    scores = trial_scores(setup, record, arch.to_json(), weights, run_id=None)
    assert scores["test_dice"] == pytest.approx(metrics["test_dice"], abs=1e-6)
    for key in ("test_dice_organ", "test_dice_lesion"):
        assert scores[key] == pytest.approx(metrics[key], abs=1e-6, nan_ok=True)
    assert scores["val_dice"] == metrics["val_dice"]
    # a record that reported them: taken as reported, nothing is evaluated again
    reported = SimpleNamespace(**{**vars(record), "last": metrics})
    assert trial_scores(setup, reported, arch.to_json(), None, None)["test_dice"] == (
        metrics["test_dice"]
    )


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        # name, kind, test Dice, val Dice, params: on the front a#0 and b#1; b#1 has the best val
        ([("a#0", "searched", 0.7, 0.72, 10), ("b#1", "searched", 0.8, 0.9, 20)], "b#1"),
        # the best validation Dice wins, not the best test Dice
        ([("a#0", "searched", 0.8, 0.70, 10), ("a#1", "searched", 0.7, 0.75, 5)], "a#1"),
        # a great test Dice does not put a network on the front nor make it the best
        ([("a#0", "searched", 0.99, 0.6, 30), ("a#1", "searched", 0.1, 0.7, 10)], "a#1"),
        # off the front (dominated on validation by a baseline) never wins while a searched
        # front point exists
        ([("a#0", "searched", 0.6, 0.8, 30), ("u#0", "baseline", 0.1, 0.9, 20),
          ("a#1", "searched", 0.7, 0.5, 10)], "a#1"),
        # baselines are chosen only where no searched trial exists
        ([("unet#0", "baseline", 0.9, 0.9, 10), ("s#0", "searched", 0.1, 0.1, 99)], "s#0"),
        ([("unet#0", "baseline", 0.9, 0.9, 10)], "unet#0"),
        # no test Dice at all (NaN): still the searched trial by val Dice
        ([("a#0", "searched", math.nan, 0.4, 10), ("a#1", "searched", math.nan, 0.5, 10)], "a#1"),
        # random controls are never the search's best model
        ([("random0#0", "random", 0.9, 0.9, 5), ("s#0", "searched", 0.1, 0.1, 99)], "s#0"),
    ],
)
def test_best_model(rows: list[tuple], expected: str) -> None:
    from raynas.strategy.selection import best_model

    points = [
        ParetoPoint(n, val_dice=v, params=p, kind=k, test_dice=t, run_id=n)
        for n, k, t, v, p in rows
    ]
    assert best_model(points).name == expected
