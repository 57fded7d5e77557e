"""Exact enumeration of C2F topologies and their deterministic grouping into clusters.

The rules live in :mod:`raynas.nets.c2f_topology`. For L cells, D levels and a minimum depth m
the number of topologies is ``sum_{h=m}^{D-1} C(L, 2h)`` (a path that reaches depth h makes h
down-steps and h up-steps among its L cells): 1485 for the default space (L=12, D=4, m=1).

Example:
    >>> len(enumerate_topologies(cells=4, levels=2, min_depth=1))
    6
    >>> [len(c) for c in cluster_topologies(enumerate_topologies(cells=6, levels=3), count=4)]
    [8, 8, 7, 7]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from raynas.nets.c2f_topology import Topology, format_topology
from raynas.registry import Registry

__all__ = [
    "enumerate_topologies",
    "cluster_topologies",
    "CLUSTER_RULES",
    "split_even",
]


def enumerate_topologies(*, cells: int, levels: int, min_depth: int = 0) -> list[Topology]:
    """Every valid topology, sorted by canonical string."""
    if cells < 1 or levels < 1 or min_depth < 0:
        raise ValueError(f"cells, levels >= 1 and min_depth >= 0 required, got "
                         f"{cells}, {levels}, {min_depth}")
    out: list[Topology] = []

    def walk(path: list[int], rising: bool) -> None:
        i = len(path)
        if i == cells:
            if path[-1] == 0 and max(path) >= min_depth:
                out.append(tuple(path))
            return
        prev = path[-1] if path else 0
        remaining = cells - i  # cells still to place, including this one
        for step in (-1, 0, 1):
            level = prev + step
            if not 0 <= level < levels or (step == 1 and not rising):
                continue
            if level > remaining - 1:  # must still be able to come back to level 0
                continue
            path.append(level)
            walk(path, rising and step >= 0)
            path.pop()

    walk([], True)
    return sorted(out, key=format_topology)


def split_even(items: Sequence[Topology], count: int) -> list[list[Topology]]:
    """Contiguous near-equal groups (the first ``len % count`` get one more); no empty group."""
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count!r}")
    count = min(count, len(items))
    base, extra = divmod(len(items), count)
    groups, start = [], 0
    for g in range(count):
        size = base + (1 if g < extra else 0)
        groups.append(list(items[start : start + size]))
        start += size
    return groups


def _depth_profile_key(t: Topology) -> tuple:
    per_level = tuple(t.count(level) for level in range(max(t) + 1))
    return (max(t), per_level, format_topology(t))


CLUSTER_RULES: Registry[Callable[[Topology], tuple]] = Registry("cluster rule")
CLUSTER_RULES.register("depth_profile", _depth_profile_key)
CLUSTER_RULES.register("canonical_order", lambda t: (format_topology(t),))


def cluster_topologies(
    topologies: Sequence[Topology], *, count: int, rule: str = "depth_profile"
) -> list[list[Topology]]:
    """Deterministic clusters: sort by the rule's key, then split into contiguous groups.

    Rules: ``depth_profile`` (max depth, cells per level, canonical string) and
    ``canonical_order`` (canonical string).
    """
    if rule not in CLUSTER_RULES:
        raise ValueError(f"rule must be one of {', '.join(CLUSTER_RULES.list())}, got {rule!r}")
    ordered = sorted(set(topologies), key=CLUSTER_RULES.get(rule))
    return split_even(ordered, count)
