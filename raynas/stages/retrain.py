"""Retrain stage: a derived Architecture (or a baseline) trained from scratch at full width and
evaluated with sliding-window inference on whole validation volumes. The best weights so far
travel in every checkpoint, so the last checkpoint always holds the best model.

After the last epoch, the best-epoch weights are scored once on the held-out test cases (whole
volumes, sliding window), on the trial's own device; the last report then carries
``test_dice``, ``test_dice_<class>``, and the validation Dice of the best epoch beside it
(``val_dice``, ``val_dice_<class>``); ``<class>`` is the label name
(:func:`raynas.engine.dice_names.class_keys`).
"""

from __future__ import annotations

import copy
import json
import math
from typing import Any

from raynas.engine.dice_names import class_keys, split_metrics
from raynas.stages.base import StageProgram
from raynas.stages.context import TrialSpec

__all__ = ["RetrainProgram", "warmup_epochs"]


def warmup_epochs(lr_warmup_epochs: int, epochs: int) -> int:
    """The retrain's lr warm-up (``retrain.lr_warmup_epochs``), capped at ``epochs - 1`` so a
    short retrain (``--epochs 2``) still reaches its full learning rate.

    Example:
        >>> warmup_epochs(5, 40), warmup_epochs(5, 2), warmup_epochs(5, 1)
        (5, 1, 0)
    """
    return max(0, min(int(lr_warmup_epochs), int(epochs) - 1))


class RetrainProgram(StageProgram):
    """Trains one network; ``spec.candidate`` = {"key", "label", "arch_json"[, "hparams"]}."""

    retrain_data = True

    def __init__(self, spec: TrialSpec) -> None:
        from raynas.engine import make_optimizer
        from raynas.nets import build_network, count_parameters, load_architecture

        self.arch = load_architecture(spec.candidate["arch_json"])
        super().__init__(spec, spatial_dims=int(self.arch.spatial_dims))
        self.model = build_network(self.arch).to(self.device)
        self.params = count_parameters(self.model)
        hp = spec.candidate.get("hparams", {})
        self.optimizer = make_optimizer(
            self.model.parameters(),
            name=hp.get("optimizer", self.section.optimizer),
            lr=float(hp.get("lr", self.section.lr)),
            weight_decay=float(hp.get("weight_decay", self.section.weight_decay)),
        )
        self._make_schedule()
        self.best_state: dict[str, Any] = copy.deepcopy(self.model.state_dict())
        self.best_val: list[float] = []  # per-class validation Dice of the best epoch
        self.test: dict[str, float] = {}  # the test metrics, once measured
        self.keys = class_keys(self.data.dataset.labels, self.num_classes)

    def _make_schedule(self) -> None:
        from raynas.engine import make_scheduler

        self.scheduler = make_scheduler(
            self.optimizer, name=self.section.schedule, epochs=self.epochs,
            warmup_epochs=warmup_epochs(int(self.section.lr_warmup_epochs), self.epochs),
        )  # fmt: skip

    def train_and_score(self, epoch: int) -> dict[str, Any]:
        from raynas.engine import train_epoch

        stats = train_epoch(
            self.model,
            self.data.bundle.train,
            self.optimizer,
            self.loss_fn,
            device=self.device,
            max_steps=self.section.steps_per_epoch,
            amp=self.amp,
        )
        self.record_train(stats)
        result = self.evaluate()
        dice = float(result.dice)
        if dice > self.best_dice:
            self.best_state = copy.deepcopy(self.model.state_dict())
            self.best_val = [float(v) for v in result.per_class]
        metrics: dict[str, Any] = {"dice": dice, "loss": float(stats.loss), "params": self.params}
        for i, value in enumerate(result.per_class, start=1):
            metrics[f"val_dice_class_{i}"] = float(value)
        return metrics

    def run_epoch(self) -> dict[str, Any]:
        metrics = super().run_epoch()
        if self.finished:
            metrics.update(self.final_metrics())
        return metrics

    def final_metrics(self) -> dict[str, float]:
        """Validation Dice of the best epoch and, measured once, the test Dice of its weights."""
        if not self.test:
            self.test = self.test_metrics()
        best = self.best_dice if math.isfinite(self.best_dice) else math.nan
        return {**split_metrics("val", best, self.best_val, self.keys), **self.test}

    def test_metrics(self) -> dict[str, float]:
        """Scores the best-epoch weights on the held-out test cases (empty: no test cases)."""
        from raynas.engine import evaluate
        from raynas.nets import build_network

        loader = self.data.bundle.test
        if loader is None:
            return {}
        model = build_network(self.arch)
        model.load_state_dict(self.best_state)
        result = evaluate(
            model.to(self.device),
            loader,
            num_classes=self.num_classes,
            roi_size=self.data.roi_size,
            spatial_dims=self.data.spatial_dims,
            device=self.device,
            sw_batch_size=self.preset.retrain.sw_batch_size,
            overlap=self.preset.retrain.sw_overlap,
        )
        out = split_metrics("test", result.dice, list(result.per_class), self.keys)
        out["test_volumes"] = float(result.cases)
        return out

    def extra_state(self) -> dict[str, Any]:
        return {"best_state": self.best_state, "best_val": self.best_val, "test": self.test}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.best_state = state["best_state"]
        self.best_val = list(state.get("best_val", []))
        self.test = dict(state.get("test", {}))

    def artifacts(self) -> dict[str, str]:
        return {"architecture.json": json.dumps(self.arch.to_dict(), sort_keys=True, indent=1)}
