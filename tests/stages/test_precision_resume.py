"""A trial's precision and cuDNN mode come from the preset and its own device; under fp16 the
GradScaler's state travels in the checkpoint, so a resumed trial continues exactly."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from raynas.config import load_preset
from raynas.stages import RetrainProgram, TrialSpec
from raynas.stages.checkpoint import read_state, write_checkpoint

torch.set_num_threads(1)

DATA = ["data.cases=4", "data.synthetic_cases=8", "data.folds=2", "data.samples_per_case=1",
        "data.batch_size=1", "data.patch_size=[16,16,16]", "data.retrain_patch_size=[16,16,16]"]
RETRAIN = ["retrain.epochs=3", "retrain.steps_per_epoch=2", "retrain.width=4"]
ARCH = {"space": "c2f", "spatial_dims": 3, "in_channels": 1, "out_channels": 3, "width": 4,
        "levels": 3, "topology": "0-1-1-0", "ops": [["conv3"], ["p3d"], ["skip"],
                                                     ["conv3", "sep_conv3"]]}


def _program(*overrides: str) -> RetrainProgram:
    preset = load_preset("smoke", [*DATA, *RETRAIN, *overrides])
    spec = TrialSpec(stage="retrain", space="c2f_small", dataset="synthetic", data_root=None,
                     seed=0, preset=preset.model_dump(mode="json"),
                     candidate={"key": "t0", "arch_json": json.dumps(ARCH)}, device="cpu")
    return RetrainProgram(spec)


def _run(program: RetrainProgram, epochs: int) -> list[tuple[float, float]]:
    return [(m["loss"], m["dice"]) for m in (program.run_epoch() for _ in range(epochs))]


@pytest.mark.slow
def test_fp16_resume_restores_the_grad_scaler_and_continues_exactly(tmp_path: Path):
    straight = _program("amp=fp16")
    expected = _run(straight, 3)
    weights = {k: v.clone() for k, v in straight.model.state_dict().items()}

    first = _program("amp=fp16")
    head = _run(first, 1)
    scale = first.scaler_state()["weights"]["scale"]
    # a real fp16 run: the first scaled steps overflowed, so the loss scale backed off from
    # its initial 2**16; a fresh scaler after the resume would skip steps again
    assert scale < 2.0**16
    write_checkpoint(first, tmp_path, {"epoch": 1})
    del first

    state = read_state(tmp_path)
    assert state["precision"] == "fp16 autocast + grad scaler"
    assert state["scalers"]["weights"]["scale"] == scale
    resumed = _program("amp=fp16")
    random.random(), np.random.rand(), torch.rand(3)  # another process: other global states
    resumed.load_state_dict(state)
    assert resumed.scaler_state()["weights"]["scale"] == scale
    assert head + _run(resumed, 2) == expected
    got = resumed.model.state_dict()
    assert all(torch.equal(got[k], weights[k]) for k in weights)


def test_precision_cudnn_mode_and_pinning_follow_the_preset_and_the_trial_device():
    saved = torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark
    try:
        fast = _program("amp=off", "deterministic=false")
        assert torch.backends.cudnn.benchmark and not torch.backends.cudnn.deterministic
        exact = _program("amp=auto")  # deterministic: true by default
        assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
    finally:
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved
    assert exact.precision.describe() == "float32"  # auto is float32 on CPU
    assert exact.setup == "cpu: float32; cuDNN deterministic (benchmark off)"
    assert "benchmark on" in fast.setup
    assert exact.scaler_state() == {} and "scalers" in exact.state_dict()
    bundle = exact.data.bundle  # a CPU trial pins nothing, whatever GPU the machine has
    assert not any(loader.pin_memory for loader in (bundle.train, bundle.val, bundle.weights))
    first = exact.run_epoch()
    assert first["precision"] == exact.setup  # the first epoch says what runs
    assert "precision" not in exact.run_epoch()


def test_build_loaders_pins_only_when_asked(synthetic_dataset):
    from raynas.data import build_loaders

    for pin in (False, True):
        bundle = build_loaders(synthetic_dataset, mode="3d", patch_size=(16, 16, 8), folds=3,
                               pin_memory=pin)
        assert {bundle.train.pin_memory, bundle.val.pin_memory, bundle.arch.pin_memory} == {pin}


def test_a_checkpoint_of_another_precision_keeps_its_weights_not_its_scaler(caplog):
    fp16 = _program("amp=fp16")
    scaler_state = fp16.scaler_state()["weights"]
    scaler_state["scale"] = 8.0
    state = {**fp16.state_dict(), "scalers": {"weights": scaler_state}}
    again = _program("amp=fp16")
    again.load_state_dict(state)
    assert again.scaler_state()["weights"]["scale"] == 8.0
    other = _program("amp=bf16")
    with caplog.at_level("WARNING", logger="raynas.trial"):
        other.load_state_dict(state)
    assert other.scaler_state() == {}
    assert "written with fp16 autocast + grad scaler, resumed with bf16 autocast" in caplog.text
    weights = fp16.model.state_dict()
    assert all(torch.equal(v, weights[k]) for k, v in other.model.state_dict().items())
