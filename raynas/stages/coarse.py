"""Coarse stage: one candidate of the space (a C2F topology cluster, or a Thrifty depth/width).

C2F: the cluster's weight-sharing supernet is trained single-path (one sampled topology per step);
each epoch scores a few topologies with the shared weights (the current leaders plus new ones;
``coarse.scoring``: cached validation patches or whole volumes; ``coarse.rank_by``: ordered by
their validation loss or their Dice), and the last epoch ends with a small evolutionary search
over the cluster (:func:`raynas.strategy.evolve`: tournament, crossover, mutation), as C2FNAS
did. Only scores measured with one epoch's weights are ranked against each other. Thrifty: the
candidate's supernet (one choice, architecture frozen at uniform weights) is trained and scored
the same way.
"""

from __future__ import annotations

import json
import random
from typing import Any

from raynas.stages.base import StageProgram
from raynas.stages.context import TrialSpec
from raynas.strategy import evolve, leaders, make_sampler, sample_pool
from raynas.strategy.selection import coarse_score

__all__ = ["CoarseProgram", "choice_key", "choice_label"]


def choice_key(choice: dict[str, Any]) -> str:
    """A stable string key of a choice (JSON with sorted keys)."""
    return json.dumps(choice, sort_keys=True, separators=(",", ":"))


def choice_label(choice: dict[str, Any]) -> str:
    """A short human label: the canonical topology string where there is one."""
    topology = choice.get("topology")
    if isinstance(topology, list | tuple):
        return "-".join(str(level) for level in topology)
    if isinstance(topology, str):
        return topology
    return ",".join(f"{k}={v}" for k, v in sorted(choice.items()))


def _levels(choice: dict[str, Any]) -> list[str] | None:
    topology = choice.get("topology")
    if isinstance(topology, str):
        return topology.split("-")
    return [str(t) for t in topology] if isinstance(topology, list | tuple) else None


def choice_genome(choice: dict[str, Any]) -> tuple[str, ...]:
    """What the evolution sees of a choice: a topology's levels, else its key as one gene."""
    levels = _levels(choice)
    return tuple(levels) if levels is not None else (choice_key(choice),)


