"""Exact parameter counts, FLOPs and an activation-memory estimate.

FLOPs convention (one place, used by the analytic ``op.cost`` and by :func:`model_cost`):

- convolution / linear: one multiply-accumulate per FLOP (MACs, as C2FNAS and DiNTS tables
  count them), plus one per output element when the layer has a bias;
- normalisation: two per element (the affine scale and shift); activation: one per element;
- pooling: one per window element per output element; linear/trilinear upsampling: ``2**dims``
  per output element; identity, zero and reshapes: none. Element-wise sums of a cell are ignored.

Activation memory is the sum of the output sizes (float32 bytes) of every leaf module for one
input of batch 1: roughly what a training step keeps for backward.

Example:
    >>> import torch
    >>> conv = torch.nn.Conv2d(2, 4, 3, padding=1, bias=False)
    >>> model_cost(conv, (8, 8), in_channels=2).flops == 8 * 8 * 4 * 2 * 9
    True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

__all__ = [
    "Cost",
    "count_parameters",
    "model_cost",
    "conv_flops",
    "conv_out_shape",
    "norm_flops",
    "act_flops",
]

_BYTES_PER_ELEMENT = 4


@dataclass(frozen=True)
class Cost:
    """Parameters, FLOPs (see module doc) and activation bytes of a module for one input."""

    params: int
    flops: int
    act_bytes: int = 0

    def __add__(self, other: Cost) -> Cost:
        return Cost(
            self.params + other.params, self.flops + other.flops, self.act_bytes + other.act_bytes
        )

    def to_dict(self) -> dict[str, int]:
        return {"params": self.params, "flops": self.flops, "act_bytes": self.act_bytes}


def count_parameters(module: nn.Module, *, trainable_only: bool = False) -> int:
    """Exact number of (distinct) parameters of ``module``."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def conv_out_shape(
    spatial: Sequence[int],
    kernel: Sequence[int],
    *,
    stride: int = 1,
    padding: Sequence[int] | int = 0,
    dilation: int = 1,
) -> tuple[int, ...]:
    """Output spatial shape of a convolution (PyTorch's formula)."""
    pads = [padding] * len(spatial) if isinstance(padding, int) else list(padding)
    return tuple(
        (s + 2 * p - dilation * (k - 1) - 1) // stride + 1
        for s, k, p in zip(spatial, kernel, pads, strict=True)
    )


def conv_flops(
    c_in: int, c_out: int, kernel: Sequence[int], out_spatial: Sequence[int], *, groups: int = 1,
    bias: bool = False,
) -> int:
    """MACs of a convolution (plus one per output element for the bias)."""
    out_numel = c_out * math.prod(out_spatial)
    return out_numel * (c_in // groups) * math.prod(kernel) + (out_numel if bias else 0)


def norm_flops(channels: int, spatial: Sequence[int]) -> int:
    return 2 * channels * math.prod(spatial)


def act_flops(channels: int, spatial: Sequence[int]) -> int:
    return channels * math.prod(spatial)


def _leaf_flops(module: nn.Module, inp: torch.Tensor, out: torch.Tensor) -> int:
    out_numel = out.numel() // out.shape[0]
    spatial = tuple(out.shape[2:])
    if isinstance(module, nn.modules.conv._ConvNd):
        return conv_flops(
            module.in_channels, module.out_channels, module.kernel_size, spatial,
            groups=module.groups, bias=module.bias is not None,
        )
    if isinstance(module, nn.Linear):
        return out_numel * module.in_features + (out_numel if module.bias is not None else 0)
    if isinstance(module, nn.modules.instancenorm._InstanceNorm | nn.modules.batchnorm._BatchNorm
                  | nn.GroupNorm | nn.LayerNorm):
        return 2 * out_numel
    if isinstance(module, nn.ReLU | nn.LeakyReLU | nn.PReLU | nn.GELU | nn.SiLU | nn.Sigmoid):
        return out_numel
    if isinstance(module, nn.modules.pooling._MaxPoolNd | nn.modules.pooling._AvgPoolNd):
        k = module.kernel_size
        ks = [k] * len(spatial) if isinstance(k, int) else list(k)
        return out_numel * math.prod(ks)
    if isinstance(module, nn.Upsample):
        return out_numel * (2 ** len(spatial)) if module.mode != "nearest" else 0
    return 0


def model_cost(
    module: nn.Module,
    input_size: Sequence[int],
    *,
    in_channels: int | None = None,
    device: str | torch.device = "meta",
) -> Cost:
    """Exact parameters, FLOPs and activation bytes of ``module`` for one input (batch 1).

    Args:
        module: the network (left unchanged; it is run on a copy when ``device`` is ``"meta"``).
        input_size: spatial size, e.g. ``(96, 96, 96)`` or ``(256, 256)``.
        in_channels: input channels; read from the first convolution when omitted.
        device: where the shape-only forward runs; ``"meta"`` needs no memory or compute.
    """
    if in_channels is None:
        first = next((m for m in module.modules() if isinstance(m, nn.modules.conv._ConvNd)), None)
        if first is None:
            raise ValueError("in_channels is required for a module without convolutions")
        in_channels = first.in_channels
    params = count_parameters(module)
    net = module
    if str(device) == "meta":
        import copy

        net = copy.deepcopy(module).to("meta")
    totals = {"flops": 0, "act": 0}

    def hook(mod: nn.Module, args: tuple, out: object) -> None:
        if isinstance(mod, nn.Identity):
            return
        if isinstance(out, torch.Tensor) and args and isinstance(args[0], torch.Tensor):
            totals["flops"] += _leaf_flops(mod, args[0], out)
            totals["act"] += (out.numel() // out.shape[0]) * _BYTES_PER_ELEMENT

    leaves = [m for m in net.modules() if not list(m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    was_training = net.training
    try:
        net.eval()
        with torch.no_grad():
            net(torch.zeros(1, in_channels, *input_size, device=device))
    finally:
        for h in handles:
            h.remove()
        net.train(was_training)
    return Cost(params=params, flops=totals["flops"], act_bytes=totals["act"])
