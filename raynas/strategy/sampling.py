"""Path sampling for single-path supernet training: uniform, or fair over the shared slots.

A weight-sharing supernet trains one sampled path (here: one C2F topology of a cluster) per step.
Under uniform sampling a slot (one cell at one (position, level)) is trained as often as the
cluster's topologies happen to use it, so topologies built from rarely used slots are scored with
under-trained weights and ranked low whatever they are worth alone (measured on c2f_small's
largest cluster: Kendall tau between the shared-weight and the stand-alone ranking fell from 0.57
to -0.38 between 120 and 480 steps, see README "Benchmarks"). :class:`FairSampler` ("strict
fairness", after FairNAS)
picks, at each step, the path whose slots have been trained least so far (ties broken at random),
which evens out the slots' update counts as far as the cluster allows. Slot fairness alone can
starve whole paths: on c2f_small's largest cluster two complementary topologies cover every slot,
and 6 of its 8 topologies were trained once or never in 480 steps, although a C2F cell's input
adapter depends on its neighbour's level. A path term (``path_weight`` times the path's length
times its own count) keeps every path in training: at ``path_weight=0.5`` the same cluster trains
each topology 27 to 123 times, its cells 123 to 357 times (uniform: about 60 each, cells 60 to 420).
"""

from __future__ import annotations

import random
from collections.abc import Hashable, Sequence
from typing import Any

__all__ = ["PATH_SAMPLING", "FairSampler", "UniformSampler", "make_sampler", "sample_choices"]

PATH_SAMPLING = ("uniform", "fair")

Path = tuple[Hashable, ...]  # one gene per position, e.g. a topology's levels


class UniformSampler:
    """Each step an independent uniformly random path."""

    def __init__(self, paths: Sequence[Path], *, rng: random.Random) -> None:
        if not paths:
            raise ValueError("paths must not be empty")
        self.paths = [tuple(p) for p in paths]
        self.rng = rng

    def next(self) -> Path:
        return self.paths[self.rng.randrange(len(self.paths))]

    def state(self) -> dict[str, Any]:
        return {}

    def load_state(self, state: dict[str, Any]) -> None:
        pass


class FairSampler(UniformSampler):
    """The path of least load (ties at random): the updates its slots ``(position, gene)`` have
    had so far, plus ``path_weight * len(path)`` times the path's own count; then its slots' and
    its own counts go up by one.

    Example:
        >>> s = FairSampler([(0, 1), (1, 0), (0, 0), (1, 1)], rng=random.Random(0))
        >>> len({s.next() for _ in range(4)})  # (0, 1) and (1, 0) cover every slot, and yet
        4
    """

    def __init__(self, paths: Sequence[Path], *, rng: random.Random, path_weight: float = 0.5
                 ) -> None:
        super().__init__(paths, rng=rng)
        if path_weight < 0:
            raise ValueError(f"path_weight must be >= 0, got {path_weight}")
        self.path_weight = float(path_weight)
        self.counts: dict[tuple[int, Hashable], int] = {}
        self.path_counts: dict[Path, int] = {}

    def _load(self, path: Path) -> float:
        slots = sum(self.counts.get((i, g), 0) for i, g in enumerate(path))
        return slots + self.path_weight * len(path) * self.path_counts.get(path, 0)

    def next(self) -> Path:
        loads = [self._load(p) for p in self.paths]
        low = min(loads)
        path = self.rng.choice([p for p, v in zip(self.paths, loads, strict=True) if v == low])
        for i, g in enumerate(path):
            self.counts[(i, g)] = self.counts.get((i, g), 0) + 1
        self.path_counts[path] = self.path_counts.get(path, 0) + 1
        return path

    def state(self) -> dict[str, Any]:
        """The counts, JSON-friendly: slots as ``[position, gene, count]``, paths as their index
        in ``paths`` and count."""
        index = {p: i for i, p in enumerate(self.paths)}
        return {
            "counts": [[i, g, n] for (i, g), n in sorted(self.counts.items(), key=str)],
            "path_counts": [[index[p], n] for p, n in self.path_counts.items()],
        }

    def load_state(self, state: dict[str, Any]) -> None:
        self.counts = {(int(i), g): int(n) for i, g, n in state.get("counts", [])}
        self.path_counts = {self.paths[int(i)]: int(n) for i, n in state.get("path_counts", [])}


def make_sampler(name: str, paths: Sequence[Path], *, rng: random.Random) -> UniformSampler:
    """The sampler ``name`` (``uniform`` or ``fair``) over ``paths``."""
    if name == "uniform":
        return UniformSampler(paths, rng=rng)
    if name == "fair":
        return FairSampler(paths, rng=rng)
    raise ValueError(f"path_sampling must be one of {', '.join(PATH_SAMPLING)}, got {name!r}")


def sample_choices(choices: Sequence[Any], n: int, *, seed: int) -> list[Any]:
    """``n`` distinct choices drawn uniformly without replacement, seeded (all of them, in a
    seeded order, when there are at most ``n``): the ``asha`` coarse strategy's candidates.

    Example:
        >>> sample_choices("abcdef", 3, seed=0) == sample_choices("abcdef", 3, seed=0)
        True
        >>> sorted(sample_choices("abc", 5, seed=1))
        ['a', 'b', 'c']
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    items = list(choices)
    if not items:
        raise ValueError("choices must not be empty")
    rng = random.Random(f"asha-choices:{seed}")
    return rng.sample(items, min(n, len(items)))
