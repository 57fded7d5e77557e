"""PC-DARTS MixedOp: partial channels, K=1 equals the naive weighted sum, derivation helpers."""

from __future__ import annotations

import pytest
import torch

from raynas.spaces import MixedOp, channel_shuffle, strongest_edges, strongest_op

torch.set_num_threads(2)


@pytest.mark.parametrize("dims", [2, 3])
def test_k1_equals_naive_weighted_sum(dims):
    torch.manual_seed(0)
    mixed = MixedOp(ops=["conv3", "skip", "max_pool3", "none"], spatial_dims=dims, channels=4,
                    k=1)
    x = torch.randn(2, 4, *(8,) * dims)
    w = torch.softmax(torch.randn(4), 0)
    naive = sum(wi * op(x) for wi, op in zip(w, mixed.ops, strict=True))
    assert torch.allclose(mixed(x, w), naive)


@pytest.mark.parametrize("k,stride", [(2, 1), (4, 1), (4, 2), (8, 2)])
def test_partial_channels_bypass_and_shuffle(k, stride):
    mixed = MixedOp(ops=["conv3", "skip"], spatial_dims=2, channels=8, stride=stride, k=k)
    assert all(op.channels == 8 // k for op in mixed.ops)
    x = torch.randn(1, 8, 8, 8)
    y = mixed(x, torch.tensor([0.0, 0.0]))  # weights 0: only the bypass survives
    x2 = x[:, 8 // k:]
    if stride == 2:
        x2 = torch.nn.functional.max_pool2d(x2, 2)
    expected = channel_shuffle(torch.cat([torch.zeros_like(x2[:, : 8 // k]), x2], 1), k)
    assert y.shape == (1, 8, 8 // stride, 8 // stride)
    assert torch.equal(y, expected)


def test_channel_shuffle_interleaves():
    x = torch.arange(6.0).view(1, 6, 1, 1)
    assert channel_shuffle(x, 2).flatten().tolist() == [0, 3, 1, 4, 2, 5]


def test_bad_k_is_rejected():
    with pytest.raises(ValueError, match="k must"):
        MixedOp(ops=["conv3"], spatial_dims=2, channels=6, k=4)


def test_strongest_op_never_none():
    names = ["none", "conv3", "skip"]
    assert strongest_op(torch.tensor([5.0, 1.0, 2.0]), names) == "skip"


def test_strongest_edges_rank_by_alpha_times_beta():
    names = ["conv3", "skip", "none"]
    alpha = torch.tensor([[3.0, 0.0, 0.0], [0.0, 0.0, 9.0], [1.0, 1.0, 0.0]])
    # edge 1 is dominated by none -> weak; beta favours edge 2 strongly
    assert strongest_edges(alpha, None, names, keep=1) == [0]
    assert strongest_edges(alpha, torch.tensor([0.0, 0.0, 5.0]), names, keep=2) == [0, 2]
    assert strongest_edges(alpha, torch.tensor([-5.0, 0.0, 5.0]), names, keep=1) == [2]
