"""Candidate operations, named and built for 2D or 3D from one definition (MONAI factories).

Every convolution is conv -> instance norm (affine) -> activation. Every op takes ``channels``
(in = out) and ``stride`` (1 or 2) and reports its exact cost for an input size with
``op.cost(spatial_shape)`` (conventions in :mod:`raynas.nets.costs`).

Example:
    >>> op = make_op("conv3", spatial_dims=2, channels=4, stride=2)
    >>> op.cost((8, 8)).params == 4 * 4 * 9 + 2 * 4
    True
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from monai.networks.layers.factories import Conv, Pool
from monai.networks.layers.utils import get_norm_layer
from torch import nn

from raynas.nets.costs import Cost, act_flops, conv_flops, conv_out_shape, norm_flops
from raynas.registry import Registry

__all__ = [
    "OPS",
    "ACTIVATIONS",
    "OpSpec",
    "Op",
    "ConvNormAct",
    "make_op",
    "op_names",
    "check_op_names",
    "make_act",
]

ACTIVATIONS = ("relu", "leakyrelu")


def make_act(act: str) -> nn.Module:
    """``relu`` or ``leakyrelu`` (slope 0.01, in place off so hooks see each output)."""
    if act == "relu":
        return nn.ReLU()
    if act == "leakyrelu":
        return nn.LeakyReLU(0.01)
    raise ValueError(f"act must be one of {', '.join(ACTIVATIONS)}, got {act!r}")


class Op(nn.Module):
    """Base of the candidate operations: ``forward(x)`` and an exact ``cost(spatial)``."""

    def __init__(self, *, spatial_dims: int, channels: int, stride: int) -> None:
        super().__init__()
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims!r}")
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride!r}")
        if channels < 1:
            raise ValueError(f"channels must be >= 1, got {channels!r}")
        self.spatial_dims, self.channels, self.stride = spatial_dims, channels, stride

    def out_shape(self, spatial: Sequence[int]) -> tuple[int, ...]:
        return tuple(-(-s // self.stride) for s in spatial)  # ceil(s / stride)

    def cost(self, spatial: Sequence[int]) -> Cost:
        """Exact parameters and FLOPs for one input of spatial size ``spatial`` (batch 1)."""
        return Cost(params=sum(p.numel() for p in self.parameters()), flops=0)


class ConvNormAct(Op):
    """conv (no bias) -> instance norm (affine) -> activation; ``in_channels`` may differ."""

    def __init__(
        self, *, spatial_dims: int, channels: int, stride: int = 1,
        kernel: Sequence[int] | int = 3, dilation: int = 1, in_channels: int | None = None,
        groups: int = 1, act: str = "relu", norm: bool = True, act_on: bool = True,
    ) -> None:
        super().__init__(spatial_dims=spatial_dims, channels=channels, stride=stride)
        ks = (kernel,) * spatial_dims if isinstance(kernel, int) else tuple(kernel)
        if len(ks) != spatial_dims:
            raise ValueError(f"kernel {ks} does not match spatial_dims={spatial_dims}")
        self.kernel, self.dilation = ks, dilation
        self.in_channels = channels if in_channels is None else in_channels
        self.padding = tuple(dilation * (k - 1) // 2 for k in ks)
        self.groups = groups
        conv_t = Conv[Conv.CONV, spatial_dims]
        self.conv = conv_t(self.in_channels, channels, ks, stride=stride, padding=self.padding,
                           dilation=dilation, groups=groups, bias=False)
        self.norm = (get_norm_layer(("instance", {"affine": True}), spatial_dims, channels)
                     if norm else nn.Identity())
        self.act = make_act(act) if act_on else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.conv(x)))

    def out_shape(self, spatial: Sequence[int]) -> tuple[int, ...]:
        return conv_out_shape(spatial, self.kernel, stride=self.stride, padding=self.padding,
                              dilation=self.dilation)

    def cost(self, spatial: Sequence[int]) -> Cost:
        out = self.out_shape(spatial)
        flops = conv_flops(self.in_channels, self.channels, self.kernel, out, groups=self.groups)
        if not isinstance(self.norm, nn.Identity):
            flops += norm_flops(self.channels, out)
        if not isinstance(self.act, nn.Identity):
            flops += act_flops(self.channels, out)
        return Cost(params=sum(p.numel() for p in self.parameters()), flops=flops)


class Seq(Op):
    """A chain of ops (used by ``p3d`` and ``sep_conv3``); the cost is the chain's."""

    def __init__(self, *parts: Op) -> None:
        p = parts[0]
        super().__init__(spatial_dims=p.spatial_dims, channels=parts[-1].channels, stride=p.stride)
        self.parts = nn.ModuleList(parts)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for part in self.parts:
            x = part(x)
        return x

    def out_shape(self, spatial: Sequence[int]) -> tuple[int, ...]:
        for part in self.parts:
            spatial = part.out_shape(spatial)
        return tuple(spatial)

    def cost(self, spatial: Sequence[int]) -> Cost:
        total = Cost(0, 0)
        for part in self.parts:
            total = total + part.cost(spatial)
            spatial = part.out_shape(spatial)
        return total


