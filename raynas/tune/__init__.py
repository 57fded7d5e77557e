"""Ray glue: the only package that imports ray. Trainables, ASHA, Optuna, resources,
checkpoints, and the Tune callbacks that feed MLflow and the live view."""

from __future__ import annotations

from raynas.tune.runtime import (
    RayRuntime,
    init_ray,
    prepare_ray_env,
    shutdown_ray,
)

prepare_ray_env()

from raynas.tune.callbacks import MlflowTrialCallback, ProgressCallback  # noqa: E402
from raynas.tune.preflight import preflight_on_worker  # noqa: E402
from raynas.tune.stage import StageRequest, TrialRecord, run_stage, trial_name  # noqa: E402
from raynas.tune.trainables import load_checkpoint_state, stage_trainable  # noqa: E402

__all__ = [
    "MlflowTrialCallback",
    "ProgressCallback",
    "RayRuntime",
    "StageRequest",
    "TrialRecord",
    "init_ray",
    "load_checkpoint_state",
    "preflight_on_worker",
    "prepare_ray_env",
    "run_stage",
    "shutdown_ray",
    "stage_trainable",
    "trial_name",
]
