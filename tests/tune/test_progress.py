"""Progress when the output is not a terminal: a line on stdout at most every
``RAYNAS_PROGRESS_EVERY_S`` seconds and at the stage's end, so a redirected search is never
silent for minutes. Driven with Ray Tune's own ``Trial`` objects (stubs: no trainable runs)."""

from __future__ import annotations

import pytest
from ray.tune.experiment import Trial

from raynas.tune.callbacks import ProgressCallback


def _trial(candidate: str) -> Trial:
    return Trial("raynas_stage", config={"candidate": candidate}, stub=True)


def test_lines_on_stdout_every_interval_and_at_the_end(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("RAYNAS_PROGRESS_EVERY_S", "0")  # every event prints
    cb = ProgressCallback(stage="coarse", epochs=4, labels={"cluster3": "cluster3"})
    a, b = _trial("cluster3"), _trial("cluster5")
    cb.on_trial_start(0, [a, b], a)
    cb.on_trial_start(0, [a, b], b)
    cb.on_trial_result(1, [a, b], a, {"epoch": 2, "dice": 0.31, "best_dice": 0.412})
    cb.on_trial_result(1, [a, b], b, {"epoch": 4, "dice": 0.1, "best_dice": 0.2})
    cb.on_trial_complete(2, [a, b], b)
    out = capsys.readouterr().out.splitlines()
    assert out, "no progress line on stdout"
    assert out[-1].startswith("[coarse 0m")
    assert "1/2 trials done, 1 running" in out[-1]
    assert "best val Dice 0.412 (cluster3, epoch 2/4)" in out[-1]

    monkeypatch.setenv("RAYNAS_PROGRESS_EVERY_S", "3600")  # nothing until the end
    cb.on_step(3, [a, b])
    cb.on_trial_result(3, [a, b], a, {"epoch": 3, "dice": 0.2, "best_dice": 0.412})
    assert capsys.readouterr().out == ""
    cb.on_experiment_end([a, b])
    (line,) = capsys.readouterr().out.splitlines()
    assert line.startswith("[coarse") and "2 trials" in line


def test_retrain_progress_names_each_network_as_mlflow_does(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """Issue 25: the retrain stage's progress said ``baseline-unet#0`` and
    ``searched0-0-0-1-2-...#0`` where MLflow and the frontier say ``unet-0``, ``searched0-0``."""
    monkeypatch.setenv("RAYNAS_PROGRESS_EVERY_S", "0")
    keys = {"searched0-0-0-1-2-2-3-2-2-1-1-0-0-0": "searched", "baseline-unet": "baseline"}
    cb = ProgressCallback(stage="retrain", epochs=2, labels={k: k for k in keys}, kinds=keys)
    a, b = (_trial(k) for k in keys)
    for trial, best in ((a, 0.3), (b, 0.4)):
        cb.on_trial_start(0, [a, b], trial)
        cb.on_trial_result(1, [a, b], trial, {"epoch": 1, "dice": best, "best_dice": best})
    assert sorted(row["label"] for row in cb.rows.values()) == ["searched0-0", "unet-0"]
    assert "(unet-0, epoch 1/2)" in capsys.readouterr().out.splitlines()[-1]
