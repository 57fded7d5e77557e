"""A stage program restored from a checkpoint continues exactly as if it had never stopped (every
RNG is in its state dict), and each trial has its own seed."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from raynas.config import load_preset
from raynas.stages import FineProgram, RetrainProgram, TrialSpec

torch.set_num_threads(1)

DATA = ["data.cases=4", "data.synthetic_cases=8", "data.folds=2", "data.samples_per_case=1",
        "data.batch_size=1", "data.patch_size=[16,16,16]"]
FINE = ["fine.epochs=3", "fine.warmup_epochs=1", "fine.steps_per_epoch=2", "fine.width=4"]
RETRAIN = ["retrain.epochs=3", "retrain.steps_per_epoch=2", "retrain.width=4",
           "data.retrain_patch_size=[16,16,16]"]
ARCH = {"space": "c2f", "spatial_dims": 3, "in_channels": 1, "out_channels": 3, "width": 4,
        "levels": 3, "topology": "0-1-1-0", "ops": [["conv3"], ["p3d"], ["skip"],
                                                     ["conv3", "sep_conv3"]]}


def _spec(stage: str, key: str) -> TrialSpec:
    preset = load_preset("smoke", DATA + (FINE if stage == "fine" else RETRAIN))
    if stage == "fine":
        candidate = {"key": key, "choice_json": json.dumps({"topology": "0-1-2-1-0-0"})}
    else:
        candidate = {"key": key, "arch_json": json.dumps(ARCH)}
    return TrialSpec(stage=stage, space="c2f_small", dataset="synthetic", data_root=None,
                     seed=0, preset=preset.model_dump(mode="json"), candidate=candidate,
                     device="cpu")


def _make(stage: str, key: str = "trial0") -> FineProgram | RetrainProgram:
    return (FineProgram if stage == "fine" else RetrainProgram)(_spec(stage, key))


def _losses(program, epochs: int) -> list[tuple[float, float]]:
    out = []
    for _ in range(epochs):
        m = program.run_epoch()
        out.append((m["loss"], m["dice"]))
    return out


def _weights(program) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in program.model.state_dict().items()}


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["fine", "retrain"])
def test_resume_from_epoch_k_equals_an_uninterrupted_run(stage, tmp_path: Path):
    straight = _make(stage)
    expected = _losses(straight, 3)
    weights = _weights(straight)

    first = _make(stage)
    head = _losses(first, 1)
    assert head == expected[:1]
    torch.save(first.state_dict(), tmp_path / "state.pt")
    del first

    resumed = _make(stage)
    random.random(), np.random.rand(), torch.rand(3)  # another process: other global states
    resumed.load_state_dict(torch.load(tmp_path / "state.pt", weights_only=True))
    tail = _losses(resumed, 2)
    assert head + tail == expected
    got = _weights(resumed)
    assert all(torch.equal(got[k], weights[k]) for k in weights)
    if stage == "fine":
        assert resumed.arch_json == straight.arch_json


def test_trials_with_different_keys_get_different_seeds():
    a, b, a2 = _spec("fine", "cluster0"), _spec("fine", "cluster1"), _spec("fine", "cluster0")
    assert a.trial_seed == a2.trial_seed != b.trial_seed
    assert a.trial_seed != a.seed  # not the search seed itself
    named = TrialSpec(**{**a.to_dict(), "candidate": {**a.candidate, "trial": "cluster0#1"}})
    assert named.trial_key == "cluster0#1" and named.trial_seed != a.trial_seed


def test_programs_of_different_trials_start_differently_on_the_same_split():
    p0, p1 = _make("retrain", "searched0"), _make("retrain", "searched1")
    w0, w1 = _weights(p0), _weights(p1)
    assert not all(torch.equal(w0[k], w1[k]) for k in w0)  # own initial weights
    b0, b1 = p0.data.bundle, p1.data.bundle
    assert (b0.train_cases, b0.val_cases) == (b1.train_cases, b1.val_cases)  # same folds
    again = _make("retrain", "searched0")
    assert all(torch.equal(w0[k], v) for k, v in _weights(again).items())  # reproducible
