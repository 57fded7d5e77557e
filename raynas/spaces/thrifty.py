"""The Thrifty NAS search space: a UNet++-like grid of DN/UP cells searched with PC-DARTS.

- **Coarse stage**: one candidate per ``(depth, width)`` pair of the YAML's ``candidates_depth``
  x ``candidates_width``. Its supernet is the Thrifty supernet with uniform architecture
  weights, frozen (no architecture parameters to step); it reports Dice and the parameter count
  of the default derived network (what :meth:`ThriftySupernet.derive` gives for uniform weights:
  every node keeps its edges from ``in_0`` and ``in_1`` with the first non-``none`` op).
- **Fine stage**: the same supernet with trainable alphas/betas: one DN and one UP genotype,
  shared by all cells of their type. Derivation keeps, per node, the ``keep_edges`` strongest
  input edges by ``softmax(alpha) x softmax(beta)`` with their strongest non-``none`` op.

The network code is :class:`raynas.nets.thrifty.ThriftyNet`; the supernet only injects
:class:`~raynas.spaces.pcdarts.MixedOp` edges through its edge factory.

Example:
    >>> space = load_space("thrifty")                                  # doctest: +SKIP
    >>> net = space.build_fine_supernet({"depth": 3, "width": 8}, in_channels=1,
    ...                                 out_channels=2)                # doctest: +SKIP
    >>> arch = net.derive()                                            # doctest: +SKIP
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from raynas.config.spaces import ThriftySpaceConfig
from raynas.nets.costs import count_parameters
from raynas.nets.thrifty import (
    CellWeights,
    EdgeSpec,
    ThriftyArchitecture,
    ThriftyNet,
    build_thrifty,
    cell_names,
    full_cell,
    grid_wiring,
)
from raynas.spaces.base import Candidate, SearchSpace
from raynas.spaces.pcdarts import ArchParamsMixin, MixedOp, strongest_edges, strongest_op

__all__ = [
    "ThriftySupernet",
    "ThriftySpace",
    "derive_cell",
    "thrifty_param_count",
]

_KINDS = ("dn", "up")


def _node_slices(nodes: int) -> list[slice]:
    out, start = [], 0
    for i in range(nodes):
        out.append(slice(start, start + 2 + i))
        start += 2 + i
    return out


def derive_cell(
    alpha: torch.Tensor, beta: torch.Tensor, ops: Sequence[str], *, nodes: int, keep_edges: int
) -> list[list[tuple[int, str]]]:
    """PC-DARTS derivation of one cell type.

    Args:
        alpha: ``(edges, n_ops)`` op logits, edges node by node (node i has ``2 + i``).
        beta: ``(edges,)`` edge logits (softmax over each node's edges).
        ops: the op names of alpha's columns.
        nodes: N.
        keep_edges: edges kept per node (fewer when a node has fewer inputs).

    Returns:
        Per node, ``[(source, op), ...]`` sorted by source; ties keep the lower source and the
        earlier op, so uniform weights give edges ``in_0, in_1`` with ``ops[0]`` (or the first
        non-``none``).
    """
    cell = []
    for sl in _node_slices(nodes):
        a, b = alpha[sl], beta[sl]
        keep = strongest_edges(a, b, ops, min(keep_edges, a.shape[0]))
        cell.append([(s, strongest_op(a[s], ops)) for s in keep])
    return cell


class ThriftySupernet(ArchParamsMixin, nn.Module):
    """Thrifty grid with PC-DARTS mixed edges and shared DN/UP alphas and betas.

    Args:
        ops: candidate op names (columns of the alphas).
        spatial_dims: 2 or 3.
        in_channels: image channels.
        out_channels: classes.
        depth: grid depth (number of DN cells).
        width: C (divisible by ``pc_k``).
        nodes: N per cell.
        keep_edges: edges per node kept by :meth:`derive`.
        pc_k: PC-DARTS partial-channel factor K.
        frozen_arch: uniform architecture weights that are not trained (the coarse stage).

    Example:
        >>> net = ThriftySupernet(ops=["conv3", "skip", "none"], spatial_dims=2, in_channels=1,
        ...                       out_channels=2, depth=2, width=8)
        >>> len(net.arch_parameters())
        4
        >>> net.derive().space
        'thrifty'
    """

    def __init__(
        self,
        *,
        ops: Sequence[str],
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        depth: int,
        width: int,
        nodes: int = 2,
        keep_edges: int = 2,
        pc_k: int = 4,
        frozen_arch: bool = False,
    ) -> None:
        super().__init__()
        if pc_k < 1 or width % pc_k:
            raise ValueError(f"width ({width}) must be divisible by pc_k ({pc_k})")
        if keep_edges not in (1, 2):
            raise ValueError(f"keep_edges must be 1 or 2, got {keep_edges!r}")
        if all(op == "none" for op in ops):
            raise ValueError(f"ops needs an operation other than 'none' (got {list(ops)})")
        self.ops, self.nodes, self.keep_edges = list(ops), nodes, keep_edges
        self.spatial_dims, self.depth, self.width = spatial_dims, depth, width
        self.in_channels, self.out_channels = in_channels, out_channels

        def mixed(spec: EdgeSpec) -> nn.Module:
            return MixedOp(ops=self.ops, spatial_dims=spec.spatial_dims, channels=spec.channels,
                           stride=spec.stride, k=pc_k)

        self.net = ThriftyNet(spatial_dims=spatial_dims, in_channels=in_channels,
                              out_channels=out_channels, depth=depth, width=width,
                              dn_cell=full_cell(nodes), up_cell=full_cell(nodes),
                              edge_factory=mixed)
        edges = sum(2 + i for i in range(nodes))
        params: dict[str, nn.Parameter] = {}
        for kind in _KINDS:
            params[f"alpha_{kind}"] = nn.Parameter(1e-3 * torch.randn(edges, len(self.ops)))
            params[f"beta_{kind}"] = nn.Parameter(1e-3 * torch.randn(edges))
        self.arch = nn.ParameterDict(params)
        self.arch_frozen = False
        if frozen_arch:
            self.freeze_arch()

    # -- architecture parameters -------------------------------------------------------------

    def freeze_arch(self) -> None:
        """Sets uniform architecture weights and stops training them (coarse stage)."""
        with torch.no_grad():
            for p in self.arch.values():
                p.zero_()
                p.requires_grad_(False)
        self.arch_frozen = True

    def arch_parameters(self) -> list[nn.Parameter]:
        """The alphas and betas (empty when frozen)."""
        return [] if self.arch_frozen else list(self.arch.values())

    def weight_parameters(self) -> list[nn.Parameter]:
        """Every parameter except the alphas and betas."""
        ids = {id(p) for p in self.arch.values()}
        return [p for p in self.parameters() if id(p) not in ids]

    def cell_weights(self) -> dict[str, CellWeights]:
        """Normalised op and edge weights of both cell types, per node."""
        out = {}
        for kind in _KINDS:
            alpha, beta = self.arch[f"alpha_{kind}"], self.arch[f"beta_{kind}"]
            slices = _node_slices(self.nodes)
            out[kind] = CellWeights(
                ops=[torch.softmax(alpha[sl], dim=-1) for sl in slices],
                edges=[torch.softmax(beta[sl], dim=-1) for sl in slices],
            )
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x, self.cell_weights())

    def wiring(self) -> dict[str, tuple[str, str]]:
        return self.net.wiring()

    # -- derivation ---------------------------------------------------------------------------

    def derive(self, choice: Mapping[str, Any] | None = None) -> ThriftyArchitecture:
        """The derived child (``choice`` is accepted for the coarse interface and checked)."""
        if choice is not None:
            self.set_active(choice)
        cells = {
            kind: derive_cell(self.arch[f"alpha_{kind}"], self.arch[f"beta_{kind}"], self.ops,
                              nodes=self.nodes, keep_edges=self.keep_edges)
            for kind in _KINDS
        }
        return ThriftyArchitecture(
            spatial_dims=self.spatial_dims, in_channels=self.in_channels,
            out_channels=self.out_channels, width=self.width, depth=self.depth,
            nodes=self.nodes, dn=cells["dn"], up=cells["up"],
        )

    # -- coarse-stage interface (one choice: this candidate's (depth, width)) -----------------

    def choices(self) -> list[dict[str, int]]:
        """The choices of this candidate: just its own ``{"depth", "width"}``."""
        return [{"depth": self.depth, "width": self.width}]

    def sample(self, rng: random.Random | None = None) -> dict[str, int]:
        return self.choices()[0]

    def set_active(self, choice: Mapping[str, Any]) -> None:
        if dict(choice) not in ({}, self.choices()[0]):
            raise ValueError(f"choice {dict(choice)!r} is not this supernet's "
                             f"{self.choices()[0]!r}")

    def param_count(self, choice: Mapping[str, Any] | None = None) -> int:
        """Exact parameters of the network :meth:`derive` gives now."""
        return thrifty_param_count(self.derive(choice))


def thrifty_param_count(arch: ThriftyArchitecture) -> int:
    """Exact parameter count of a derived Thrifty network (built on the meta device)."""
    with torch.device("meta"):
        return count_parameters(build_thrifty(arch))


def _cell_count(nodes: int, keep_edges: int, n_ops: int) -> int:
    total = 1
    for i in range(nodes):
        keep = min(keep_edges, 2 + i)
        total *= math.comb(2 + i, keep) * n_ops**keep
    return total


class ThriftySpace(SearchSpace):
    """The Thrifty space of a ``type: thrifty`` YAML.

    Examples:
        >>> from raynas.spaces import load_space
        >>> space = load_space("thrifty")
        >>> [c.key for c in space.coarse_candidates()]
        ['d3_w16', 'd3_w32', 'd4_w16', 'd4_w32']
    """

    type = "thrifty"
    keeps_searched_width = True  # the coarse stage chose the width C: retrain at that width
    config: ThriftySpaceConfig

    def _supernet(
        self, *, depth: int, width: int, in_channels: int, out_channels: int, frozen: bool
    ) -> ThriftySupernet:
        c = self.config
        return ThriftySupernet(ops=c.ops, spatial_dims=c.spatial_dims, in_channels=in_channels,
                               out_channels=out_channels, depth=depth, width=width,
                               nodes=c.nodes, keep_edges=c.keep_edges, pc_k=c.pc_k,
                               frozen_arch=frozen)

    def coarse_candidates(self) -> list[Candidate]:
        c = self.config
        return [Candidate(key=f"d{d}_w{w}", params={"depth": d, "width": w})
                for d in c.candidates_depth for w in c.candidates_width]

    def build_coarse_supernet(
        self, candidate: Candidate, *, in_channels: int, out_channels: int,
        width: int | None = None,
    ) -> ThriftySupernet:
        """The supernet of a ``(depth, width)`` candidate with uniform, frozen alphas/betas.

        The candidate's width is the one searched; ``width`` is only a fallback when the
        candidate does not name one.
        """
        p = candidate.params
        return self._supernet(depth=int(p.get("depth", self.config.depth)),
                              width=int(p.get("width") or width or self.config.width),
                              in_channels=in_channels, out_channels=out_channels, frozen=True)

    def build_fine_supernet(
        self, choice: Mapping[str, Any], *, in_channels: int, out_channels: int,
        width: int | None = None,
    ) -> ThriftySupernet:
        """The PC-DARTS supernet of a coarse choice ``{"depth", "width"}`` (defaults: YAML)."""
        return self._supernet(depth=int(choice.get("depth", self.config.depth)),
                              width=int(choice.get("width") or width or self.config.width),
                              in_channels=in_channels, out_channels=out_channels, frozen=False)

    def coarse_choices(self) -> list[dict[str, Any]]:
        """Each coarse candidate's ``{"depth", "width"}`` (the grid choices searched)."""
        return [dict(cand.params) for cand in self.coarse_candidates()]

    def coarse_architecture(
        self, choice: Mapping[str, Any], *, in_channels: int, out_channels: int,
        width: int | None = None,
    ) -> ThriftyArchitecture:
        """The uniform-weight cells at the choice's depth and width (what its frozen coarse
        supernet derives); ``width`` only where the choice names none."""
        depth = int(choice.get("depth", self.config.depth))
        if depth not in self.config.candidates_depth and depth != self.config.depth:
            raise ValueError(f"space {self.config.name!r}: depth {depth} is not searched")
        return self.default_architecture(depth=depth,
                                         width=int(choice.get("width") or width or 0) or None,
                                         in_channels=in_channels, out_channels=out_channels)

    def default_architecture(
        self, *, depth: int | None = None, width: int | None = None, in_channels: int = 1,
        out_channels: int = 2,
    ) -> ThriftyArchitecture:
        """What derivation gives for uniform weights (the coarse stage's derived network)."""
        c = self.config
        edges = sum(2 + i for i in range(c.nodes))
        zeros_a, zeros_b = torch.zeros(edges, len(c.ops)), torch.zeros(edges)
        cell = derive_cell(zeros_a, zeros_b, c.ops, nodes=c.nodes, keep_edges=c.keep_edges)
        return ThriftyArchitecture(spatial_dims=c.spatial_dims, in_channels=in_channels,
                                   out_channels=out_channels, width=width or c.width,
                                   depth=depth or c.depth, nodes=c.nodes, dn=cell, up=cell)

    def sample_architecture(
        self, *, seed: int, in_channels: int = 1, out_channels: int = 2,
        width: int | None = None,
    ) -> ThriftyArchitecture:
        """A uniformly random genotype pair at the YAML's depth (random-search baseline)."""
        c = self.config
        rng = random.Random(seed)
        ops = [o for o in c.ops if o != "none"]

        def cell() -> list[list[tuple[int, str]]]:
            out = []
            for i in range(c.nodes):
                sources = sorted(rng.sample(range(2 + i), min(c.keep_edges, 2 + i)))
                out.append([(s, rng.choice(ops)) for s in sources])
            return out

        return ThriftyArchitecture(spatial_dims=c.spatial_dims, in_channels=in_channels,
                                   out_channels=out_channels, width=width or c.width,
                                   depth=c.depth, nodes=c.nodes, dn=cell(), up=cell())

    def describe(self) -> dict[str, Any]:
        c = self.config
        n_ops = len([o for o in c.ops if o != "none"])
        per_type = _cell_count(c.nodes, c.keep_edges, n_ops)
        default = self.default_architecture(in_channels=1, out_channels=2)
        return {
            "name": c.name,
            "type": c.type,
            "description": c.description,
            "spatial_dims": c.spatial_dims,
            "depth": c.depth,
            "width": c.width,
            "nodes": c.nodes,
            "keep_edges": c.keep_edges,
            "ops": list(c.ops),
            "pc_k": c.pc_k,
            "cells": len(cell_names(c.depth)),
            "dn_cells": c.depth,
            "up_cells": len(cell_names(c.depth)) - c.depth,
            "edges_per_cell": sum(2 + i for i in range(c.nodes)),
            "genotypes_per_cell_type": per_type,
            "architectures_per_candidate": per_type**2,
            "coarse_candidates": [cand.key for cand in self.coarse_candidates()],
            "default_derived_params": thrifty_param_count(default),
            "wiring": [f"{k}=({a} | {b})" for k, (a, b) in grid_wiring(c.depth).items()],
        }
