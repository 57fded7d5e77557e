"""The ``asha`` coarse strategy's trial program: one sampled choice trained stand-alone, scored
as the supernet strategy scores a topology, resumable from its checkpoint state."""

from __future__ import annotations

from pathlib import Path

import torch
from stage_specs import through_disk, tiny_spec

from raynas.nets import build_network, count_parameters
from raynas.spaces import load_space
from raynas.stages import CoarseProgram, StandaloneCoarseProgram, make_program
from raynas.strategy.selection import coarse_score

CHOICE = '{"topology":"0-0-1-1-0-0"}'
ASHA = ["coarse.strategy=asha", "coarse.epochs=2", "coarse.rank_by=loss"]


def test_asha_trial_trains_the_choice_standalone_and_reports_its_score(
    synthetic_root: Path,
) -> None:
    spec = tiny_spec("coarse", synthetic_root, overrides=ASHA,
                     candidate={"key": "asha0", "trial": "asha0#0", "choice_json": CHOICE})
    program = make_program(spec)
    assert isinstance(program, StandaloneCoarseProgram)
    # the choice's own network (coarse op on every edge, coarse width): no supernet slots
    arch = load_space("c2f_small").coarse_architecture(
        {"topology": "0-0-1-1-0-0"}, in_channels=program.in_channels,
        out_channels=program.num_classes, width=2)
    assert program.params == count_parameters(build_network(arch))
    first = program.run_epoch()
    assert first["topology"] == "0-0-1-1-0-0" and first["choice_json"] == CHOICE
    assert first["rank_score"] == coarse_score("loss", dice=first["dice"], loss=first["val_loss"])
    assert first["best_rank_score"] == first["rank_score"]

    resumed = make_program(spec)
    resumed.load_state_dict(through_disk(program.state_dict()))
    second, again = program.run_epoch(), resumed.run_epoch()
    assert second["best_rank_score"] == max(first["rank_score"], second["rank_score"])
    for key in ("dice", "rank_score", "best_rank_score", "loss"):
        assert again[key] == second[key], key  # resumed from epoch 1 continues exactly
    for name, tensor in program.model.state_dict().items():
        assert torch.equal(tensor, resumed.model.state_dict()[name]), name


def test_supernet_strategy_still_builds_the_cluster_supernet(synthetic_root: Path) -> None:
    spec = tiny_spec("coarse", synthetic_root, candidate={"key": "cluster0"})
    assert type(make_program(spec)) is CoarseProgram
