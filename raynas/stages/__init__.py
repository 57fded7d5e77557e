"""Stage programs: one trial's work (coarse, fine, retrain), epoch by epoch, Ray-free.

:mod:`raynas.tune` drives these from Ray trials; tests and scripts can drive them directly.
"""

from __future__ import annotations

from raynas.stages.base import StageProgram
from raynas.stages.coarse import CoarseProgram, choice_key, choice_label
from raynas.stages.context import TrialSpec, build_trial_data
from raynas.stages.fine import FineProgram, at_width
from raynas.stages.retrain import RetrainProgram

__all__ = [
    "PROGRAMS",
    "CoarseProgram",
    "FineProgram",
    "RetrainProgram",
    "StageProgram",
    "TrialSpec",
    "at_width",
    "build_trial_data",
    "choice_key",
    "choice_label",
]

PROGRAMS: dict[str, type[StageProgram]] = {
    "coarse": CoarseProgram,
    "fine": FineProgram,
    "retrain": RetrainProgram,
}
