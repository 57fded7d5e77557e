"""PC-DARTS building blocks shared by the C2F and Thrifty fine supernets.

- :class:`MixedOp`: partial channels (1/K of the channels go through the softmax-weighted sum
  of candidate ops; the rest bypass it, max-pooled at stride 2), then channel shuffle. K=1 is
  plain DARTS.
- Edge normalisation: a node with several input edges weighs them with ``softmax(beta)``.
- Derivation: rank operations by ``softmax(alpha)``, edges by ``max non-none softmax(alpha) x
  softmax(beta)``; ``none`` is never picked.
- :class:`ArchParamsMixin`: architecture parameters live in ``self.arch`` (a ParameterDict),
  kept apart from the weights.

Example:
    >>> import torch
    >>> mixed = MixedOp(ops=["conv3", "skip"], spatial_dims=2, channels=8, k=4)
    >>> w = torch.softmax(torch.zeros(2), 0)
    >>> mixed(torch.randn(1, 8, 16, 16), w).shape
    torch.Size([1, 8, 16, 16])
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.networks.layers.factories import Pool
from torch import nn

from raynas.nets.ops import make_op

__all__ = [
    "MixedOp",
    "channel_shuffle",
    "ArchParamsMixin",
    "init_arch_param",
    "strongest_op",
    "op_strength",
    "strongest_edges",
]


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """ShuffleNet channel shuffle: (B, g*c, ...) -> interleave the g groups."""
    if groups == 1:
        return x
    b, c = x.shape[:2]
    spatial = x.shape[2:]
    return x.view(b, groups, c // groups, *spatial).transpose(1, 2).reshape(b, c, *spatial)


class MixedOp(nn.Module):
    """PC-DARTS mixed operation over ``ops`` on ``channels // k`` of the channels.

    Args:
        ops: candidate operation names (see :func:`raynas.nets.op_names`).
        spatial_dims: 2 or 3.
        channels: input = output channels; must be divisible by ``k``.
        stride: 1 or 2 (the bypass is max-pooled 2x at stride 2).
        k: partial-channel factor K (1 = DARTS).
        act: activation of the candidate convolutions.

    ``forward(x, weights)`` takes the already normalised op weights (``softmax(alpha)``).
    """

    def __init__(
        self, *, ops: Sequence[str], spatial_dims: int, channels: int, stride: int = 1,
        k: int = 4, act: str = "relu",
    ) -> None:
        super().__init__()
        if not ops:
            raise ValueError("ops must name at least one operation")
        if k < 1 or channels % k:
            raise ValueError(f"k must be >= 1 and divide channels={channels}, got k={k!r}")
        self.op_names = list(ops)
        self.k, self.stride, self.channels = k, stride, channels
        part = channels // k
        self.ops = nn.ModuleList(
            make_op(n, spatial_dims=spatial_dims, channels=part, stride=stride, act=act)
            for n in ops
        )
        self.bypass_pool = (
            Pool[Pool.MAX, spatial_dims](2, stride=2, ceil_mode=True)
            if stride == 2 and k > 1 else None
        )

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        if weights.shape != (len(self.ops),):
            n, got = len(self.ops), tuple(weights.shape)
            raise ValueError(f"weights must have shape ({n},), got {got}")
        part = self.channels // self.k
        x1 = x[:, :part]
        y = sum(w * op(x1) for w, op in zip(weights, self.ops, strict=True))
        if self.k == 1:
            return y
        x2 = x[:, part:]
        if self.bypass_pool is not None:
            x2 = self.bypass_pool(x2)
        return channel_shuffle(torch.cat([y, x2], dim=1), self.k)


def init_arch_param(*shape: int, scale: float = 1e-3) -> nn.Parameter:
    """DARTS initialisation: small random values (near-uniform softmax)."""
    return nn.Parameter(scale * torch.randn(*shape))


class ArchParamsMixin:
    """Architecture parameters in ``self.arch`` (an ``nn.ParameterDict``), weights elsewhere.

    Example:
        >>> class Net(ArchParamsMixin, nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.lin = nn.Linear(2, 2)
        ...         self.arch = nn.ParameterDict({"alpha": init_arch_param(3, 2)})
        >>> net = Net()
        >>> len(net.arch_parameters()), len(net.weight_parameters())
        (1, 2)
    """

    arch: nn.ParameterDict

    def arch_parameters(self) -> list[nn.Parameter]:
        return list(self.arch.parameters())

    def weight_parameters(self) -> list[nn.Parameter]:
        ids = {id(p) for p in self.arch_parameters()}
        return [p for p in self.parameters() if id(p) not in ids]  # type: ignore[attr-defined]


def op_strength(alpha_row: torch.Tensor, op_names: Sequence[str]) -> tuple[str, float]:
    """The strongest non-``none`` op of one edge and its softmax weight."""
    w = torch.softmax(alpha_row.detach().float(), dim=-1)
    best, best_w = None, -1.0
    for name, value in zip(op_names, w.tolist(), strict=True):
        if name != "none" and value > best_w:
            best, best_w = name, value
    if best is None:
        raise ValueError("every candidate operation is 'none'")
    return best, best_w


def strongest_op(alpha_row: torch.Tensor, op_names: Sequence[str]) -> str:
    """Name of the strongest non-``none`` operation by ``softmax(alpha_row)``."""
    return op_strength(alpha_row, op_names)[0]


def strongest_edges(
    alpha_rows: torch.Tensor, beta: torch.Tensor | None, op_names: Sequence[str], keep: int
) -> list[int]:
    """Indices (ascending) of the ``keep`` strongest input edges of one node.

    An edge's strength is its strongest non-``none`` ``softmax(alpha)`` times its normalised
    ``softmax(beta)`` weight (PC-DARTS edge normalisation); ties keep the lower index.
    """
    n = alpha_rows.shape[0]
    if not 1 <= keep <= n:
        raise ValueError(f"keep must be in 1..{n}, got {keep!r}")
    norm = (torch.softmax(beta.detach().float(), dim=-1).tolist() if beta is not None
            else [1.0] * n)
    scores = [op_strength(alpha_rows[i], op_names)[1] * norm[i] for i in range(n)]
    order = sorted(range(n), key=lambda i: (-scores[i], i))
    return sorted(order[:keep])
