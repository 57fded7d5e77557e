"""The shape of a stage program: one trial's work, epoch by epoch, with a resumable state.

A program knows nothing of Ray: :mod:`raynas.tune.trainables` drives it, reports its metrics and
checkpoints its :meth:`StageProgram.state_dict` when :meth:`StageProgram.wants_checkpoint` says
so (every ``checkpoint_every`` epochs, at ASHA's rungs and at the end). State dicts hold only
tensors and plain containers, so they load with ``torch.load(..., weights_only=True)``; they
include every RNG the program draws from (Python, NumPy, torch CPU/CUDA, the loaders' generators,
MONAI transforms) and, under fp16, the ``GradScaler`` state of every optimiser, so a program
restored from epoch k continues exactly as if it had never stopped (on CPU bit for bit; on CUDA
with the preset's ``deterministic: true``, which turns cuDNN autotuning off, up to the kernels
that have no deterministic version: ``benchmarks/resume_check.py`` measures it).

Precision and cuDNN mode are decided once per trial from the preset and the trial's device
(:class:`raynas.engine.amp.Precision`, :func:`raynas.engine.seeding.set_cudnn_mode`); a trial's
first epoch carries them as ``precision`` (e.g. ``"cuda: bf16 autocast; cuDNN
deterministic (benchmark off)"``), and they are logged.

Each trial is seeded with its own seed, derived from the search seed and its trial key
(:attr:`TrialSpec.trial_seed`); the data split still comes from the search seed, so every trial
sees the same folds.

Every epoch's metrics carry its time split (see :mod:`raynas.stages.timing`): ``time_train_s``,
``time_data_s``, ``time_eval_s``, ``time_ckpt_s`` (added by the driver that writes the
checkpoint), ``time_other_s`` and ``time_epoch_s``, and the trial's running totals
``time_total_<part>_s``.
"""

from __future__ import annotations

import logging
import math
import time
from abc import ABC, abstractmethod
from typing import Any

import torch

from raynas.stages.context import TrialData, TrialSpec, build_trial_data, stage_section
from raynas.stages.timing import EpochClock, asha_milestones

__all__ = ["StageProgram"]

logger = logging.getLogger("raynas.trial")