class CoarseProgram(StageProgram):
    """Trains one coarse candidate; reports this epoch's best choice, its Dice and parameters."""

    def __init__(self, spec: TrialSpec) -> None:
        from raynas.engine import make_optimizer
        from raynas.spaces import load_stage_space

        clusters = spec.preset.get("coarse", {}).get("clusters")  # the preset's cluster count
        self.space = load_stage_space(spec.space, clusters=clusters)
        super().__init__(spec, spatial_dims=self.space.config.spatial_dims)
        by_key = {c.key: c for c in self.space.coarse_candidates()}
        key = spec.candidate["key"]
        if key not in by_key:
            raise ValueError(f"unknown coarse candidate {key!r}; valid: {', '.join(by_key)}")
        self.candidate = by_key[key]
        self.model = self.space.build_coarse_supernet(
            self.candidate,
            in_channels=self.in_channels,
            out_channels=self.num_classes,
            width=self.section.width,
        ).to(self.device)
        params = (
            self.model.weight_parameters()
            if hasattr(self.model, "weight_parameters")
            else list(self.model.parameters())
        )
        self.optimizer = make_optimizer(
            params,
            name=self.section.optimizer,
            lr=self.section.lr,
            weight_decay=self.section.weight_decay,
        )
        self._make_schedule()
        self.rng = random.Random(f"{spec.seed}:{key}")
        self.choices: list[dict[str, Any]] = [
            c if isinstance(c, dict) else {"topology": c}
            for c in self.model.choices()
        ]
        self.by_genome = {choice_genome(c): c for c in self.choices}
        self.order = {g: i for i, g in enumerate(self.by_genome)}
        self.sampler = make_sampler(
            self.section.path_sampling, list(self.by_genome), rng=self.rng
        )
        # choice key -> its rank score (higher is better: Dice, or minus the validation loss;
        # the section's ``rank_by``) and its Dice, with the shared weights of the last epoch
        # run (this epoch's only)
        self.scores: dict[str, float] = {}
        self.dices: dict[str, float] = {}

    # -- scoring ---------------------------------------------------------------------------
    def _score(self, choice: dict[str, Any]) -> float:
        """The rank score of one topology with the shared weights (the section's ``scoring``
        and ``rank_by``); its Dice lands in ``self.dices``."""
        by_loss = self.section.rank_by == "loss"
        self.model.set_active(choice)
        result = self.score(loss=by_loss)
        key = choice_key(choice)
        self.dices[key] = float(result.dice)
        loss = float(result.loss) if by_loss else None
        self.scores[key] = coarse_score(self.section.rank_by, dice=float(result.dice), loss=loss)
        return self.scores[key]

    def _genome_scores(self) -> dict[tuple[str, ...], float]:
        """``self.scores`` keyed by genome (choices of this cluster only)."""
        by_key = {choice_key(c): g for g, c in self.by_genome.items()}
        return {by_key[k]: v for k, v in self.scores.items() if k in by_key}

    def _evolve(self) -> None:
        """The evolutionary search over the cluster with this epoch's shared weights.

        ``self.scores`` (this epoch's pool) seeds the population; the budget is what the old
        generation loop could spend: the population's unscored places plus ``population // 2``
        children per generation.
        """
        known = self._genome_scores()
        population = self.section.population
        budget = max(0, population - len(known)) + self.section.generations * max(
            1, population // 2
        )
        evolve(
            list(self.by_genome),
            lambda g: self._score(self.by_genome[g]),
            budget=budget,
            population=population,
            rng=self.rng,
            known=known,
        )  # every score lands in self.scores (see _score)

    # -- one epoch -------------------------------------------------------------------------
    def train_and_score(self, epoch: int) -> dict[str, Any]:
        from raynas.engine import supernet_epoch

        stats = supernet_epoch(
            self.model,
            self.data.bundle.train,
            self.optimizer,
            self.loss_fn,
            sample=lambda: self.by_genome[self.sampler.next()],
            device=self.device,
            max_steps=self.section.steps_per_epoch,
            amp=self.amp,
        )
        self.record_train(stats)
        if self.scoring_due(epoch) or not self.scores:
            # Scores of earlier epochs were measured with other weights: only the ranking of the
            # previous scoring (all measured with one set of weights) picks the leaders that are
            # scored again; nothing measured before this epoch is ranked against this epoch's.
            previous = self._genome_scores()
            self.scores, self.dices = {}, {}
            pool = sample_pool(
                list(self.by_genome), previous, size=self.section.eval_topologies, rng=self.rng
            )
            for genome in pool:
                self._score(self.by_genome[genome])
        if epoch + 1 >= self.epochs:
            self._evolve()
        best = self.by_genome[leaders(self._genome_scores(), 1, self.order)[0]]
        dice = self.dices[choice_key(best)]
        params = int(self.model.param_count(best))
        by_loss = self.section.rank_by == "loss"
        return {
            **({"val_loss": -self.scores[choice_key(best)]} if by_loss else {}),
            "dice": dice,
            "loss": float(stats.loss),
            "params": params,
            "topology": choice_label(best),
            "choice_json": choice_key(best),
            "evaluated": len(self.scores),
        }

    def extra_state(self) -> dict[str, Any]:
        return {
            "scores": dict(self.scores),
            "dices": dict(self.dices),
            "rng": json.dumps(self.rng.getstate()),
            "sampler": json.dumps(self.sampler.state()),
        }

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.scores = {str(k): float(v) for k, v in state.get("scores", {}).items()}
        # a checkpoint from before rank_by ranked by Dice: its scores are the Dices
        self.dices = {str(k): float(v) for k, v in state.get("dices", self.scores).items()}
        if "rng" in state:
            version, internal, gauss = json.loads(state["rng"])
            self.rng.setstate((version, tuple(internal), gauss))
        if "sampler" in state:
            self.sampler.load_state(json.loads(state["sampler"]))
