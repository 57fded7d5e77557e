"""Thrifty NAS network: a UNet++-like grid of DN/UP cells, shared by the supernet and the child.

Grid ``X[k][j]`` (``j`` = depth, ``k`` = nested column), stem at input resolution:

- DN cells ``X[0][j]``: ``in_0 = X[0][j-2]``, ``in_1 = X[0][j-1]`` (the stem where the index is
  negative); ``in_0`` is brought to ``in_1``'s resolution (factorized reduce) when they differ;
  edges leaving the cell inputs have stride 2 (a DARTS reduction cell), so the output has half
  the resolution of ``in_1``: depth ``j`` works at ``1 / 2**(j+1)`` of the input.
- UP cells ``X[k][j]`` (``k >= 1``, ``j + k <= depth - 1``): ``in_0`` = concatenation of
  ``X[0..k-1][j]`` (1x1 conv to C), ``in_1 = X[k-1][j+1]`` upsampled to depth ``j``.
- Output: ``X[depth-1][0]`` upsampled to the input size, then a 1x1 conv to the classes.

A cell has ``N`` nodes; node ``i`` sums edges from the two cell inputs and nodes ``< i``
(sources ``0, 1, 2 + i'``). The node outputs are concatenated and a 1x1 conv filters them back to
C channels; every cell has the same C. A cell genotype lists, per node, its edges as
``(source, op)``; the op ``None`` marks a searched edge. Edges are made by an **edge factory**
(``EdgeSpec -> nn.Module``): the child network uses :func:`make_op`, the supernet in
:mod:`raynas.spaces.thrifty` injects PC-DARTS mixed ops and passes the architecture weights to
``forward`` — one construction path for both.

Example:
    >>> cell = [[(0, "conv3"), (1, "skip")], [(1, "sep_conv3"), (2, "max_pool3")]]
    >>> net = ThriftyNet(spatial_dims=2, in_channels=1, out_channels=2, depth=3, width=8,
    ...                  dn_cell=cell, up_cell=cell)
    >>> net(torch.zeros(1, 1, 32, 32)).shape
    torch.Size([1, 2, 32, 32])
    >>> net.wiring()["X[1][1]"]
    ('X[0][1]', 'X[0][2]')
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import nn

from raynas.nets.architecture import Architecture, register_architecture
from raynas.nets.ops import ConvNormAct, make_op, op_names

__all__ = [
    "CellGenotype",
    "CellWeights",
    "EdgeSpec",
    "EdgeFactory",
    "ThriftyCell",
    "ThriftyNet",
    "child_edge_factory",
    "full_cell",
    "cell_names",
    "grid_wiring",
    "check_cell",
    "ThriftyArchitecture",
    "build_thrifty",
]

CellGenotype = Sequence[Sequence[tuple[int, str | None]]]
"""Per node, its input edges ``(source, op)``: source 0 = in_0, 1 = in_1, 2 + i = node i."""


@dataclass(frozen=True)
class EdgeSpec:
    """What an edge factory is asked to build."""

    kind: str  # "dn" or "up"
    node: int
    source: int
    op: str | None  # None: a searched (mixed) edge
    stride: int
    channels: int
    spatial_dims: int


EdgeFactory = Callable[[EdgeSpec], nn.Module]


@dataclass
class CellWeights:
    """Architecture weights of one cell type for a supernet forward.

    ``ops[i]``: ``(edges_of_node_i, n_ops)`` normalised op weights (``softmax(alpha)``);
    ``edges[i]``: ``(edges_of_node_i,)`` normalised edge weights (``softmax(beta)``).
    """

    ops: list[torch.Tensor]
    edges: list[torch.Tensor]


def child_edge_factory(spec: EdgeSpec) -> nn.Module:
    """The derived network's edges: the plain operation named in the genotype."""
    if spec.op is None:
        raise ValueError("a derived cell needs an operation on every edge (got None)")
    return make_op(spec.op, spatial_dims=spec.spatial_dims, channels=spec.channels,
                   stride=spec.stride)


def full_cell(nodes: int) -> list[list[tuple[int, None]]]:
    """The supernet cell: every node takes every earlier state through a searched edge."""
    return [[(s, None) for s in range(2 + i)] for i in range(nodes)]


def cell_names(depth: int) -> list[str]:
    """Cells in computation order (column by column): ``X[0][0] .. X[depth-1][0]``."""
    return [f"X[{k}][{j}]" for k in range(depth) for j in range(depth - k)]


def grid_wiring(depth: int) -> dict[str, tuple[str, str]]:
    """``{"X[k][j]": (in_0, in_1)}``; a concatenated ``in_0`` is written ``"X[0][j]+X[1][j]"``.

    Example:
        >>> grid_wiring(3)["X[0][1]"], grid_wiring(3)["X[2][0]"]
        (('stem', 'X[0][0]'), ('X[0][0]+X[1][0]', 'X[1][1]'))
    """
    wiring: dict[str, tuple[str, str]] = {}
    for name in cell_names(depth):
        k, j = _parse(name)
        if k == 0:
            in0 = "stem" if j < 2 else f"X[0][{j - 2}]"
            in1 = "stem" if j < 1 else f"X[0][{j - 1}]"
        else:
            in0 = "+".join(f"X[{m}][{j}]" for m in range(k))
            in1 = f"X[{k - 1}][{j + 1}]"
        wiring[name] = (in0, in1)
    return wiring


