"""FineProgram on tiny synthetic data: warm-up, architecture updates, derivation, state."""

from __future__ import annotations

import json

import pytest
import torch
from stage_specs import through_disk, tiny_spec

from raynas.stages import FineProgram

pytestmark = pytest.mark.slow

OPTIONS = ["data.patch_size=[16,16,8]", "fine.epochs=3", "fine.warmup_epochs=1"]
CHOICE = json.dumps({"topology": "0-1-2-1-1-0"})


def _fine(root) -> FineProgram:
    spec = tiny_spec("fine", root, candidate={"key": "fine0", "choice_json": CHOICE},
                     overrides=OPTIONS)
    return FineProgram(spec)


def _arch(program: FineProgram) -> list[torch.Tensor]:
    return [p.detach().clone() for p in program.model.arch_parameters()]


def test_warm_up_keeps_the_architecture_then_updates_it(synthetic_root):
    from raynas.nets import build_network, count_parameters, load_architecture

    program = _fine(synthetic_root)
    start = _arch(program)
    first = program.run_epoch()
    assert first["arch_updates"] is False
    assert all(torch.equal(a, b) for a, b in zip(start, _arch(program), strict=True))
    second = program.run_epoch()
    assert second["arch_updates"] is True
    assert any(not torch.equal(a, b) for a, b in zip(start, _arch(program), strict=True))
    arch = load_architecture(second["arch_json"])
    assert arch.topology == "0-1-2-1-1-0"
    assert second["params"] == count_parameters(build_network(arch))
    assert program.artifacts() == {"architecture.json": second["arch_json"]}
    assert 0.0 <= second["dice"] <= 1.0


def test_state_round_trip_keeps_weights_architecture_and_both_optimisers(synthetic_root):
    a = _fine(synthetic_root)
    a.run_epoch()
    a.run_epoch()
    b = _fine(synthetic_root)
    b.load_state_dict(through_disk(a.state_dict()))
    assert (b.epoch, b.best_dice) == (a.epoch, a.best_dice) and not b.finished
    assert all(torch.equal(x, y) for x, y in zip(_arch(a), _arch(b), strict=True))
    sa, sb = a.arch_optimizer.state_dict(), b.arch_optimizer.state_dict()
    assert sa["param_groups"] == sb["param_groups"] and sa["state"].keys() == sb["state"].keys()
    for key, state in sa["state"].items():
        assert torch.equal(state["exp_avg"], sb["state"][key]["exp_avg"])
    assert b.arch_json == a.arch_json  # the derived architecture is back before any epoch
    assert b.scheduler.state_dict() == a.scheduler.state_dict()
