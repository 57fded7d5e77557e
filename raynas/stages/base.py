"""The shape of a stage program: one trial's work, epoch by epoch, with a resumable state.

A program knows nothing of Ray: :mod:`raynas.tune.trainables` drives it, reports its metrics and
checkpoints its :meth:`StageProgram.state_dict` every epoch. State dicts hold only tensors and plain
containers, so they load with ``torch.load(..., weights_only=True)``; they include every RNG the
program draws from (Python, NumPy, torch CPU/CUDA, the loaders' generators, MONAI transforms), so
a program restored from epoch k continues exactly as if it had never stopped.

Each trial is seeded with its own seed, derived from the search seed and its trial key
(:attr:`TrialSpec.trial_seed`); the data split still comes from the search seed, so every trial
sees the same folds.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any

import torch

from raynas.stages.context import TrialData, TrialSpec, build_trial_data, stage_section

__all__ = ["StageProgram"]


class StageProgram(ABC):
    """Base class of the coarse, fine and retrain programs.

    Subclasses build ``self.model`` and ``self.optimizer`` in ``__init__`` and implement
    :meth:`train_and_score`; the base class keeps the epoch counter, the scheduler, the best score
    and the state dict.
    """

    retrain_data = False

    def __init__(self, spec: TrialSpec, *, spatial_dims: int) -> None:
        from raynas.engine import make_loss, resolve_device, seed_everything
        from raynas.engine.seeding import reseed

        self.spec = spec
        self.preset, self.section = stage_section(spec)
        self.seed = spec.trial_seed
        seed_everything(self.seed)
        self.device = resolve_device(spec.device)
        self.data: TrialData = build_trial_data(
            spec, spatial_dims=spatial_dims, retrain=self.retrain_data
        )
        # the loaders were seeded with the search seed (split, shuffles, crops): this trial's own
        reseed(self.seed, **self._rng_sources())
        self.loss_fn = make_loss()
        self.epochs = int(self.section.epochs)
        self.epoch = 0
        self.best_dice = -math.inf
        self.model: torch.nn.Module
        self.optimizer: torch.optim.Optimizer
        self.scheduler: Any = None

    @property
    def in_channels(self) -> int:
        return int(self.data.bundle.in_channels)

    @property
    def num_classes(self) -> int:
        return int(self.data.bundle.num_classes)

    def _make_schedule(self) -> None:
        from raynas.engine import make_scheduler

        self.scheduler = make_scheduler(
            self.optimizer, name=self.section.schedule, epochs=self.epochs
        )

    def evaluate(self, model: torch.nn.Module | None = None, max_cases: int | None = None) -> Any:
        from raynas.engine import evaluate

        retrain = self.spec.stage == "retrain"
        return evaluate(
            model or self.model,
            self.data.bundle.val,
            num_classes=self.num_classes,
            roi_size=self.data.roi_size,
            spatial_dims=self.data.spatial_dims,
            device=self.device,
            sw_batch_size=self.preset.retrain.sw_batch_size if retrain else 2,
            overlap=self.preset.retrain.sw_overlap if retrain else 0.25,
            max_cases=max_cases,
        )

    @abstractmethod
    def train_and_score(self, epoch: int) -> dict[str, Any]:
        """Trains one epoch and returns its metrics, at least ``dice`` and ``loss``."""

    def run_epoch(self) -> dict[str, Any]:
        """Runs the next epoch; returns the metrics to report (``epoch`` counts from 1)."""
        metrics = self.train_and_score(self.epoch)
        if self.scheduler is not None:
            self.scheduler.step()
        self.epoch += 1
        self.best_dice = max(self.best_dice, float(metrics["dice"]))
        metrics.update(epoch=self.epoch, best_dice=self.best_dice)
        return metrics

    @property
    def finished(self) -> bool:
        return self.epoch >= self.epochs

    def _rng_sources(self) -> dict[str, list[Any]]:
        """The loaders' generators and their datasets' transform ``RandomState``s."""
        from raynas.engine.seeding import find_random_states

        bundle = self.data.bundle
        loaders = [getattr(bundle, n) for n in ("train", "val", "weights", "arch")]
        generators: list[Any] = []
        for loader in loaders:
            gen = getattr(loader, "generator", None)
            if gen is not None and all(gen is not g for g in generators):
                generators.append(gen)
        states = find_random_states(*(loader.dataset for loader in loaders))
        return {"generators": generators, "random_states": states}

    def extra_state(self) -> dict[str, Any]:
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        del state

    def state_dict(self) -> dict[str, Any]:
        from raynas.engine.seeding import rng_state

        return {
            "epoch": self.epoch,
            "best_dice": self.best_dice,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else {},
            "rng": rng_state(**self._rng_sources()),
            "extra": self.extra_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        from raynas.engine.seeding import set_rng_state

        self.epoch = int(state["epoch"])
        self.best_dice = float(state["best_dice"])
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state["scheduler"]:
            self.scheduler.load_state_dict(state["scheduler"])
        rng = state["rng"]
        if isinstance(rng, torch.Tensor):  # a checkpoint from before the full RNG state
            torch.set_rng_state(rng)
        else:
            set_rng_state(rng, **self._rng_sources())
        self.load_extra_state(state["extra"])

    def artifacts(self) -> dict[str, str]:
        """Text files saved beside the state in each checkpoint (e.g. ``architecture.json``)."""
        return {}
