"""The C2F space: enumerated U-shaped topologies, a coarse supernet per cluster (single path,
shared (position, level) cells) and a PC-DARTS fine supernet per topology.

Both supernets are :class:`raynas.nets.C2FNet` with an injected edge factory, so the derived
network is built by the same cell code.

Example:
    >>> space = load_space("c2f_small")  # doctest: +SKIP
    >>> cand = space.coarse_candidates()[0]  # doctest: +SKIP
    >>> net = space.build_coarse_supernet(  # doctest: +SKIP
    ...     cand, in_channels=1, out_channels=2, width=4)
    >>> net.set_active(net.sample(random.Random(0)))  # doctest: +SKIP
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import Any

import torch
from torch import nn

from raynas.config import C2FSpaceConfig
from raynas.nets.c2f import C2FArchitecture, C2FNet, slots_for
from raynas.nets.c2f_topology import (
    Topology,
    check_topology,
    edges_per_cell,
    format_topology,
    parse_topology,
)
from raynas.nets.ops import make_op
from raynas.spaces.base import Candidate, SearchSpace
from raynas.spaces.c2f_topology import cluster_topologies, enumerate_topologies
from raynas.spaces.pcdarts import ArchParamsMixin, MixedOp, init_arch_param, strongest_op

__all__ = ["C2FSpace", "C2FCoarseSupernet", "C2FFineSupernet"]


def _topology_of(choice: Mapping[str, Any] | str | Sequence[int]) -> Topology:
    if isinstance(choice, Mapping):
        choice = choice["topology"]
    return parse_topology(choice)


class C2FCoarseSupernet(C2FNet):
    """Single-path supernet over a cluster: one cell per (position, level), fixed ``coarse_op``.

    Example:
        >>> net = C2FCoarseSupernet(topologies=[(0, 1, 0), (1, 1, 0)], coarse_op="conv3",
        ...     levels=2, spatial_dims=2, in_channels=1, out_channels=2, width=4)
        >>> net.set_active(net.sample(random.Random(0)))
        >>> net.param_count() == sum(p.numel() for p in
        ...     __import__("raynas.nets").nets.build_network(net.derive()).parameters())
        True
    """

    def __init__(
        self, *, topologies: Sequence[Sequence[int]], coarse_op: str, levels: int,
        spatial_dims: int, in_channels: int, out_channels: int, width: int, act: str = "relu",
    ) -> None:
        if not topologies:
            raise ValueError("topologies must not be empty")
        topos = [check_topology(t, levels=levels) for t in topologies]
        self.coarse_op, self.levels = coarse_op, levels

        def edge(position: int, level: int, e: int, channels: int) -> nn.Module:
            return make_op(coarse_op, spatial_dims=spatial_dims, channels=channels, act=act)

        super().__init__(spatial_dims=spatial_dims, in_channels=in_channels,
                         out_channels=out_channels, width=width, slots=slots_for(topos),
                         topology=topos[0], edge_factory=edge, act=act)
        self._topologies = topos
        self._known = set(topos)

    def choices(self) -> list[str]:
        """The choices of this candidate: the cluster's topologies (canonical strings)."""
        return [format_topology(t) for t in self._topologies]

    def sample(self, rng: random.Random) -> dict[str, str]:
        """A uniformly random topology of the cluster, as a choice dict."""
        return {"topology": format_topology(self._topologies[rng.randrange(len(self._topologies))])}

    def set_active(self, choice: Mapping[str, Any] | str | Sequence[int]) -> None:
        t = _topology_of(choice)
        if t not in self._known:
            raise ValueError(f"topology {format_topology(t)!r} is not in this cluster")
        self._set_topology(t)

    def param_count(self, choice: Mapping[str, Any] | str | Sequence[int] | None = None) -> int:
        """Exact parameter count of the network derived from ``choice`` (default: active)."""
        return super().param_count(None if choice is None else _topology_of(choice))

    def derive(self, choice: Mapping[str, Any] | str | Sequence[int] | None = None
               ) -> C2FArchitecture:
        """The Architecture of a topology with ``coarse_op`` on every edge."""
        t = self.topology if choice is None else _topology_of(choice)
        return C2FArchitecture(
            spatial_dims=self.spatial_dims, in_channels=self.in_channels,
            out_channels=self.out_channels, width=self.width, levels=self.levels,
            topology=format_topology(t), ops=[[self.coarse_op] * n for n in edges_per_cell(t)],
            act=self.act_name,
        )


