"""C2F cells and network: one construction path for the derived net and both supernets.

:class:`C2FNet` holds a stem (to 1/2 resolution, level 0), cells keyed by (position, level) and a
head (upsample x2 + 1x1 conv). The cells take an *edge factory*: the derived network injects the
chosen plain ops, the coarse supernet the fixed coarse op in every (position, level) slot, the
fine supernet PC-DARTS ``MixedOp``s. A cell computes ``h = adapt(prev)``; ``out = h + sum_e w_e *
op_e(edge_e)`` over ``edges = [h]`` (+ ``[skip]`` for decoder cells); ``w_e`` is 1 unless a
supernet supplies edge weights.

Example:
    >>> arch = C2FArchitecture(spatial_dims=2, in_channels=1, out_channels=2, width=4, levels=3,
    ...                        topology="0-1-1-0", ops=[["conv3"], ["skip"], ["conv3"],
    ...                        ["conv3", "skip"]])
    >>> import torch
    >>> build_c2f(arch)(torch.zeros(1, 1, 16, 16)).shape
    torch.Size([1, 2, 16, 16])
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from monai.networks.layers.factories import Conv
from pydantic import Field, ValidationInfo, field_validator
from torch import nn

from raynas.nets.architecture import Architecture, register_architecture
from raynas.nets.c2f_topology import (
    STEM,
    Topology,
    check_topology,
    decoder_skips,
    edges_per_cell,
    format_topology,
)
from raynas.nets.ops import ConvNormAct, make_op, op_names

__all__ = ["C2FArchitecture", "C2FCell", "C2FNet", "CellSlot", "EdgeFactory", "build_c2f",
           "slots_for"]

EdgeFactory = Callable[[int, int, int, int], nn.Module]  # (position, level, edge, channels)


def _upsample_mode(spatial_dims: int) -> str:
    return "trilinear" if spatial_dims == 3 else "bilinear"


def transition(
    prev_level: int, level: int, *, spatial_dims: int, width: int, act: str = "relu"
) -> nn.Module:
    """same: identity; down: stride-2 3^d conv; up: upsample x2 + 1x1 conv (widths C*2**l)."""
    c_in, c_out = width * 2**prev_level, width * 2**level
    if level == prev_level:
        return nn.Identity()
    if level == prev_level + 1:
        return ConvNormAct(spatial_dims=spatial_dims, channels=c_out, in_channels=c_in,
                           stride=2, kernel=3, act=act)
    if level == prev_level - 1:
        return nn.Sequential(
            nn.Upsample(scale_factor=2, mode=_upsample_mode(spatial_dims), align_corners=False),
            ConvNormAct(spatial_dims=spatial_dims, channels=c_out, in_channels=c_in, kernel=1,
                        act=act),
        )
    raise ValueError(f"no transition from level {prev_level} to level {level}")


@dataclass(frozen=True)
class CellSlot:
    """One cell of a network: its position, level, the levels it may come from, its edges."""

    position: int
    level: int
    prev_levels: frozenset[int]
    n_edges: int

    @property
    def key(self) -> str:
        return f"{self.position}_{self.level}"


def slots_for(topologies: Iterable[Sequence[int]]) -> list[CellSlot]:
    """The union of cell slots needed to run every topology (shared (position, level) cells)."""
    prev: dict[tuple[int, int], set[int]] = {}
    edges: dict[tuple[int, int], int] = {}
    for t in topologies:
        counts = edges_per_cell(t)
        for i, level in enumerate(t):
            key = (i, level)
            prev.setdefault(key, set()).add(t[i - 1] if i else 0)
            edges[key] = max(edges.get(key, 0), counts[i])
    return [CellSlot(p, lv, frozenset(prev[(p, lv)]), edges[(p, lv)]) for p, lv in sorted(prev)]


class C2FCell(nn.Module):
    """A cell at one level: adapters from each possible previous level, one module per edge."""

    def __init__(
        self, *, spatial_dims: int, slot: CellSlot, width: int, edge_factory: EdgeFactory,
        act: str = "relu",
    ) -> None:
        super().__init__()
        self.slot = slot
        self.channels = width * 2**slot.level
        self.adapt = nn.ModuleDict({
            str(p): transition(p, slot.level, spatial_dims=spatial_dims, width=width, act=act)
            for p in sorted(slot.prev_levels)
        })
        self.edges = nn.ModuleList(
            edge_factory(slot.position, slot.level, e, self.channels) for e in range(slot.n_edges)
        )

    def forward(
        self, prev: torch.Tensor, prev_level: int, skip: torch.Tensor | None = None,
        op_weights: Sequence[torch.Tensor] | None = None, edge_weights: torch.Tensor | None = None,
    ) -> torch.Tensor:
        h = self.adapt[str(prev_level)](prev)
        inputs = [h] if skip is None else [h, skip]
        out = h
        for e, x in enumerate(inputs):
            y = self.edges[e](x) if op_weights is None else self.edges[e](x, op_weights[e])
            out = out + (y if edge_weights is None else edge_weights[e] * y)
        return out

    def param_count(self, prev_level: int, n_edges: int) -> int:
        mods = [self.adapt[str(prev_level)], *list(self.edges)[:n_edges]]
        return sum(p.numel() for m in mods for p in m.parameters())


class C2FNet(nn.Module):
    """Stem -> cells along the active topology (with U-Net skips) -> head.

    Args:
        spatial_dims, in_channels, out_channels, width: the usual; widths are ``width*2**level``.
        slots: the cells to hold (:func:`slots_for`); the derived net holds one topology's.
        topology: the active path (must be runnable with ``slots``).
        edge_factory: builds the module of each cell edge.
        act: activation of stem, transitions and ops.

    Inputs must have spatial sizes divisible by ``2**levels`` of the deepest level reached.
    """

    def __init__(
        self, *, spatial_dims: int, in_channels: int, out_channels: int, width: int,
        slots: Sequence[CellSlot], topology: Sequence[int], edge_factory: EdgeFactory,
        act: str = "relu",
    ) -> None:
        super().__init__()
        if width < 1:
            raise ValueError(f"width must be >= 1, got {width!r}")
        self.spatial_dims, self.width, self.act_name = spatial_dims, width, act
        self.in_channels, self.out_channels = in_channels, out_channels
        self.stem = ConvNormAct(spatial_dims=spatial_dims, channels=width,
                                in_channels=in_channels, stride=2, kernel=3, act=act)
        self.cells = nn.ModuleDict({
            s.key: C2FCell(spatial_dims=spatial_dims, slot=s, width=width,
                           edge_factory=edge_factory, act=act) for s in slots
        })
        self.head = nn.Sequential(
            nn.Upsample(scale_factor=2, mode=_upsample_mode(spatial_dims), align_corners=False),
            Conv[Conv.CONV, spatial_dims](width, out_channels, 1, bias=True),
        )
        self._set_topology(topology)

    def _set_topology(self, topology: Sequence[int]) -> None:
        t = tuple(topology)
        for i, level in enumerate(t):
            cell = self.cells[f"{i}_{level}"] if f"{i}_{level}" in self.cells else None
            prev = t[i - 1] if i else 0
            if cell is None or prev not in cell.slot.prev_levels:
                raise ValueError(f"topology {format_topology(t)!r} cannot run on these cells")
        self.topology: Topology = t
        self._skips = decoder_skips(t)

    def cell_weights(
        self, position: int, level: int
    ) -> tuple[list[torch.Tensor] | None, torch.Tensor | None]:
        """Op weights per edge and edge weights of one cell; plain networks use none."""
        return None, None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(x)
        outs = {STEM: h}
        prev_level = 0
        for i, level in enumerate(self.topology):
            skip = outs[self._skips[i]] if i in self._skips else None
            op_w, edge_w = self.cell_weights(i, level)
            h = self.cells[f"{i}_{level}"](h, prev_level, skip, op_w, edge_w)
            outs[i] = h
            prev_level = level
        return self.head(h)

    def param_count(self, topology: Sequence[int] | None = None) -> int:
        """Exact parameters used by ``topology`` (default: the active one)."""
        t = self.topology if topology is None else tuple(topology)
        counts = edges_per_cell(t)
        total = sum(p.numel() for m in (self.stem, self.head) for p in m.parameters())
        for i, level in enumerate(t):
            total += self.cells[f"{i}_{level}"].param_count(t[i - 1] if i else 0, counts[i])
        return total


class C2FArchitecture(Architecture):
    """A derived C2F network: topology (canonical string) and one op per cell edge.

    Example:
        >>> a = C2FArchitecture(spatial_dims=3, in_channels=1, out_channels=2, width=8,
        ...                     levels=2, topology="1-0", ops=[["p3d"], ["conv3", "skip"]])
        >>> a.space, a.topology
        ('c2f', '1-0')
    """

    space: Literal["c2f"] = "c2f"
    levels: int = Field(ge=2, le=8)
    topology: str
    ops: list[list[str]]
    act: Literal["relu", "leakyrelu"] = "relu"

    @field_validator("topology")
    @classmethod
    def _check_topology(cls, value: str, info: ValidationInfo) -> str:
        levels = info.data.get("levels")
        if levels is None:
            raise ValueError("needs a valid 'levels'")
        return format_topology(check_topology(value, levels=levels))

    @field_validator("ops")
    @classmethod
    def _check_ops(cls, value: list[list[str]], info: ValidationInfo) -> list[list[str]]:
        topology, dims = info.data.get("topology"), info.data.get("spatial_dims")
        if topology is None or dims is None:
            raise ValueError("needs a valid 'topology' and 'spatial_dims'")
        counts = edges_per_cell(check_topology(topology, levels=8))
        if [len(row) for row in value] != counts:
            hint = ""
            if len(value) == len(counts) and all(
                len(row) in (n, 2) for row, n in zip(value, counts, strict=True)
            ):
                hint = ("; cells at the deepest level after the first one are bottleneck cells "
                        "with one edge (their skip would repeat their own input)")
            raise ValueError(f"expected one op per cell edge, edges per cell {counts}{hint}")
        valid = [n for n in op_names(dims) if n != "none"]
        for row in value:
            for name in row:
                if name not in valid:
                    raise ValueError(f"unknown operation {name!r} for {dims}D; "
                                     f"valid: {', '.join(valid)}")
        return value

    @property
    def topology_levels(self) -> Topology:
        return tuple(int(v) for v in self.topology.split("-"))


def build_c2f(arch: C2FArchitecture) -> C2FNet:
    """The derived network: only the chosen ops, no architecture parameters."""
    t = arch.topology_levels

    def edge(position: int, level: int, e: int, channels: int) -> nn.Module:
        return make_op(arch.ops[position][e], spatial_dims=arch.spatial_dims, channels=channels,
                       act=arch.act)

    return C2FNet(spatial_dims=arch.spatial_dims, in_channels=arch.in_channels,
                  out_channels=arch.out_channels, width=arch.width, slots=slots_for([t]),
                  topology=t, edge_factory=edge, act=arch.act)


register_architecture("c2f", C2FArchitecture, build_c2f)