class Identity(Op):
    """``skip`` at stride 1."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class FactorizedReduce(Op):
    """``skip`` at stride 2 (DARTS): act, two 1x1 stride-2 convs on offset grids, concat, norm."""

    def __init__(self, *, spatial_dims: int, channels: int, stride: int = 2, act: str = "relu"):
        super().__init__(spatial_dims=spatial_dims, channels=channels, stride=stride)
        self.c1 = channels // 2 if channels > 1 else 1
        self.c2 = channels - self.c1
        conv_t = Conv[Conv.CONV, spatial_dims]
        self.act = make_act(act)
        self.conv1 = conv_t(channels, self.c1, 1, stride=2, bias=False)
        self.conv2 = conv_t(channels, self.c2, 1, stride=2, bias=False) if self.c2 else None
        self.norm = get_norm_layer(("instance", {"affine": True}), spatial_dims, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(x)
        outs = [self.conv1(x)]
        if self.conv2 is not None:
            shifted = x[(slice(None), slice(None)) + (slice(1, None),) * self.spatial_dims]
            outs.append(self.conv2(F.pad(shifted, (0, 1) * self.spatial_dims)))
        return self.norm(torch.cat(outs, dim=1))

    def cost(self, spatial: Sequence[int]) -> Cost:
        out = self.out_shape(spatial)
        ones = (1,) * self.spatial_dims
        flops = act_flops(self.channels, spatial) + conv_flops(self.channels, self.c1, ones, out)
        flops += conv_flops(self.channels, self.c2, ones, out) + norm_flops(self.channels, out)
        return Cost(params=sum(p.numel() for p in self.parameters()), flops=flops)


class Zero(Op):
    """``none``: zeros of the output shape (never chosen at derivation)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            return x.mul(0.0)
        return x[(slice(None), slice(None)) + (slice(None, None, 2),) * self.spatial_dims].mul(0.0)


