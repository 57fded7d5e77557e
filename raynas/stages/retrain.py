"""Retrain stage: a derived Architecture (or a baseline) trained from scratch at full width and
evaluated with sliding-window inference on whole validation volumes. The best weights so far
travel in every checkpoint, so the last checkpoint always holds the best model."""

from __future__ import annotations

import copy
import json
from typing import Any

from raynas.stages.base import StageProgram
from raynas.stages.context import TrialSpec

__all__ = ["RetrainProgram"]


class RetrainProgram(StageProgram):
    """Trains one network; ``spec.candidate`` = {"name", "arch_json", optional hparams}."""

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
        metrics: dict[str, Any] = {"dice": dice, "loss": float(stats.loss), "params": self.params}
        for i, value in enumerate(result.per_class, start=1):
            metrics[f"val_dice_class_{i}"] = float(value)
        return metrics

    def extra_state(self) -> dict[str, Any]:
        return {"best_state": self.best_state}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.best_state = state["best_state"]

    def artifacts(self) -> dict[str, str]:
        return {"architecture.json": json.dumps(self.arch.to_dict(), sort_keys=True, indent=1)}
