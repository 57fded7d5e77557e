"""RetrainProgram on tiny synthetic data (3D C2F and 2D Thrifty): best state, state, hparams."""

from __future__ import annotations

import pytest
import torch
from stage_specs import through_disk, tiny_spec, tiny_thrifty_space

from raynas.stages import RetrainProgram

pytestmark = pytest.mark.slow

CASES = {
    # space, dataset, root fixture, patch
    "c2f_3d": ("c2f_small", "synthetic", "synthetic_root", "[16,16,8]"),
    "thrifty_2d": (None, "synthetic2d", "synthetic2d_root", "[32,32,1]"),
}


def _retrain(request, case: str, *overrides: str, hparams: dict | None = None):
    from raynas.spaces import load_space

    space, dataset, fixture, patch = CASES[case]
    root = request.getfixturevalue(fixture)
    space = space or tiny_thrifty_space(request.getfixturevalue("tmp_path"))
    arch = load_space(space).sample_architecture(seed=0, in_channels=1, out_channels=3, width=4)
    candidate = {"key": "net", "name": "net", "arch_json": arch.to_json()}
    if hparams:
        candidate["hparams"] = hparams
    spec = tiny_spec("retrain", root, candidate=candidate, space=space, dataset=dataset,
                     overrides=[f"data.patch_size={patch}", "retrain.epochs=3", *overrides])
    return RetrainProgram(spec)


@pytest.mark.parametrize("case", list(CASES))
def test_best_state_holds_the_weights_of_the_best_epoch(request, case):
    from raynas.nets import build_network

    program = _retrain(request, case)
    dices = [program.run_epoch()["dice"] for _ in range(program.epochs)]
    assert program.finished and program.best_dice == max(dices)
    net = build_network(program.arch)
    net.load_state_dict(program.best_state)
    assert program.evaluate(net).dice == pytest.approx(program.best_dice, abs=1e-6)
    if dices[-1] < max(dices):  # then the best weights are not the last ones
        last = program.model.state_dict()
        assert any(not torch.equal(last[k], v) for k, v in program.best_state.items())


def test_state_round_trip_keeps_the_best_state_and_artifacts(request):
    a = _retrain(request, "c2f_3d")
    a.run_epoch()
    b = _retrain(request, "c2f_3d")
    b.load_state_dict(through_disk(a.state_dict()))
    assert (b.epoch, b.best_dice) == (a.epoch, a.best_dice)
    for key, value in a.best_state.items():
        assert torch.equal(b.best_state[key], value), key
    assert b.artifacts() == a.artifacts() and "architecture.json" in b.artifacts()
    assert b.params == a.params == sum(p.numel() for p in b.model.parameters())


def test_sampled_hparams_reach_the_optimiser(request):
    program = _retrain(request, "c2f_3d", "retrain.optimizer=sgd",
                       hparams={"lr": 0.0123, "weight_decay": 0.001, "optimizer": "adamw"})
    group = program.optimizer.param_groups[0]
    assert type(program.optimizer).__name__ == "AdamW"
    # the base lr (the smoke recipe's warm-up starts the first epoch below it)
    assert (group["initial_lr"], group["weight_decay"]) == (pytest.approx(0.0123), 0.001)
