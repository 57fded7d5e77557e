"""Stage programs: one trial's work (coarse, fine, retrain), epoch by epoch, Ray-free.

:mod:`raynas.tune` drives these from Ray trials; tests and scripts can drive them directly.
"""

from __future__ import annotations

from raynas.stages.base import StageProgram
from raynas.stages.coarse import CoarseProgram, choice_key, choice_label
from raynas.stages.coarse_asha import StandaloneCoarseProgram
from raynas.stages.context import TrialSpec, build_trial_data
from raynas.stages.fine import FineProgram, at_width
from raynas.stages.retrain import RetrainProgram

__all__ = [
    "PROGRAMS",
    "CoarseProgram",
    "FineProgram",
    "RetrainProgram",
    "StageProgram",
    "StandaloneCoarseProgram",
    "TrialSpec",
    "at_width",
    "build_trial_data",
    "choice_key",
    "choice_label",
    "make_program",
]

PROGRAMS: dict[str, type[StageProgram]] = {
    "coarse": CoarseProgram,
    "fine": FineProgram,
    "retrain": RetrainProgram,
}


def make_program(spec: TrialSpec) -> StageProgram:
    """The program of a trial: :data:`PROGRAMS` by stage, except a coarse trial of the ``asha``
    strategy (``coarse.strategy``), which trains one choice stand-alone."""
    if spec.stage == "coarse" and spec.preset.get("coarse", {}).get("strategy") == "asha":
        return StandaloneCoarseProgram(spec)
    return PROGRAMS[spec.stage](spec)
