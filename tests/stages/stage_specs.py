"""Tiny trial specs for the stage-program tests: 4 synthetic cases, 2 folds, few steps."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from raynas.stages import TrialSpec

torch.set_num_threads(1)  # tiny tensors: a second thread only adds sync cost

TINY = [
    "data.cases=4",
    "data.folds=2",
    "data.batch_size=1",
    "data.samples_per_case=1",
    "coarse.width=2",
    "coarse.steps_per_epoch=1",
    "fine.width=2",
    "fine.steps_per_epoch=1",
    "retrain.width=2",
    "retrain.steps_per_epoch=2",
]


def tiny_spec(
    stage: str,
    root: Path,
    *,
    candidate: dict[str, Any],
    space: str = "c2f_small",
    dataset: str = "synthetic",
    overrides: list[str] | tuple[str, ...] = (),
    seed: int = 0,
) -> TrialSpec:
    """A spec of ``stage`` on the MSD folder ``root`` with the smoke preset made tinier."""
    from raynas.config import load_preset

    preset = load_preset("smoke", [*TINY, *overrides])
    return TrialSpec(
        stage=stage, space=space, dataset=dataset, data_root=str(root), seed=seed,
        preset=preset.model_dump(mode="json"), candidate=candidate, device="cpu",
    )  # fmt: skip


def through_disk(state: dict[str, Any]) -> dict[str, Any]:
    """``state`` saved and loaded back the way checkpoints are (``weights_only=True``)."""
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    return torch.load(buf, map_location="cpu", weights_only=True)


TINY_THRIFTY = """\
name: thrifty_tiny
type: thrifty
description: a 2D Thrifty space small enough for CPU unit tests
spatial_dims: 2
depth: 2
width: 4
nodes: 1
keep_edges: 1
ops: [conv3, skip]
pc_k: 2
candidates_depth: [2]
candidates_width: [4]
"""


def tiny_thrifty_space(folder: Path) -> str:
    """Writes the tiny Thrifty space YAML into ``folder``; returns its absolute path."""
    path = folder / "thrifty_tiny.yaml"
    path.write_text(TINY_THRIFTY, encoding="utf-8")
    return str(path.resolve())