class StageProgram(ABC):
    """Base class of the coarse, fine and retrain programs.

    Subclasses build ``self.model`` and ``self.optimizer`` in ``__init__`` and implement
    :meth:`train_and_score`; the base class keeps the epoch counter, the scheduler, the best score
    and the state dict.
    """

    retrain_data = False

    def __init__(self, spec: TrialSpec, *, spatial_dims: int) -> None:
        from raynas.engine import Precision, make_loss, resolve_device, seed_everything
        from raynas.engine.seeding import reseed, set_cudnn_mode

        self.spec = spec
        self.preset, self.section = stage_section(spec)
        self.seed = spec.trial_seed
        seed_everything(self.seed)
        self.device = resolve_device(spec.device)
        self.data: TrialData = build_trial_data(
            spec, spatial_dims=spatial_dims, retrain=self.retrain_data,
            pin_memory=self.device.type == "cuda",
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
        self.clock = EpochClock()
        self.precision = Precision.resolve(self.device, self.preset.amp)
        self.amp = self.precision  # what the engine's ``amp=`` takes
        cudnn = set_cudnn_mode(deterministic=self.preset.deterministic)
        self.setup = f"{self.device}: {self.precision.describe()}; {cudnn}"
        logger.info("%s trial %s: %s (amp: %s)", spec.stage, spec.trial_key, self.setup,
                    self.preset.amp)
        self._patches: Any = None  # the cached validation patches of the scoring proxy
        asha = getattr(self.section, "asha", None)
        self.milestones = (
            asha_milestones(asha.grace_period, asha.reduction_factor, self.epochs)
            if asha is not None and asha.enabled
            else set()
        )

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

    def evaluate(self, model: torch.nn.Module | None = None, max_cases: int | None = None,
                 *, loss: bool = False) -> Any:
        """Sliding-window Dice on the whole validation volumes (timed as ``eval``); ``loss``
        also measures the training loss on them (``EvalResult.loss``)."""
        from raynas.engine import evaluate

        retrain = self.spec.stage == "retrain"
        with self.clock.timing("eval"):
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
                amp=self.amp,
                loss_fn=self.loss_fn if loss else None,
            )

    def patches(self) -> Any:
        """The trial's cached validation patches (built on first use; deterministic per seed)."""
        from raynas.engine import build_patch_set

        if self._patches is None:
            with self.clock.timing("eval", count=False):
                self._patches = build_patch_set(
                    self.data.bundle.val,
                    roi_size=self.data.roi_size,
                    spatial_dims=self.data.spatial_dims,
                    num_classes=self.num_classes,
                    patches_per_case=int(getattr(self.section, "patches_per_case", 8)),
                    background_share=float(getattr(self.section, "background_share", 0.0)),
                    seed=self.spec.seed,
                )
        return self._patches

    def score(self, model: torch.nn.Module | None = None, *, loss: bool = False) -> Any:
        """The search stages' validation: the section's ``scoring`` (patch proxy by default);
        ``loss`` also measures the training loss on the same patches or volumes."""
        from raynas.engine import evaluate_patches

        if getattr(self.section, "scoring", "sliding_window") != "patches":
            return self.evaluate(model, loss=loss)
        patches = self.patches()
        with self.clock.timing("eval"):
            return evaluate_patches(
                model or self.model,
                patches,
                num_classes=self.num_classes,
                device=self.device,
                amp=self.amp,
                loss_fn=self.loss_fn if loss else None,
            )

    def scoring_due(self, epoch: int) -> bool:
        """Whether epoch ``epoch`` (from 0) scores: every ``eval_every`` epochs, at ASHA's
        rungs and in the last epoch (other epochs report the latest score)."""
        every = int(getattr(self.section, "eval_every", 1))
        done = epoch + 1
        return done % every == 0 or done in self.milestones or done >= self.epochs

    def record_train(self, stats: Any) -> None:
        """Books an engine epoch's ``EpochStats`` as training steps and data waiting."""
        self.clock.add("data", stats.data_seconds)
        self.clock.add("train", max(0.0, stats.seconds - stats.data_seconds))
        self.clock.steps += int(stats.steps) + int(stats.arch_steps)

    @abstractmethod
    def train_and_score(self, epoch: int) -> dict[str, Any]:
        """Trains one epoch and returns its metrics, at least ``dice`` and ``loss``."""

    def run_epoch(self) -> dict[str, Any]:
        """Runs the next epoch; returns the metrics to report (``epoch`` counts from 1), with
        the epoch's time split (``time_ckpt_s`` is 0 until :meth:`note_checkpoint`)."""
        self.clock.start()
        start = time.perf_counter()
        metrics = self.train_and_score(self.epoch)
        if self.scheduler is not None:
            self.scheduler.step()
        self.epoch += 1
        self.best_dice = max(self.best_dice, float(metrics["dice"]))
        metrics.update(epoch=self.epoch, best_dice=self.best_dice)
        if self.epoch == 1:  # a trial's first report says what it runs on
            metrics["precision"] = self.setup
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        metrics.update(self.clock.finish(time.perf_counter() - start))
        return metrics

    def wants_checkpoint(self) -> bool:
        """After an epoch: every ``checkpoint_every`` epochs, at an ASHA rung (where ASHA may
        stop the trial) and at the end."""
        every = int(getattr(self.section, "checkpoint_every", 1))
        return self.finished or self.epoch % every == 0 or self.epoch in self.milestones

    def note_checkpoint(self, metrics: dict[str, Any], seconds: float) -> dict[str, Any]:
        """Adds ``seconds`` of checkpointing to the epoch's ``metrics`` (and the totals)."""
        return self.clock.add_checkpoint(metrics, seconds)

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

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """The program's optimisers by name (``weights``, and ``arch`` where there is one)."""
        found = {"weights": self.optimizer}
        arch = getattr(self, "arch_optimizer", None)
        if arch is not None:
            found["arch"] = arch
        return found

    def scaler_state(self) -> dict[str, Any]:
        """The ``GradScaler`` state of each optimiser (empty unless the precision scales)."""
        from raynas.engine.amp import grad_scaler

        states = {}
        for name, optimizer in self._optimizers().items():
            scaler = grad_scaler(optimizer, self.precision)
            if scaler is not None:
                states[name] = scaler.state_dict()
        return states

    def load_scaler_state(self, states: dict[str, Any], saved_precision: str | None) -> None:
        """Restores :meth:`scaler_state`. A checkpoint written under another precision (e.g. a
        search resumed on another GPU type) cannot continue exactly: its scalers are not
        applied, and the log says so."""
        from raynas.engine.amp import grad_scaler

        ours = self.precision.describe()
        if saved_precision is not None and saved_precision != ours:
            logger.warning("%s trial %s: checkpoint written with %s, resumed with %s: the run "
                           "does not continue exactly", self.spec.stage, self.spec.trial_key,
                           saved_precision, ours)
            return
        for name, optimizer in self._optimizers().items():
            scaler = grad_scaler(optimizer, self.precision)
            if scaler is not None and name in states:
                scaler.load_state_dict(states[name])

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
            "timing": self.clock.state_dict(),
            "precision": self.precision.describe(),
            "scalers": self.scaler_state(),
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
        self.clock.load_state_dict(state.get("timing", {}))
        # a checkpoint from before the scalers were saved starts them afresh
        self.load_scaler_state(state.get("scalers", {}), state.get("precision"))

    def artifacts(self) -> dict[str, str]:
        """Text files saved beside the state in each checkpoint (e.g. ``architecture.json``)."""
        return {}
