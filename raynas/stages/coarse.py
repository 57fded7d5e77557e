"""Coarse stage: one candidate of the space (a C2F topology cluster, or a Thrifty depth/width).

C2F: the cluster's weight-sharing supernet is trained single-path (one sampled topology per step);
each epoch scores a few topologies with the shared weights (the current leaders plus new ones) on
whole validation volumes, and the last epoch ends with a small evolutionary search over the
cluster, as C2FNAS did. Thrifty: the candidate's supernet is trained with the architecture frozen
at uniform weights and scored as a whole.
"""

from __future__ import annotations

import json
import random
from typing import Any

from raynas.stages.base import StageProgram
from raynas.stages.context import TrialSpec

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


def _hamming(a: dict[str, Any], b: dict[str, Any]) -> int:
    ta, tb = _levels(a), _levels(b)
    if isinstance(ta, list) and isinstance(tb, list) and len(ta) == len(tb):
        return sum(x != y for x, y in zip(ta, tb, strict=True))
    return 0 if choice_key(a) == choice_key(b) else 1


class CoarseProgram(StageProgram):
    """Trains one coarse candidate; reports Dice, the best choice so far and its parameters."""

    def __init__(self, spec: TrialSpec) -> None:
        from raynas.engine import make_optimizer
        from raynas.spaces import load_space

        self.space = load_space(spec.space)
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
        self.single_path = hasattr(self.model, "set_active")
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
            for c in (self.model.candidates_in() if self.single_path else [])
        ]
        self.scores: dict[str, float] = {}  # choice key -> latest Dice with shared weights
        self.last_dice: float | None = None  # latest score of a candidate trained as a whole

    # -- scoring ---------------------------------------------------------------------------
    def _score(self, choice: dict[str, Any]) -> float:
        """Dice of one topology with the shared weights (the section's ``scoring``)."""
        self.model.set_active(choice)
        result = self.score()
        self.scores[choice_key(choice)] = float(result.dice)
        return float(result.dice)

    def _leaders(self, n: int) -> list[dict[str, Any]]:
        ranked = sorted(self.scores.items(), key=lambda kv: (-kv[1], kv[0]))
        return [json.loads(k) for k, _ in ranked[:n]]

    def _mutate(self, choice: dict[str, Any]) -> dict[str, Any]:
        others = [c for c in self.choices if choice_key(c) != choice_key(choice)]
        if not others:
            return choice
        nearest = min(_hamming(choice, c) for c in others)
        return self.rng.choice([c for c in others if _hamming(choice, c) == nearest])

    def _evolve(self) -> None:
        """A small evolutionary search over the cluster with the shared weights."""
        population = self._leaders(self.section.population)
        while len(population) < min(self.section.population, len(self.choices)):
            extra = self.rng.choice(self.choices)
            if choice_key(extra) not in {choice_key(c) for c in population}:
                population.append(extra)
        for choice in population:
            if choice_key(choice) not in self.scores:
                self._score(choice)
        for _ in range(self.section.generations):
            parents = self._leaders(max(1, len(population) // 2))
            for parent in parents:
                child = self._mutate(parent)
                if choice_key(child) not in self.scores:
                    self._score(child)

    # -- one epoch -------------------------------------------------------------------------
    def train_and_score(self, epoch: int) -> dict[str, Any]:
        from raynas.engine import supernet_epoch, train_epoch

        steps = self.section.steps_per_epoch
        loader = self.data.bundle.train
        if self.single_path:
            stats = supernet_epoch(
                self.model,
                loader,
                self.optimizer,
                self.loss_fn,
                sample=lambda: self.model.sample(self.rng),
                device=self.device,
                max_steps=steps,
                amp=self.amp,
            )
            self.record_train(stats)
            if self.scoring_due(epoch) or not self.scores:
                budget = self.section.eval_topologies
                pool = self._leaders(budget // 2)
                while len(pool) < min(budget, len(self.choices)):
                    new = self.rng.choice(self.choices)
                    if choice_key(new) not in {choice_key(c) for c in pool}:
                        pool.append(new)
                for choice in pool:
                    self._score(choice)
            if epoch + 1 >= self.epochs:
                self._evolve()
            best = self._leaders(1)[0]
            dice = self.scores[choice_key(best)]
            params = int(self.model.param_count(best))
        else:
            stats = train_epoch(
                self.model,
                loader,
                self.optimizer,
                self.loss_fn,
                device=self.device,
                max_steps=steps,
                amp=self.amp,
            )
            self.record_train(stats)
            best = dict(self.candidate.params)
            if self.scoring_due(epoch) or self.last_dice is None:
                self.last_dice = float(self.score().dice)
            dice = self.last_dice
            params = int(self.model.param_count())
        return {
            "dice": dice,
            "loss": float(stats.loss),
            "params": params,
            "topology": choice_label(best),
            "choice_json": choice_key(best),
            "evaluated": len(self.scores),
        }

    def extra_state(self) -> dict[str, Any]:
        return {"scores": dict(self.scores), "rng": json.dumps(self.rng.getstate())}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.scores = {str(k): float(v) for k, v in state.get("scores", {}).items()}
        if "rng" in state:
            version, internal, gauss = json.loads(state["rng"])
            self.rng.setstate((version, tuple(internal), gauss))
