"""Coarse stage, strategy ``asha``: one sampled coarse choice trained stand-alone.

With ``coarse.strategy: asha`` the coarse stage trains no supernet. Each trial is one choice of
the space (a C2F topology, or a Thrifty ``{depth, width}``; drawn by
:func:`raynas.strategy.sample_choices`) built as the plain network its coarse supernet would
derive (:meth:`raynas.spaces.SearchSpace.coarse_architecture`: C2F's ``coarse_op`` on every
edge at ``coarse.width``), trained with the coarse recipe (optimizer, lr, schedule,
``steps_per_epoch``) and scored every scoring epoch the way the supernet strategy scores a
topology (``coarse.scoring``, ``coarse.rank_by`` through
:func:`raynas.strategy.selection.coarse_score`). Each epoch reports ``rank_score`` (what Ray
Tune's ASHA compares at its rungs) and ``best_rank_score`` (what the survivors are ranked by),
with the same ``topology`` / ``choice_json`` / ``params`` fields the supernet strategy reports,
so the fine stage takes a survivor exactly as it takes a supernet trial's pick.
"""

from __future__ import annotations

import json
import math
from typing import Any

from raynas.stages.base import StageProgram
from raynas.stages.coarse import choice_key, choice_label
from raynas.stages.context import TrialSpec
from raynas.strategy.selection import coarse_score

__all__ = ["StandaloneCoarseProgram"]


class StandaloneCoarseProgram(StageProgram):
    """Trains one coarse choice stand-alone; ``spec.candidate`` = {"key", "label",
    "choice_json"}.

    Example:
        >>> spec = TrialSpec(stage="coarse", space="c2f_small", dataset="synthetic2d",
        ...     data_root=None, seed=0, preset=load_preset("smoke").model_dump(mode="json"),
        ...     candidate={"key": "a0", "choice_json": '{"topology":"0-1-1-1-1-0"}'}
        ... )  # doctest: +SKIP
        >>> StandaloneCoarseProgram(spec).run_epoch()["rank_score"]  # doctest: +SKIP
    """

    standalone = True  # plan_calibrate: a plain network trained with engine.train_epoch

    def __init__(self, spec: TrialSpec) -> None:
        from raynas.engine import make_optimizer
        from raynas.nets import build_network, count_parameters
        from raynas.spaces import load_space

        self.space = load_space(spec.space)
        super().__init__(spec, spatial_dims=self.space.config.spatial_dims)
        self.choice: dict[str, Any] = json.loads(spec.candidate["choice_json"])
        self.arch = self.space.coarse_architecture(
            self.choice,
            in_channels=self.in_channels,
            out_channels=self.num_classes,
            width=self.section.width,
        )
        self.model = build_network(self.arch).to(self.device)
        self.params = count_parameters(self.model)
        self.optimizer = make_optimizer(
            self.model.parameters(),
            name=self.section.optimizer,
            lr=self.section.lr,
            weight_decay=self.section.weight_decay,
        )
        self._make_schedule()
        self.last: dict[str, float] = {}  # the latest scoring: dice, rank score (and loss)
        self.best_score = -math.inf

    def _score(self) -> dict[str, float]:
        by_loss = self.section.rank_by == "loss"
        result = self.score(loss=by_loss)
        loss = float(result.loss) if by_loss else None
        out = {
            "dice": float(result.dice),
            "rank_score": coarse_score(self.section.rank_by, dice=float(result.dice), loss=loss),
        }
        if loss is not None:
            out["val_loss"] = loss
        return out

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
        if self.scoring_due(epoch) or not self.last:
            self.last = self._score()
            self.best_score = max(self.best_score, self.last["rank_score"])
        return {
            **self.last,  # an undefined score is -inf: ASHA and the survivors rank it last
            "best_rank_score": self.best_score,
            "loss": float(stats.loss),
            "params": self.params,
            "topology": choice_label(self.choice),
            "choice_json": choice_key(self.choice),
            "evaluated": 1,
        }

    def extra_state(self) -> dict[str, Any]:
        return {"last": dict(self.last), "best_score": self.best_score}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.last = {str(k): float(v) for k, v in state.get("last", {}).items()}
        self.best_score = float(state.get("best_score", -math.inf))

    def artifacts(self) -> dict[str, str]:
        return {"architecture.json": json.dumps(self.arch.to_dict(), sort_keys=True, indent=1)}
