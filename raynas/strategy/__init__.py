"""Search strategies: pure functions of scores (no torch, no Ray, no MLflow).

A strategy decides *what to evaluate next* from the scores seen so far; the stage programs
(:mod:`raynas.stages`) supply the score function (e.g. the Dice of a topology with a supernet's
shared weights). Being pure Python, strategies are tested on toy objectives.
"""

from __future__ import annotations

from raynas.strategy.evolution import EvolutionResult, evolve, hamming, leaders, sample_pool
from raynas.strategy.sampling import (
    PATH_SAMPLING,
    FairSampler,
    UniformSampler,
    make_sampler,
    sample_choices,
)

__all__ = [
    "EvolutionResult",
    "FairSampler",
    "PATH_SAMPLING",
    "UniformSampler",
    "evolve",
    "hamming",
    "leaders",
    "make_sampler",
    "sample_choices",
    "sample_pool",
]
