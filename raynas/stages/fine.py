"""Fine stage: the PC-DARTS search of the operations for one topology (or Thrifty candidate).

Warm-up epochs train only the weights; after them, first-order alternating updates: weights on
the "weights" half of the training cases, architecture (Adam) on the "architecture" half. Each
epoch derives the current Architecture, at the width it will be retrained at, with its parameter
count: C2F at ``retrain.width`` (searched narrow at ``fine.width``, retrained wide, by design),
Thrifty at the width its coarse stage chose (the width is part of what Thrifty searches). The
Architecture JSON records both: ``width`` (trained) and ``search_width`` (searched).
"""

from __future__ import annotations

import json
from typing import Any

from raynas.stages.base import StageProgram
from raynas.stages.context import TrialSpec

__all__ = ["FineProgram", "at_width"]


def at_width(arch_dict: dict[str, Any], width: int | None) -> dict[str, Any]:
    """The same architecture to be trained at base width ``width`` (``None``: at the width it was
    searched at), with the searched width kept in ``search_width``.

    Example:
        >>> at_width({"space": "c2f", "width": 4}, 16)
        {'space': 'c2f', 'width': 16, 'search_width': 4}
        >>> at_width({"space": "thrifty", "width": 8}, None)
        {'space': 'thrifty', 'width': 8, 'search_width': 8}
    """
    out = dict(arch_dict)
    if "width" in out:
        out["search_width"] = int(out.get("search_width") or out["width"])
        if width is not None:
            out["width"] = int(width)
    return out


class FineProgram(StageProgram):
    """Runs one PC-DARTS search; reports Dice of the supernet and the derived architecture."""

    def __init__(self, spec: TrialSpec) -> None:
        from raynas.engine import make_arch_optimizer, make_optimizer
        from raynas.spaces import load_stage_space

        clusters = spec.preset.get("coarse", {}).get("clusters")  # the preset's cluster count
        self.space = load_stage_space(spec.space, clusters=clusters)
        super().__init__(spec, spatial_dims=self.space.config.spatial_dims)
        self.choice = json.loads(spec.candidate["choice_json"])
        self.model = self.space.build_fine_supernet(
            self.choice,
            in_channels=self.in_channels,
            out_channels=self.num_classes,
            width=self.section.width,
        ).to(self.device)
        self.optimizer = make_optimizer(
            self.model.weight_parameters(),
            name=self.section.optimizer,
            lr=self.section.lr,
            weight_decay=self.section.weight_decay,
        )
        self.arch_optimizer = make_arch_optimizer(
            self.model.arch_parameters(),
            lr=self.section.arch_lr,
            betas=tuple(self.section.arch_betas),
            weight_decay=self.section.arch_weight_decay,
        )
        self._make_schedule()
        self.arch_json = ""
        self.last_dice: float | None = None  # latest validation score (scored every eval_every)

    def derived(self) -> dict[str, Any]:
        arch = self.model.derive()
        keep = getattr(self.space, "keeps_searched_width", False)
        return at_width(arch.to_dict(), None if keep else self.preset.retrain.width)

    def train_and_score(self, epoch: int) -> dict[str, Any]:
        from raynas.engine import bilevel_epoch
        from raynas.nets import build_network, count_parameters, load_architecture

        update_arch = epoch >= self.section.warmup_epochs
        stats = bilevel_epoch(
            self.model,
            self.data.bundle.weights,
            self.data.bundle.arch,
            self.optimizer,
            self.arch_optimizer,
            self.loss_fn,
            update_arch=update_arch,
            device=self.device,
            max_steps=self.section.steps_per_epoch,
            amp=self.amp,
        )
        self.record_train(stats)
        if self.scoring_due(epoch) or self.last_dice is None:
            self.last_dice = float(self.score().dice)
        arch = self.derived()
        self.arch_json = json.dumps(arch, sort_keys=True)
        params = count_parameters(build_network(load_architecture(arch)))
        return {
            "dice": self.last_dice,
            "loss": float(stats.loss),
            "params": int(params),
            "arch_updates": bool(update_arch),
            "arch_json": self.arch_json,
        }

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["arch_optimizer"] = self.arch_optimizer.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.arch_optimizer.load_state_dict(state["arch_optimizer"])
        self.arch_json = json.dumps(self.derived(), sort_keys=True)

    def artifacts(self) -> dict[str, str]:
        return {"architecture.json": self.arch_json} if self.arch_json else {}