def _parse(name: str) -> tuple[int, int]:
    k, j = name[2:-1].split("][")
    return int(k), int(j)


def _key(name: str) -> str:
    k, j = _parse(name)
    return f"x{k}_{j}"


def check_cell(genotype: CellGenotype, *, nodes: int) -> None:
    """ValueError unless ``genotype`` has ``nodes`` nodes with valid, distinct sources."""
    if len(genotype) != nodes:
        raise ValueError(f"a cell needs {nodes} nodes, got {len(genotype)}")
    for i, edges in enumerate(genotype):
        sources = [s for s, _ in edges]
        if not sources:
            raise ValueError(f"node {i} has no input edge")
        bad = [s for s in sources if not 0 <= s < 2 + i]
        if bad or len(set(sources)) != len(sources):
            raise ValueError(
                f"node {i}: sources must be distinct values in 0..{1 + i}, got {sources}"
            )


class ThriftyCell(nn.Module):
    """One DN or UP cell; its edges come from ``edge_factory``.

    Args:
        kind: ``"dn"`` (halves the resolution) or ``"up"``.
        spatial_dims: 2 or 3.
        channels: C, the width of the inputs (after preprocessing) and of the output.
        genotype: per node, ``(source, op)`` edges (op None: searched edge).
        edge_factory: builds each edge from an :class:`EdgeSpec`.
        in0_channels: channels of ``in_0`` (``k * C`` for the UP cell of column ``k``).
        reduce_in0: DN only: ``in_0`` has twice ``in_1``'s resolution (factorized reduce).

    Example:
        >>> cell = ThriftyCell(kind="dn", spatial_dims=2, channels=8,
        ...                    genotype=[[(0, "conv3"), (1, "skip")]],
        ...                    edge_factory=child_edge_factory)
        >>> x = torch.zeros(1, 8, 16, 16)
        >>> cell(x, x).shape
        torch.Size([1, 8, 8, 8])
    """

    def __init__(
        self,
        *,
        kind: str,
        spatial_dims: int,
        channels: int,
        genotype: CellGenotype,
        edge_factory: EdgeFactory,
        in0_channels: int | None = None,
        reduce_in0: bool = False,
    ) -> None:
        super().__init__()
        if kind not in ("dn", "up"):
            raise ValueError(f"kind must be 'dn' or 'up', got {kind!r}")
        if reduce_in0 and kind != "dn":
            raise ValueError("reduce_in0 is only valid for a 'dn' cell")
        self.kind, self.spatial_dims, self.channels = kind, spatial_dims, channels
        self.nodes = len(genotype)
        check_cell(genotype, nodes=self.nodes)
        self.sources = [[s for s, _ in edges] for edges in genotype]
        c0 = channels if in0_channels is None else in0_channels
        if reduce_in0:
            self.pre0: nn.Module = make_op("skip", spatial_dims=spatial_dims, channels=channels,
                                           stride=2)
        else:
            self.pre0 = ConvNormAct(spatial_dims=spatial_dims, channels=channels, kernel=1,
                                    in_channels=c0)
        self.pre1 = ConvNormAct(spatial_dims=spatial_dims, channels=channels, kernel=1)
        self.edges = nn.ModuleList()
        for i, edges in enumerate(genotype):
            row = nn.ModuleList()
            for source, op in edges:
                stride = 2 if kind == "dn" and source < 2 else 1
                row.append(edge_factory(EdgeSpec(kind, i, source, op, stride, channels,
                                                 spatial_dims)))
            self.edges.append(row)
        self.out = ConvNormAct(spatial_dims=spatial_dims, channels=channels, kernel=1,
                               in_channels=self.nodes * channels)

    def forward(
        self, in0: torch.Tensor, in1: torch.Tensor, weights: CellWeights | None = None
    ) -> torch.Tensor:
        s0 = self.pre0(in0)
        if self.kind == "up":
            in1 = F.interpolate(in1, size=s0.shape[2:], mode=_MODES[self.spatial_dims],
                                align_corners=False)
        states = [s0, self.pre1(in1)]
        for i, row in enumerate(self.edges):
            if weights is None:
                node = sum(edge(states[s]) for s, edge in zip(self.sources[i], row, strict=True))
            else:
                w_ops, w_edges = weights.ops[i], weights.edges[i]
                node = sum(
                    w_edges[e] * edge(states[s], w_ops[e])
                    for e, (s, edge) in enumerate(zip(self.sources[i], row, strict=True))
                )
            states.append(node)
        return self.out(torch.cat(states[2:], dim=1))


_MODES = {2: "bilinear", 3: "trilinear"}


