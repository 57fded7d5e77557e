"""The fine stage hands over the architecture that is trained: Thrifty at the width its coarse
stage chose, C2F at ``retrain.width`` (by design), both recording the width they were searched
at (``search_width``)."""

from __future__ import annotations

import json

import pytest
import torch

from raynas.config import load_preset
from raynas.nets import build_network, count_parameters, load_architecture
from raynas.stages import FineProgram, TrialSpec, at_width

torch.set_num_threads(1)

SMALL = ["data.cases=4", "data.synthetic_cases=4", "data.folds=2", "fine.epochs=2",
         "fine.warmup_epochs=1", "fine.steps_per_epoch=1", "fine.width=4", "retrain.width=12"]


def _program(space: str, dataset: str, choice: dict) -> FineProgram:
    preset = load_preset("smoke", SMALL)
    spec = TrialSpec(stage="fine", space=space, dataset=dataset, data_root=None, seed=0,
                     preset=preset.model_dump(mode="json"), device="cpu",
                     candidate={"key": "fine0", "choice_json": json.dumps(choice)})
    return FineProgram(spec)


@pytest.mark.parametrize("space,dataset,choice,searched,trained", [
    # Thrifty: the coarse stage chose C=8; retrain.width (12) must not replace it
    ("thrifty", "synthetic2d", {"depth": 2, "width": 8}, 8, 8),
    # C2F: searched narrow at fine.width, retrained wide at retrain.width
    ("c2f_small", "synthetic", {"topology": "0-1-2-1-0-0"}, 4, 12),
])
def test_derived_architecture_width(space, dataset, choice, searched, trained):
    program = _program(space, dataset, choice)
    arch = load_architecture(program.derived())
    assert (arch.search_width, arch.width) == (searched, trained)
    metrics = program.run_epoch()
    reported = load_architecture(metrics["arch_json"])
    assert (reported.search_width, reported.width) == (searched, trained)
    # the parameter count the frontier gets is the one of the network that is trained
    assert metrics["params"] == count_parameters(build_network(reported))
    if space == "thrifty":
        assert metrics["params"] == count_parameters(build_network(program.model.derive()))


def test_at_width_keeps_an_earlier_search_width():
    arch = {"space": "c2f", "width": 16, "search_width": 4}
    assert at_width(arch, 32) == {"space": "c2f", "width": 32, "search_width": 4}
    assert at_width({"space": "unet"}, 32) == {"space": "unet"}  # no base width: unchanged
