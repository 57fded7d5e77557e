"""Random controls (``retrain.random_controls``): the seeded draw, the preset field, the plan's
count and the parent run's search-vs-random metrics. No Ray, no training."""

from __future__ import annotations

import json
import math

import pytest

from raynas.pipeline.controls import control_seed, random_controls
from raynas.spaces import load_space
from raynas.tracking import ParetoPoint
from raynas.tracking.notes import summary_metrics


def _draw(seed: int, count: int = 3, space: str = "c2f_small") -> dict[str, str]:
    return random_controls(load_space(space), count=count, search_seed=seed, in_channels=1,
                           out_channels=3, width=8)  # fmt: skip


def test_the_search_seed_draws_the_controls() -> None:
    first, again = _draw(0), _draw(0)
    assert list(first) == ["random0", "random1", "random2"]
    assert first == again  # the same search seed: the same architectures
    assert first != _draw(1)  # another seed: others
    assert len(set(first.values())) > 1  # not one architecture three times
    space = load_space("c2f_small")
    for i, arch_json in enumerate(first.values()):  # exactly the space's own random draw
        arch = space.sample_architecture(seed=control_seed(0, i), in_channels=1, out_channels=3,
                                         width=8)  # fmt: skip
        assert json.loads(arch_json) == json.loads(arch.to_json())
        assert json.loads(arch_json)["width"] == 8  # the retrain width
    assert _draw(0, count=0) == {}
    thrifty = random_controls(load_space("thrifty"), count=1, search_seed=0, in_channels=1,
                              out_channels=3, width=None)  # fmt: skip
    assert json.loads(thrifty["random0"])["space"] == "thrifty"
    with pytest.raises(ValueError, match="count"):
        _draw(0, count=-1)


def test_preset_field_defaults_and_validation() -> None:
    from raynas.config import load_preset
    from raynas.errors import ConfigError

    assert load_preset("smoke").retrain.random_controls == 1
    assert load_preset("default").retrain.random_controls == 2
    assert load_preset("msd_task02_8gpu").retrain.random_controls == 2
    for bad in ("-1", "true", "1.5"):
        with pytest.raises(ConfigError, match="retrain.random_controls"):
            load_preset("smoke", [f"retrain.random_controls={bad}"])


def test_plan_counts_the_controls(tmp_path, monkeypatch, capsys) -> None:
    from raynas.cli.main import main

    monkeypatch.chdir(tmp_path)
    trials = {}
    for n in (0, 3):
        argv = ["search", "--space", "c2f_small", "--dataset", "synthetic", "--preset", "smoke",
                "--plan", "--json", "--assume-step-s", "0.5", "--set",
                f"retrain.random_controls={n}"]  # fmt: skip
        assert main(argv) == 0
        trials[n] = json.loads(capsys.readouterr().out)["stages"]["retrain"]["trials"]
    assert trials[3] == trials[0] + 3


def _pt(name: str, kind: str, val: float, test: float, params: int = 1000) -> ParetoPoint:
    return ParetoPoint(name, val_dice=val, params=params, kind=kind, test_dice=test)


def test_search_vs_random_on_the_parent() -> None:
    points = [
        _pt("searched0#0", "searched", 0.70, 0.50),
        _pt("searched1#0", "searched", 0.60, 0.90),  # best test, not best validation
        _pt("random0#0", "random", 0.65, 0.40),
        _pt("random1#0", "random", 0.50, 0.95),  # best test, not best validation
        _pt("baseline-unet#0", "baseline", 0.80, 0.10),
    ]
    metrics = summary_metrics(points, [])
    # each side's best by validation Dice: 0.70 / 0.50 searched, 0.65 / 0.40 random
    assert metrics["search_vs_random_val_dice"] == pytest.approx(0.05)
    assert metrics["search_vs_random_test_dice"] == pytest.approx(0.10)
    assert metrics["best_random_val_dice"] == pytest.approx(0.65)
    # no random control, or an undefined test figure: not logged (never a made-up number)
    assert not any(k.startswith("search_vs_random") for k in summary_metrics(points[:2], []))
    nan_test = [*points[:2], _pt("random0#0", "random", 0.65, math.nan)]
    out = summary_metrics(nan_test, [])
    assert "search_vs_random_test_dice" not in out and "search_vs_random_val_dice" in out