class ThriftyNet(nn.Module):
    """The Thrifty grid network (supernet or derived child, depending on the edge factory).

    Args:
        spatial_dims: 2 or 3.
        in_channels: image channels.
        out_channels: classes (logits).
        depth: number of DN cells (1..6).
        width: C, the same in every cell.
        dn_cell: genotype shared by all DN cells.
        up_cell: genotype shared by all UP cells (same number of nodes).
        edge_factory: :func:`child_edge_factory` (default) or a supernet's factory.

    ``forward(x, weights=None)``; a supernet passes ``{"dn": CellWeights, "up": CellWeights}``.
    """

    def __init__(
        self,
        *,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        depth: int,
        width: int,
        dn_cell: CellGenotype,
        up_cell: CellGenotype,
        edge_factory: EdgeFactory = child_edge_factory,
    ) -> None:
        super().__init__()
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims!r}")
        if not 1 <= depth <= 6:
            raise ValueError(f"depth must be in 1..6, got {depth!r}")
        if width < 1 or in_channels < 1 or out_channels < 1:
            raise ValueError(
                f"width, in_channels, out_channels must be >= 1 "
                f"(got {width}, {in_channels}, {out_channels})"
            )
        if len(dn_cell) != len(up_cell):
            raise ValueError(
                f"dn_cell and up_cell need the same number of nodes ({len(dn_cell)} != "
                f"{len(up_cell)})"
            )
        self.spatial_dims, self.depth, self.width = spatial_dims, depth, width
        self.stem = ConvNormAct(spatial_dims=spatial_dims, channels=width, kernel=3,
                                in_channels=in_channels)
        cells: dict[str, nn.Module] = {}
        for name in cell_names(depth):
            k, j = _parse(name)
            if k == 0:
                cells[_key(name)] = ThriftyCell(
                    kind="dn", spatial_dims=spatial_dims, channels=width, genotype=dn_cell,
                    edge_factory=edge_factory, reduce_in0=j >= 1)
            else:
                cells[_key(name)] = ThriftyCell(
                    kind="up", spatial_dims=spatial_dims, channels=width, genotype=up_cell,
                    edge_factory=edge_factory, in0_channels=k * width)
        self.cells = nn.ModuleDict(cells)
        conv = nn.Conv2d if spatial_dims == 2 else nn.Conv3d
        self.head = conv(width, out_channels, 1)

    def wiring(self) -> dict[str, tuple[str, str]]:
        """The grid's inputs per cell, as data (see :func:`grid_wiring`)."""
        return grid_wiring(self.depth)

    def forward(
        self, x: torch.Tensor, weights: Mapping[str, CellWeights] | None = None
    ) -> torch.Tensor:
        size = x.shape[2:]
        outs: dict[str, torch.Tensor] = {"stem": self.stem(x)}
        for name, (in0, in1) in self.wiring().items():
            cell = self.cells[_key(name)]
            t0 = torch.cat([outs[n] for n in in0.split("+")], dim=1)
            w = None if weights is None else weights[cell.kind]
            outs[name] = cell(t0, outs[in1], w)
        y = outs[f"X[{self.depth - 1}][0]"]
        y = F.interpolate(y, size=size, mode=_MODES[self.spatial_dims], align_corners=False)
        return self.head(y)


class ThriftyArchitecture(Architecture):
    """A derived Thrifty network: grid depth, width C and the DN and UP cell genotypes.

    ``dn`` / ``up`` list, per node, the kept edges as ``[source, op]`` (source 0 = in_0,
    1 = in_1, 2 + i = node i).

    Example:
        >>> cell = [[[0, "conv3"], [1, "skip"]], [[1, "sep_conv3"], [2, "conv3"]]]
        >>> a = ThriftyArchitecture(spatial_dims=2, in_channels=1, out_channels=2, width=32,
        ...                         depth=4, nodes=2, dn=cell, up=cell)
        >>> a.space, len(a.dn)
        ('thrifty', 2)
    """

    space: Literal["thrifty"] = "thrifty"
    depth: int = Field(ge=1, le=6)
    nodes: int = Field(ge=1, le=6)
    dn: list[list[tuple[int, str]]]
    up: list[list[tuple[int, str]]]

    @model_validator(mode="after")
    def _check_cells(self) -> ThriftyArchitecture:
        valid = [n for n in op_names(self.spatial_dims) if n != "none"]
        for name, cell in (("dn", self.dn), ("up", self.up)):
            try:
                check_cell(cell, nodes=self.nodes)
            except ValueError as exc:
                raise ValueError(f"{name}: {exc}") from None
            for edges in cell:
                for _, op in edges:
                    if op not in valid:
                        raise ValueError(f"{name}: unknown operation {op!r} for "
                                         f"{self.spatial_dims}D; valid: {', '.join(valid)}")
        return self


def build_thrifty(arch: ThriftyArchitecture) -> ThriftyNet:
    """The derived network: the genotypes' plain ops, no architecture parameters."""
    return ThriftyNet(spatial_dims=arch.spatial_dims, in_channels=arch.in_channels,
                      out_channels=arch.out_channels, depth=arch.depth, width=arch.width,
                      dn_cell=arch.dn, up_cell=arch.up)


register_architecture("thrifty", ThriftyArchitecture, build_thrifty)
