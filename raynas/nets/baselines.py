"""Hand-designed baselines: U-Net and UNet++ as in Zhou et al. 2018, nnU-Net-style DynUNet.

U-Net and UNet++ follow the Keras implementation of the UNet++ paper: filters 32, 64, 128, 256,
512; each block is two 3x3 convolutions with bias and ReLU (no normalisation); 2x2 max pooling;
upsampling by a 2x2 transposed convolution with stride 2 that produces the filter count of the
decoder block; a final 1x1 convolution to the classes. With one input channel and one output
they hold exactly 7,759,521 (U-Net, "7.76M") and 9,041,601 (UNet++ without deep supervision,
"9.04M") parameters, the counts of the paper's table. The networks return logits; the sigmoid or
softmax belongs to the loss. Inputs whose sizes are not multiples of ``2**(levels-1)`` are padded
and the output cropped back, so sliding-window inference may use any ROI.

Weights start as in that Keras code (:func:`keras_init`): ``he_normal`` for every convolution,
``glorot_uniform`` for the transposed ones, zero biases. PyTorch's default (uniform, a sixth of
He's variance) shrinks the signal ~2.4x per un-normalised ReLU layer: a 5-level U-Net then starts
as a near-constant of its input (its logits vary ~0.006 across voxels, ~0.5 with He), and the
smoke retrain (120 steps) never left the all-background solution (validation Dice 0).

Example:
    >>> net = UNet(spatial_dims=2, in_channels=1, out_channels=1)
    >>> sum(p.numel() for p in net.parameters())
    7759521
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import nn

from raynas.nets.architecture import Architecture, register_architecture, register_named_model

__all__ = [
    "PAPER_FILTERS",
    "ConvBlock",
    "keras_init",
    "UNet",
    "UNetPlusPlus",
    "build_dynunet",
    "plan_kernels_strides",
    "nnunet_filters",
    "UNetArchitecture",
    "UNetPlusPlusArchitecture",
    "DynUNetArchitecture",
    "unet_architecture",
    "unetpp_architecture",
    "dynunet_plan",
    "dynunet_architecture",
    "DEFAULT_DYNUNET_SPACING",
    "DEFAULT_DYNUNET_PATCH",
]

PAPER_FILTERS: tuple[int, ...] = (32, 64, 128, 256, 512)

_CONV = {2: nn.Conv2d, 3: nn.Conv3d}
_CONVT = {2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}
_POOL = {2: nn.MaxPool2d, 3: nn.MaxPool3d}


def _check_common(spatial_dims: int, in_channels: int, out_channels: int, filters: Sequence[int]):
    if spatial_dims not in (2, 3):
        raise ValueError(f"spatial_dims must be 2 or 3 (got {spatial_dims!r})")
    if in_channels < 1 or out_channels < 1:
        raise ValueError(
            f"in_channels and out_channels must be >= 1 (got {in_channels}, {out_channels})"
        )
    if len(filters) < 2 or any(int(f) < 1 for f in filters):
        raise ValueError(f"filters must list >= 2 positive widths (got {list(filters)!r})")


class ConvBlock(nn.Sequential):
    """Two 3x3 convolutions with bias, each followed by ReLU (the Keras ``standard_unit``).

    Example:
        >>> ConvBlock(2, 1, 32)(torch.zeros(1, 1, 8, 8)).shape
        torch.Size([1, 32, 8, 8])
    """

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int) -> None:
        conv = _CONV[spatial_dims]
        super().__init__(
            conv(in_channels, out_channels, 3, padding=1, bias=True),
            nn.ReLU(inplace=True),
            conv(out_channels, out_channels, 3, padding=1, bias=True),
            nn.ReLU(inplace=True),
        )


# Keras' ``he_normal`` draws from a normal truncated at 2 standard deviations, rescaled by this
# factor (the std of a unit normal truncated to [-2, 2]) so the variance stays 2 / fan_in.
_TRUNCATED_STD = 0.87962566103423978


def keras_init(module: nn.Module) -> nn.Module:
    """Initialises ``module``'s convolutions as the UNet++ paper's Keras code does; returns it.

    Convolutions: ``he_normal`` (truncated normal, variance ``2 / fan_in``, fan_in = input
    channels x kernel volume); transposed convolutions: ``glorot_uniform`` (Keras' default);
    every bias 0. Un-normalised ReLU networks need it: it keeps each layer's output variance.

    Example:
        >>> conv = keras_init(nn.Conv2d(4, 8, 3))
        >>> limit = 2 * (2 / (4 * 3 * 3)) ** 0.5 / 0.8796  # 2 std, fan_in 36
        >>> bool((conv.bias == 0).all()), bool(conv.weight.abs().max() <= limit)
        (True, True)
    """
    for m in module.modules():
        if isinstance(m, (nn.ConvTranspose2d, nn.ConvTranspose3d)):
            nn.init.xavier_uniform_(m.weight)
        elif isinstance(m, (nn.Conv2d, nn.Conv3d)):
            fan_in = m.weight[0].numel()  # in_channels / groups x kernel volume
            std = (2.0 / fan_in) ** 0.5 / _TRUNCATED_STD
            nn.init.trunc_normal_(m.weight, std=std, a=-2 * std, b=2 * std)
        else:
            continue
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    return module


class _PaddedNet(nn.Module):
    """Pads the input to a multiple of the total downsampling factor, crops the logits back."""

    factor: int

    def _pad(self, x: torch.Tensor) -> tuple[torch.Tensor, list[int]]:
        sizes = list(x.shape[2:])
        pads: list[int] = []
        for s in reversed(sizes):
            pads += [0, (-s) % self.factor]
        if any(pads):
            x = F.pad(x, pads)
        return x, sizes

    @staticmethod
    def _crop(y: torch.Tensor, sizes: list[int]) -> torch.Tensor:
        if list(y.shape[2:]) == sizes:
            return y
        return y[(..., *[slice(0, s) for s in sizes])]


class UNet(_PaddedNet):
    """U-Net (Ronneberger et al.) configured as in the UNet++ paper's Keras code.

    Args:
        spatial_dims: 2 or 3.
        in_channels: image channels.
        out_channels: classes (1 for the binary sigmoid setting of the paper).
        filters: widths of the levels, top to bottom.

    Example:
        >>> net = UNet(spatial_dims=3, in_channels=1, out_channels=2, filters=(4, 8))
        >>> net(torch.zeros(1, 1, 8, 8, 8)).shape
        torch.Size([1, 2, 8, 8, 8])
    """

    def __init__(
        self,
        *,
        spatial_dims: int = 2,
        in_channels: int = 1,
        out_channels: int = 1,
        filters: Sequence[int] = PAPER_FILTERS,
    ) -> None:
        super().__init__()
        _check_common(spatial_dims, in_channels, out_channels, filters)
        f = [int(v) for v in filters]
        self.filters = f
        self.factor = 2 ** (len(f) - 1)
        self.pool = _POOL[spatial_dims](2)
        self.encoder = nn.ModuleList(
            ConvBlock(spatial_dims, in_channels if i == 0 else f[i - 1], f[i])
            for i in range(len(f))
        )
        convt = _CONVT[spatial_dims]
        self.up = nn.ModuleList(convt(f[i + 1], f[i], 2, stride=2) for i in range(len(f) - 1))
        self.decoder = nn.ModuleList(
            ConvBlock(spatial_dims, 2 * f[i], f[i]) for i in range(len(f) - 1)
        )
        self.head = _CONV[spatial_dims](f[0], out_channels, 1)
        keras_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, sizes = self._pad(x)
        skips: list[torch.Tensor] = []
        for i, block in enumerate(self.encoder):
            x = block(x if i == 0 else self.pool(x))
            skips.append(x)
        for i in reversed(range(len(self.filters) - 1)):
            x = self.decoder[i](torch.cat([skips[i], self.up[i](x)], dim=1))
        return self._crop(self.head(x), sizes)


class UNetPlusPlus(_PaddedNet):
    """UNet++ (Zhou et al. 2018) without deep supervision.

    Nodes ``X[i][j]`` (i = level, j = column): ``X[i][0]`` is the encoder; for ``j >= 1``,
    ``X[i][j] = ConvBlock(concat(X[i][0..j-1], up(X[i+1][j-1])))`` with ``f[i]`` filters, ``up``
    a 2x2 transposed convolution ``f[i+1] -> f[i]``. The output is a 1x1 convolution of
    ``X[0][L-1]``.

    Example:
        >>> net = UNetPlusPlus(spatial_dims=2, in_channels=1, out_channels=1)
        >>> sum(p.numel() for p in net.parameters())
        9041601
    """

    def __init__(
        self,
        *,
        spatial_dims: int = 2,
        in_channels: int = 1,
        out_channels: int = 1,
        filters: Sequence[int] = PAPER_FILTERS,
    ) -> None:
        super().__init__()
        _check_common(spatial_dims, in_channels, out_channels, filters)
        f = [int(v) for v in filters]
        n = len(f)
        self.filters = f
        self.factor = 2 ** (n - 1)
        self.pool = _POOL[spatial_dims](2)
        convt = _CONVT[spatial_dims]
        blocks: dict[str, nn.Module] = {}
        ups: dict[str, nn.Module] = {}
        for i in range(n):
            blocks[f"x{i}_0"] = ConvBlock(spatial_dims, in_channels if i == 0 else f[i - 1], f[i])
        for j in range(1, n):
            for i in range(n - j):
                ups[f"x{i}_{j}"] = convt(f[i + 1], f[i], 2, stride=2)
                blocks[f"x{i}_{j}"] = ConvBlock(spatial_dims, (j + 1) * f[i], f[i])
        self.blocks = nn.ModuleDict(blocks)
        self.up = nn.ModuleDict(ups)
        self.head = _CONV[spatial_dims](f[0], out_channels, 1)
        keras_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, sizes = self._pad(x)
        n = len(self.filters)
        nodes: dict[tuple[int, int], torch.Tensor] = {}
        for i in range(n):
            inp = x if i == 0 else self.pool(nodes[(i - 1, 0)])
            nodes[(i, 0)] = self.blocks[f"x{i}_0"](inp)
        for j in range(1, n):
            for i in range(n - j):
                up = self.up[f"x{i}_{j}"](nodes[(i + 1, j - 1)])
                cat = torch.cat([*(nodes[(i, m)] for m in range(j)), up], dim=1)
                nodes[(i, j)] = self.blocks[f"x{i}_{j}"](cat)
        return self._crop(self.head(nodes[(0, n - 1)]), sizes)


def build_dynunet(
    *,
    spatial_dims: int,
    in_channels: int,
    out_channels: int,
    kernels: Sequence[Sequence[int]],
    strides: Sequence[Sequence[int]],
    filters: Sequence[int],
) -> nn.Module:
    """MONAI's ``DynUNet`` (instance norm, leaky ReLU, no deep supervision) from a plan.

    Example:
        >>> net = build_dynunet(spatial_dims=2, in_channels=1, out_channels=2,
        ...                     kernels=[[3, 3], [3, 3]], strides=[[1, 1], [2, 2]], filters=[4, 8])
        >>> net(torch.zeros(1, 1, 8, 8)).shape
        torch.Size([1, 2, 8, 8])
    """
    from monai.networks.nets import DynUNet

    if not (len(kernels) == len(strides) == len(filters)) or len(kernels) < 2:
        raise ValueError(
            "kernels, strides and filters must have the same length >= 2 "
            f"(got {len(kernels)}, {len(strides)}, {len(filters)})"
        )
    return DynUNet(
        spatial_dims=spatial_dims,
        in_channels=in_channels,
        out_channels=out_channels,
        kernel_size=[list(k) for k in kernels],
        strides=[list(s) for s in strides],
        upsample_kernel_size=[list(s) for s in strides[1:]],
        filters=list(filters),
        norm_name=("INSTANCE", {"affine": True}),
        deep_supervision=False,
        res_block=False,
    )


def plan_kernels_strides(
    spacing: Sequence[float],
    patch_size: Sequence[int],
    *,
    min_size: int = 8,
    max_levels: int = 6,
) -> tuple[list[list[int]], list[list[int]]]:
    """The nnU-Net heuristic for DynUNet kernels and strides.

    Level by level, an axis is halved when its current spacing is at most twice the smallest
    current spacing and its current size is at least ``min_size`` (so a halved axis keeps at
    least ``min_size // 2`` voxels) and even; its kernel is 3 unless the axis is still very
    anisotropic (spacing more than twice the smallest), then 1. Planning stops when no axis can
    be halved or at ``max_levels`` levels; the bottom level has kernel 3 on every axis.

    Returns:
        ``(kernels, strides)``, one entry per level, ``strides[0]`` all ones.

    Example:
        >>> plan_kernels_strides((0.8, 0.8, 3.0), (128, 128, 32))[1][:3]
        [[1, 1, 1], [2, 2, 1], [2, 2, 2]]
    """
    if len(spacing) != len(patch_size) or len(spacing) not in (2, 3):
        raise ValueError(
            f"spacing and patch_size must both have 2 or 3 entries (got {list(spacing)!r}, "
            f"{list(patch_size)!r})"
        )
    if any(s <= 0 for s in spacing) or any(int(p) < 1 for p in patch_size):
        raise ValueError(
            f"spacing and patch_size must be positive (got {spacing!r}, {patch_size!r})"
        )
    dims = len(spacing)
    spacings = [float(s) for s in spacing]
    sizes = [int(p) for p in patch_size]
    kernels: list[list[int]] = []
    strides: list[list[int]] = [[1] * dims]
    while len(strides) < max_levels:
        smallest = min(spacings)
        ratio = [s / smallest for s in spacings]
        stride = [
            2 if r <= 2 and size >= min_size and size % 2 == 0 else 1
            for r, size in zip(ratio, sizes, strict=True)
        ]
        if all(s == 1 for s in stride):
            break
        kernels.append([3 if r <= 2 else 1 for r in ratio])
        strides.append(stride)
        sizes = [size // s for size, s in zip(sizes, stride, strict=True)]
        spacings = [sp * s for sp, s in zip(spacings, stride, strict=True)]
    kernels.append([3] * dims)
    return kernels, strides


def nnunet_filters(levels: int, spatial_dims: int, *, base: int = 32) -> list[int]:
    """nnU-Net widths: ``base * 2**i`` capped at 320 (3D) or 512 (2D).

    Example:
        >>> nnunet_filters(6, 3)
        [32, 64, 128, 256, 320, 320]
    """
    cap = 320 if spatial_dims == 3 else 512
    return [min(base * 2**i, cap) for i in range(levels)]


# --- Architectures (plain JSON data, built through raynas.nets.build_network) -----------------

DEFAULT_DYNUNET_SPACING: dict[int, tuple[float, ...]] = {2: (1.0, 1.0), 3: (1.0, 1.0, 1.0)}
DEFAULT_DYNUNET_PATCH: dict[int, tuple[int, ...]] = {2: (256, 256), 3: (96, 96, 96)}


def _fill_width(data: Any) -> Any:
    if isinstance(data, dict) and "width" not in data and data.get("filters"):
        data = {**data, "width": data["filters"][0]}
    return data


class _FiltersArchitecture(Architecture):
    filters: list[int] = Field(min_length=2, max_length=8)

    _fill = model_validator(mode="before")(_fill_width)

    @model_validator(mode="after")
    def _check_filters(self) -> _FiltersArchitecture:
        if any(f < 1 or f > 2048 for f in self.filters):
            raise ValueError(f"filters: each must be in 1..2048 (got {self.filters})")
        if self.width != self.filters[0]:
            raise ValueError(f"width ({self.width}) must equal filters[0] ({self.filters[0]})")
        return self


class UNetArchitecture(_FiltersArchitecture):
    """U-Net of the UNet++ paper as data.

    Example:
        >>> UNetArchitecture(spatial_dims=2, in_channels=1, out_channels=1,
        ...                  filters=[32, 64, 128, 256, 512]).width
        32
    """

    space: Literal["unet"] = "unet"


class UNetPlusPlusArchitecture(_FiltersArchitecture):
    """UNet++ (no deep supervision) as data; fields as :class:`UNetArchitecture`."""

    space: Literal["unetpp"] = "unetpp"


class DynUNetArchitecture(_FiltersArchitecture):
    """MONAI DynUNet planned the nnU-Net way: one kernel, stride and width per level.

    Example:
        >>> arch = dynunet_plan((1.0, 1.0), (64, 64), in_channels=1, out_channels=2)
        >>> arch.strides[:2], arch.filters[:2]
        ([[1, 1], [2, 2]], [32, 64])
    """

    space: Literal["dynunet"] = "dynunet"
    kernels: list[list[int]]
    strides: list[list[int]]

    @model_validator(mode="after")
    def _check_plan(self) -> DynUNetArchitecture:
        n = len(self.filters)
        if len(self.kernels) != n or len(self.strides) != n:
            raise ValueError(
                f"kernels, strides and filters need one entry per level "
                f"(got {len(self.kernels)}, {len(self.strides)}, {n})"
            )
        for name, rows, allowed in (
            ("kernels", self.kernels, (1, 3, 5)),
            ("strides", self.strides, (1, 2)),
        ):
            for row in rows:
                if len(row) != self.spatial_dims or any(v not in allowed for v in row):
                    raise ValueError(
                        f"{name}: each entry must list {self.spatial_dims} values from "
                        f"{list(allowed)} (got {row})"
                    )
        if any(v != 1 for v in self.strides[0]):
            raise ValueError(f"strides: the first level must have stride 1 (got {self.strides[0]})")
        return self


def _scaled_filters(width: int | None, levels: int = 5) -> list[int]:
    if width is None:
        return list(PAPER_FILTERS)
    if width < 1:
        raise ValueError(f"width must be >= 1 (got {width!r})")
    return [width * 2**i for i in range(levels)]


def unet_architecture(
    *, spatial_dims: int = 2, in_channels: int = 1, out_channels: int = 1,
    width: int | None = None,
) -> UNetArchitecture:
    """The paper's U-Net (filters 32..512), or filters ``width * 2**i`` when ``width`` is given.

    Example:
        >>> unet_architecture(width=8).filters
        [8, 16, 32, 64, 128]
    """
    return UNetArchitecture(spatial_dims=spatial_dims, in_channels=in_channels,
                            out_channels=out_channels, filters=_scaled_filters(width))


def unetpp_architecture(
    *, spatial_dims: int = 2, in_channels: int = 1, out_channels: int = 1,
    width: int | None = None,
) -> UNetPlusPlusArchitecture:
    """The paper's UNet++ (filters 32..512), or filters ``width * 2**i``."""
    return UNetPlusPlusArchitecture(spatial_dims=spatial_dims, in_channels=in_channels,
                                    out_channels=out_channels, filters=_scaled_filters(width))


def dynunet_plan(
    spacing: Sequence[float],
    patch_size: Sequence[int],
    *,
    in_channels: int,
    out_channels: int,
    base_width: int = 32,
) -> DynUNetArchitecture:
    """DynUNet planned from the target spacing and patch size (nnU-Net heuristic).

    Kernels and strides come from :func:`plan_kernels_strides`, widths from
    :func:`nnunet_filters` (``base_width * 2**i``, capped at 320 in 3D and 512 in 2D).

    Example:
        >>> dynunet_plan((0.8, 0.8, 3.0), (128, 128, 32), in_channels=1, out_channels=2).kernels[0]
        [3, 3, 1]
    """
    kernels, strides = plan_kernels_strides(spacing, patch_size)
    dims = len(spacing)
    return DynUNetArchitecture(
        spatial_dims=dims, in_channels=in_channels, out_channels=out_channels,
        kernels=kernels, strides=strides,
        filters=nnunet_filters(len(kernels), dims, base=base_width),
    )


def dynunet_architecture(
    *, spatial_dims: int = 3, in_channels: int = 1, out_channels: int = 2,
    width: int | None = None, spacing: Sequence[float] | None = None,
    patch_size: Sequence[int] | None = None,
) -> DynUNetArchitecture:
    """DynUNet for a default isotropic spacing and patch (96^3 in 3D, 256^2 in 2D) or given ones."""
    if spatial_dims not in (2, 3):
        raise ValueError(f"spatial_dims must be 2 or 3 (got {spatial_dims!r})")
    return dynunet_plan(
        spacing or DEFAULT_DYNUNET_SPACING[spatial_dims],
        patch_size or DEFAULT_DYNUNET_PATCH[spatial_dims],
        in_channels=in_channels, out_channels=out_channels, base_width=width or 32,
    )


def _build_filters_net(cls: type[nn.Module]):
    def build(arch: _FiltersArchitecture) -> nn.Module:
        return cls(spatial_dims=arch.spatial_dims, in_channels=arch.in_channels,
                   out_channels=arch.out_channels, filters=arch.filters)

    return build


def _build_dynunet(arch: DynUNetArchitecture) -> nn.Module:
    return build_dynunet(spatial_dims=arch.spatial_dims, in_channels=arch.in_channels,
                         out_channels=arch.out_channels, kernels=arch.kernels,
                         strides=arch.strides, filters=arch.filters)


def _register() -> None:
    """Registers ``unet``, ``unetpp`` and ``dynunet`` (architectures and model names)."""
    register_architecture("unet", UNetArchitecture, _build_filters_net(UNet))
    register_architecture("unetpp", UNetPlusPlusArchitecture, _build_filters_net(UNetPlusPlus))
    register_architecture("dynunet", DynUNetArchitecture, _build_dynunet)
    register_named_model("unet", unet_architecture)
    register_named_model("unetpp", unetpp_architecture)
    register_named_model("dynunet", dynunet_architecture)


_register()
