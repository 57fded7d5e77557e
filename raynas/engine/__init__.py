"""raynas.engine: pure torch + MONAI training loops (no Ray, no MLflow).

Every stage uses these: ``supernet_epoch`` (C2F coarse, single path), ``bilevel_epoch``
(PC-DARTS fine), ``train_epoch`` (retrain, baselines) and ``evaluate`` (sliding-window Dice on
whole volumes); the epoch loop itself is :class:`raynas.stages.StageProgram`'s.

Example:
    >>> from raynas.engine import make_loss, make_optimizer, train_epoch, resolve_device
    >>> device = resolve_device("auto")
    >>> opt = make_optimizer(net.parameters(), name="sgd", lr=0.01, weight_decay=3e-5)
    >>> stats = train_epoch(net, loader, opt, make_loss(), device=device, max_steps=4)
"""

from __future__ import annotations

from raynas.engine.amp import Precision
from raynas.engine.evaluate import AXIAL_DIM, EvalResult, evaluate, make_inferer
from raynas.engine.loops import (
    EpochStats,
    NonFiniteLossError,
    bilevel_epoch,
    supernet_epoch,
    to_device,
    train_epoch,
)
from raynas.engine.optim import (
    OPTIMIZERS,
    SCHEDULES,
    check_disjoint,
    make_arch_optimizer,
    make_loss,
    make_optimizer,
    make_scheduler,
)
from raynas.engine.patches import PatchSet, build_patch_set, evaluate_patches
from raynas.engine.seeding import resolve_device, seed_everything

__all__ = [
    "AXIAL_DIM",
    "OPTIMIZERS",
    "SCHEDULES",
    "EpochStats",
    "EvalResult",
    "NonFiniteLossError",
    "PatchSet",
    "Precision",
    "bilevel_epoch",
    "build_patch_set",
    "check_disjoint",
    "evaluate",
    "evaluate_patches",
    "make_arch_optimizer",
    "make_inferer",
    "make_loss",
    "make_optimizer",
    "make_scheduler",
    "resolve_device",
    "seed_everything",
    "supernet_epoch",
    "to_device",
    "train_epoch",
]
