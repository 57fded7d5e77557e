"""Evolutionary search over a finite set of genomes: pure Python (no torch, no Ray).

The coarse stage of a C2F search ends with this search over its cluster's topologies, scored
with the shared supernet weights (C2FNAS used evolution). The strategy only sees *genomes*
(tuples of genes, e.g. a topology's levels) and a score function; it never trains anything, so
it is tested on toy objectives.

One search (:func:`evolve`) is a steady-state evolution with a budget of score calls:

1. the initial population is the best genomes already scored (``known``, e.g. this epoch's
   leaders) plus random unscored ones, up to ``population``;
2. each step picks a parent by tournament (``tournament`` random members, the best wins); with
   probability ``crossover`` a second parent too, and the child is an unscored genome that
   takes each gene from one of the two parents where the set of genomes allows (the closest
   such genome: fewest genes from neither parent); otherwise the child is an unscored nearest
   neighbour of the parent (fewest genes changed: a mutation that stays inside the set);
3. the child is scored and replaces the worst member when it is better.

Every genome is scored at most once (scores are cached), so the budget counts distinct
genomes; the search stops early when every genome has a score.

Example:
    >>> import random
    >>> genomes = [(a, b) for a in range(5) for b in range(5)]
    >>> result = evolve(genomes, lambda g: -abs(g[0] - 3) - abs(g[1] - 1), budget=12,
    ...                 population=4, rng=random.Random(0))
    >>> result.best, result.evaluations <= 12
    ((3, 1), True)
"""

from __future__ import annotations

import random
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

from raynas.strategy.selection import leaders  # the coarse ranking rule's one home

__all__ = ["EvolutionResult", "evolve", "hamming", "leaders", "sample_pool"]

G = TypeVar("G", bound=Sequence[Hashable])


@dataclass(frozen=True)
class EvolutionResult:
    """What one search found.

    Attributes:
        best: the genome with the highest score (ties: the earlier one in ``genomes``).
        best_score: its score.
        scores: every genome with a score (``known`` ones included), in ``genomes`` order.
        evaluations: calls of the score function this search made (at most the budget).
    """

    best: tuple[Hashable, ...]
    best_score: float
    scores: dict[tuple[Hashable, ...], float]
    evaluations: int


def hamming(a: Sequence[Hashable], b: Sequence[Hashable]) -> int:
    """Genes that differ (genomes of different lengths differ by the length difference too)."""
    return sum(x != y for x, y in zip(a, b, strict=False)) + abs(len(a) - len(b))


def _from_neither(c: Sequence[Hashable], a: Sequence[Hashable], b: Sequence[Hashable]) -> int:
    """Genes of ``c`` found in neither parent at the same position."""
    n = max(len(a), len(b), len(c))
    pad = [None] * n
    ca, aa, ba = (list(x) + pad[len(x):] for x in (c, a, b))
    return sum(x != y and x != z for x, y, z in zip(ca, aa, ba, strict=True))


def sample_pool(
    genomes: Sequence[G], scores: Mapping[G, float], *, size: int, rng: random.Random
) -> list[G]:
    """What to score this epoch: the ``size // 2`` leaders of ``scores``, then random others.

    ``scores`` should all come from one set of weights (the previous epoch's): ranking scores
    measured at different epochs against each other is what this avoids.
    """
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size!r}")
    order = {g: i for i, g in enumerate(genomes)}
    pool = leaders({g: v for g, v in scores.items() if g in order}, size // 2, order)
    chosen = set(pool)
    rest = [g for g in genomes if g not in chosen]
    pool += rng.sample(rest, min(size - len(pool), len(rest)))
    return pool


def _tournament(population: list[G], scores: Mapping[G, float], k: int, rng: random.Random,
                order: Mapping[G, int]) -> G:
    entrants = rng.sample(population, min(k, len(population)))
    return min(entrants, key=lambda g: (-scores[g], order[g]))


def _closest(pool: list[G], distance: Callable[[G], int], rng: random.Random) -> G:
    d = [distance(g) for g in pool]
    best = min(d)
    return rng.choice([g for g, x in zip(pool, d, strict=True) if x == best])


def evolve(
    genomes: Sequence[G],
    score: Callable[[G], float],
    *,
    budget: int,
    population: int,
    rng: random.Random,
    known: Mapping[G, float] | None = None,
    tournament: int = 2,
    crossover: float = 0.5,
) -> EvolutionResult:
    """Searches ``genomes`` for the one with the highest ``score`` (see the module doc).

    Args:
        genomes: tuples of hashable genes, e.g. the levels of a cluster's topologies.
        score: higher is better; called at most ``budget`` times, never twice for a genome.
        budget: the most new score calls (0: rank ``known`` only).
        population: size of the population kept between steps.
        rng: the only source of randomness (same seed, same search).
        known: scores already measured *with the same score function* (reused, not re-called).
        tournament: entrants per parent selection (1 = uniform parent choice).
        crossover: probability that a child recombines two parents instead of mutating one.

    Raises:
        ValueError: empty or repeated genomes, a ``known`` genome that is not among them,
            or a bad ``budget``, ``population``, ``tournament`` or ``crossover``.
    """
    pool = [tuple(g) for g in genomes]
    if not pool:
        raise ValueError("genomes must not be empty")
    order = {g: i for i, g in enumerate(pool)}
    if len(order) != len(pool):
        raise ValueError("genomes must not repeat")
    for name, value, low in (("budget", budget, 0), ("population", population, 1),
                             ("tournament", tournament, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    if not 0.0 <= crossover <= 1.0:
        raise ValueError(f"crossover must be in [0, 1], got {crossover!r}")
    scores: dict[tuple[Hashable, ...], float] = {}
    for g, s in (known or {}).items():
        if tuple(g) not in order:
            raise ValueError(f"known genome {tuple(g)!r} is not among the genomes")
        scores[tuple(g)] = float(s)
    evaluations = 0

    def measure(g: tuple[Hashable, ...]) -> None:
        nonlocal evaluations
        scores[g] = float(score(g))  # type: ignore[arg-type]
        evaluations += 1

    members = leaders(scores, population, order)
    unscored = [g for g in pool if g not in scores]
    for g in rng.sample(unscored, min(population - len(members), budget, len(unscored))):
        measure(g)
        members.append(g)
    while evaluations < budget and len(scores) < len(pool):
        unscored = [g for g in pool if g not in scores]
        a = _tournament(members, scores, tournament, rng, order)
        others = [g for g in members if g != a]
        if others and rng.random() < crossover:
            b = _tournament(others, scores, tournament, rng, order)
            child = _closest(unscored, partial(_from_neither, a=a, b=b), rng)
        else:
            child = _closest(unscored, partial(hamming, b=a), rng)
        measure(child)
        members.append(child)
        if len(members) > population:
            members.remove(min(members, key=lambda g: (scores[g], -order[g])))
    ranked = leaders(scores, len(scores), order)
    if not ranked:
        raise ValueError("nothing scored: give a budget >= 1 or known scores")
    best = ranked[0]
    ordered = {g: scores[g] for g in pool if g in scores}
    return EvolutionResult(best=best, best_score=scores[best], scores=ordered,
                           evaluations=evaluations)