class C2FFineSupernet(ArchParamsMixin, C2FNet):
    """PC-DARTS supernet of one topology: a MixedOp per cell edge; ``alpha`` (edge x op) in
    ``self.arch``.

    There is no edge normalisation (``beta``): a C2F decoder cell keeps both of its edges (the
    previous cell and the U-Net skip) by design, so no edge is ever chosen at derivation, and the
    supernet sums the edges with weight 1 exactly as the derived network does. With one-hot
    alphas and K=1 the supernet computes what the derived network computes.

    Example:
        >>> net = C2FFineSupernet(topology="0-1-0", ops=["conv3", "skip"], k=2, levels=2,
        ...     spatial_dims=2, in_channels=1, out_channels=2, width=4)
        >>> net.derive().topology, len(net.arch_parameters())
        ('0-1-0', 1)
    """

    def __init__(
        self, *, topology: str | Sequence[int], ops: Sequence[str], k: int, levels: int,
        spatial_dims: int, in_channels: int, out_channels: int, width: int, act: str = "relu",
    ) -> None:
        t = check_topology(topology, levels=levels)
        if width % k:
            raise ValueError(f"width must be divisible by pc_k={k}, got width={width}")
        self.op_names, self.levels, self.k = list(ops), levels, k
        counts = edges_per_cell(t)

        def edge(position: int, level: int, e: int, channels: int) -> nn.Module:
            return MixedOp(ops=ops, spatial_dims=spatial_dims, channels=channels, k=k, act=act)

        super().__init__(spatial_dims=spatial_dims, in_channels=in_channels,
                         out_channels=out_channels, width=width, slots=slots_for([t]),
                         topology=t, edge_factory=edge, act=act)
        self._alpha_rows: list[list[int]] = []
        row = 0
        for n in counts:
            self._alpha_rows.append(list(range(row, row + n)))
            row += n
        self.arch = nn.ParameterDict({"alpha": init_arch_param(row, len(ops))})

    def cell_weights(self, position: int, level: int
                     ) -> tuple[list[torch.Tensor], torch.Tensor | None]:
        alpha = torch.softmax(self.arch["alpha"][self._alpha_rows[position]], dim=-1)
        return list(alpha), None  # every edge weighs 1, as in the derived network

    def derive(self) -> C2FArchitecture:
        """Strongest non-``none`` op per edge; C2F keeps every edge of the topology (so there
        is no edge choice, and no ``beta``)."""
        alpha = self.arch["alpha"].detach()
        ops = [[strongest_op(alpha[r], self.op_names) for r in rows] for rows in self._alpha_rows]
        return C2FArchitecture(
            spatial_dims=self.spatial_dims, in_channels=self.in_channels,
            out_channels=self.out_channels, width=self.width, levels=self.levels,
            topology=format_topology(self.topology), ops=ops, act=self.act_name,
        )


class C2FSpace(SearchSpace):
    """The C2F space of a validated :class:`raynas.config.C2FSpaceConfig`."""

    type = "c2f"

    def __init__(self, config: C2FSpaceConfig) -> None:
        super().__init__(config)
        self.config: C2FSpaceConfig = config

    @cached_property
    def topologies(self) -> list[Topology]:
        c = self.config
        return enumerate_topologies(cells=c.cells, levels=c.levels, min_depth=c.min_depth)

    @cached_property
    def clusters(self) -> list[list[Topology]]:
        rule = self.config.clusters
        return cluster_topologies(self.topologies, count=rule.count, rule=rule.rule)

    def describe(self) -> dict[str, Any]:
        c = self.config
        return {
            "name": c.name, "type": c.type, "spatial_dims": c.spatial_dims,
            "description": c.description, "cells": c.cells, "levels": c.levels,
            "min_depth": c.min_depth, "operations": list(c.ops), "coarse_op": c.coarse_op,
            "pc_k": c.pc_k, "topologies": len(self.topologies),
            "cluster_rule": c.clusters.rule, "clusters": len(self.clusters),
            "cluster_sizes": [len(g) for g in self.clusters],
        }

    def coarse_candidates(self) -> list[Candidate]:
        return [
            Candidate(key=f"cluster{j}", params={
                "cluster": j, "topologies": [format_topology(t) for t in group]})
            for j, group in enumerate(self.clusters)
        ]

    def _check_topology(self, t: str | Sequence[int]) -> Topology:
        c = self.config
        try:
            return check_topology(t, levels=c.levels, min_depth=c.min_depth, cells=c.cells)
        except ValueError as exc:
            raise ValueError(f"space {c.name!r}: {exc}") from None

    def build_coarse_supernet(
        self, candidate: Candidate, *, in_channels: int, out_channels: int, width: int
    ) -> C2FCoarseSupernet:
        topos = [self._check_topology(t) for t in candidate.params["topologies"]]
        c = self.config
        return C2FCoarseSupernet(topologies=topos, coarse_op=c.coarse_op, levels=c.levels,
                                 spatial_dims=c.spatial_dims, in_channels=in_channels,
                                 out_channels=out_channels, width=width)

    def build_fine_supernet(
        self, choice: Mapping[str, Any], *, in_channels: int, out_channels: int, width: int
    ) -> C2FFineSupernet:
        t = self._check_topology(_topology_of(choice))
        c = self.config
        return C2FFineSupernet(topology=t, ops=c.ops, k=c.pc_k, levels=c.levels,
                               spatial_dims=c.spatial_dims, in_channels=in_channels,
                               out_channels=out_channels, width=width)

    def coarse_choices(self) -> list[dict[str, Any]]:
        """Every valid topology as a choice ``{"topology": "0-1-...-0"}`` (enumeration order)."""
        return [{"topology": format_topology(t)} for t in self.topologies]

    def coarse_architecture(
        self, choice: Mapping[str, Any], *, in_channels: int, out_channels: int, width: int
    ) -> C2FArchitecture:
        """The topology with ``coarse_op`` on every edge (what its coarse supernet derives)."""
        t = self._check_topology(_topology_of(choice))
        c = self.config
        return C2FArchitecture(spatial_dims=c.spatial_dims, in_channels=in_channels,
                               out_channels=out_channels, width=width, levels=c.levels,
                               topology=format_topology(t),
                               ops=[[c.coarse_op] * n for n in edges_per_cell(t)])

    def sample_architecture(
        self, *, seed: int, in_channels: int, out_channels: int, width: int
    ) -> C2FArchitecture:
        rng = random.Random(seed)
        t = self.topologies[rng.randrange(len(self.topologies))]
        choices = [o for o in self.config.ops if o != "none"]
        ops = [[rng.choice(choices) for _ in range(n)] for n in edges_per_cell(t)]
        return C2FArchitecture(spatial_dims=self.config.spatial_dims, in_channels=in_channels,
                               out_channels=out_channels, width=width, levels=self.config.levels,
                               topology=format_topology(t), ops=ops)