class PoolOp(Op):
    """3^d max or average pooling, padding 1 (average ignores the padding).

    The padding is applied explicitly (``-inf`` for max, a divisor map for average), so inputs
    as small as 1 voxel per side work in 2D and 3D alike.
    """

    def __init__(self, *, spatial_dims: int, channels: int, stride: int = 1, kind: str = "max"):
        super().__init__(spatial_dims=spatial_dims, channels=channels, stride=stride)
        self.kind = kind
        pool_t = Pool[Pool.MAX if kind == "max" else Pool.AVG, spatial_dims]
        self.pool = pool_t(3, stride=stride, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad = (1, 1) * self.spatial_dims
        if self.kind == "max":
            return self.pool(F.pad(x, pad, value=float("-inf")))
        avg = F.avg_pool3d if self.spatial_dims == 3 else F.avg_pool2d
        ones = torch.ones_like(x[:1, :1])
        divisor = avg(F.pad(ones, pad), 3, stride=self.stride)
        return self.pool(F.pad(x, pad)) / divisor

    def cost(self, spatial: Sequence[int]) -> Cost:
        out = self.out_shape(spatial)
        return Cost(0, self.channels * math.prod(out) * 3**self.spatial_dims)


@dataclass(frozen=True)
class OpSpec:
    """A registered operation: its builder, the dimensionalities it exists in, a description."""

    build: Callable[[int, int, int, str], Op]  # (spatial_dims, channels, stride, act)
    dims: tuple[int, ...]
    description: str


OPS: Registry[OpSpec] = Registry("operation")


def _conv(kernel3: tuple[int, int, int], dilation: int = 1) -> Callable[[int, int, int, str], Op]:
    def build(dims: int, c: int, s: int, act: str) -> Op:
        kernel = kernel3[:dims]
        return ConvNormAct(spatial_dims=dims, channels=c, stride=s, kernel=kernel,
                           dilation=dilation, act=act)
    return build


def _p3d(dims: int, c: int, s: int, act: str) -> Op:
    return Seq(
        ConvNormAct(spatial_dims=dims, channels=c, stride=s, kernel=(3, 3, 1), act=act),
        ConvNormAct(spatial_dims=dims, channels=c, stride=1, kernel=(1, 1, 3), act=act),
    )


def _sep(dims: int, c: int, s: int, act: str) -> Op:
    return Seq(
        ConvNormAct(spatial_dims=dims, channels=c, stride=s, kernel=3, groups=c, norm=False,
                    act_on=False),
        ConvNormAct(spatial_dims=dims, channels=c, stride=1, kernel=1, act=act),
    )


def _skip(dims: int, c: int, s: int, act: str) -> Op:
    if s == 1:
        return Identity(spatial_dims=dims, channels=c, stride=1)
    return FactorizedReduce(spatial_dims=dims, channels=c, stride=s, act=act)


OPS.register("conv3", OpSpec(_conv((3, 3, 3)), (2, 3), "3x3x3 conv (3x3 in 2D)"))
OPS.register("conv2d_in_3d", OpSpec(_conv((3, 3, 1)), (3,), "3x3x1 conv (in-plane 2D)"))
OPS.register("p3d", OpSpec(_p3d, (3,), "pseudo-3D: 3x3x1 conv then 1x1x3 conv"))
OPS.register("dil_conv3", OpSpec(_conv((3, 3, 3), dilation=2), (2, 3), "3^d conv, dilation 2"))
OPS.register("sep_conv3", OpSpec(_sep, (2, 3), "depthwise 3^d conv + pointwise 1x1 conv"))
OPS.register("skip", OpSpec(_skip, (2, 3), "identity (factorized reduce at stride 2)"))
OPS.register("none", OpSpec(lambda d, c, s, a: Zero(spatial_dims=d, channels=c, stride=s),
                            (2, 3), "zero (never derived)"))
OPS.register("max_pool3", OpSpec(
    lambda d, c, s, a: PoolOp(spatial_dims=d, channels=c, stride=s, kind="max"), (2, 3),
    "3^d max pooling"))
OPS.register("avg_pool3", OpSpec(
    lambda d, c, s, a: PoolOp(spatial_dims=d, channels=c, stride=s, kind="avg"), (2, 3),
    "3^d average pooling"))


def op_names(spatial_dims: int) -> list[str]:
    """Names of the operations that exist in ``spatial_dims`` (2 or 3)."""
    return [n for n in OPS if spatial_dims in OPS.get(n).dims]


def check_op_names(names: Sequence[str], spatial_dims: int) -> list[str]:
    """Returns the names unknown for ``spatial_dims`` (empty when all are valid)."""
    valid = set(op_names(spatial_dims))
    return [n for n in names if n not in valid]


def make_op(
    name: str, *, spatial_dims: int, channels: int, stride: int = 1, act: str = "relu"
) -> Op:
    """Builds the operation ``name`` (see :data:`OPS`); input and output have ``channels``.

    Raises:
        ValueError: unknown name for these dims, bad stride/channels/act (lists allowed values).
    """
    if name not in OPS or spatial_dims not in OPS.get(name).dims:
        raise ValueError(f"unknown operation {name!r} for spatial_dims={spatial_dims}; "
                         f"valid: {', '.join(op_names(spatial_dims))}")
    if act not in ACTIVATIONS:
        raise ValueError(f"act must be one of {', '.join(ACTIVATIONS)}, got {act!r}")
    if stride not in (1, 2):
        raise ValueError(f"stride must be 1 or 2, got {stride!r}")
    return OPS.get(name).build(spatial_dims, channels, stride, act)
