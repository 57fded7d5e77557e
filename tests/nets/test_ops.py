"""Operations: shapes in 2D/3D, exact params and FLOPs by hand formulas, and hook agreement."""

from __future__ import annotations

import pytest
import torch

from raynas.nets import make_op, model_cost, op_names

torch.set_num_threads(2)

C = 4
S3 = (8, 8, 8)
N3 = 8 * 8 * 8  # output voxels at stride 1
H3 = 4 * 4 * 4  # at stride 2


def conv_block(k_prod: int, out_vox: int, c_in: int = C, c: int = C) -> tuple[int, int]:
    """params, flops of conv(no bias) -> IN(affine) -> act."""
    return c_in * c * k_prod + 2 * c, out_vox * c * c_in * k_prod + 2 * c * out_vox + c * out_vox


CASES = [  # name, stride, (params, flops) in 3D with C=4 on 8^3
    ("conv3", 1, conv_block(27, N3)),
    ("conv3", 2, conv_block(27, H3)),
    ("dil_conv3", 1, conv_block(27, N3)),
    ("conv2d_in_3d", 1, conv_block(9, N3)),
    ("p3d", 1, tuple(a + b for a, b in zip(conv_block(9, N3), conv_block(3, N3), strict=True))),
    ("sep_conv3", 1, (C * 27 + C * C + 2 * C, N3 * C * 27 + N3 * C * C + 3 * C * N3)),
    ("skip", 1, (0, 0)),
    ("skip", 2, (C * C // 2 * 2 + 2 * C, C * N3 + H3 * C * C + 2 * C * H3)),
    ("none", 1, (0, 0)),
    ("max_pool3", 1, (0, N3 * C * 27)),
    ("avg_pool3", 2, (0, H3 * C * 27)),
]


@pytest.mark.parametrize("name,stride,expected", CASES)
def test_op_cost_matches_hand_formula_and_hooks(name, stride, expected):
    op = make_op(name, spatial_dims=3, channels=C, stride=stride)
    cost = op.cost(S3)
    assert (cost.params, cost.flops) == expected
    assert sum(p.numel() for p in op.parameters()) == expected[0]
    hooked = model_cost(op, S3, in_channels=C, device="cpu")
    assert (hooked.params, hooked.flops) == expected
    y = op(torch.randn(1, C, *S3))
    assert y.shape == (1, C, *(s // stride for s in S3))


@pytest.mark.parametrize("name", op_names(2))
@pytest.mark.parametrize("stride", [1, 2])
def test_every_2d_op_keeps_channels_and_halves_at_stride_2(name, stride):
    op = make_op(name, spatial_dims=2, channels=6, stride=stride, act="leakyrelu")
    y = op(torch.randn(2, 6, 9, 10))
    assert y.shape == (2, 6, *op.out_shape((9, 10)))
    assert op.out_shape((9, 10)) == ((9, 10) if stride == 1 else (5, 5))
    assert op.cost((9, 10)).flops == model_cost(op, (9, 10), in_channels=6, device="cpu").flops


def test_op_sets_per_dims():
    assert {"conv2d_in_3d", "p3d"} <= set(op_names(3))
    assert not {"conv2d_in_3d", "p3d"} & set(op_names(2))
    assert {"conv3", "skip", "none", "sep_conv3", "dil_conv3", "max_pool3", "avg_pool3"} <= set(
        op_names(2)
    )


@pytest.mark.parametrize("kwargs,match", [
    ({"name": "p3d", "spatial_dims": 2}, "valid: conv3"),
    ({"name": "conv5", "spatial_dims": 3}, "unknown operation"),
    ({"name": "conv3", "spatial_dims": 3, "stride": 3}, "stride"),
    ({"name": "conv3", "spatial_dims": 3, "act": "gelu"}, "act"),
])
def test_make_op_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_op(channels=4, **kwargs)


def test_conv_is_conv_instance_norm_act():
    op = make_op("conv3", spatial_dims=3, channels=4)
    kinds = [type(m).__name__ for m in op.children()]
    assert kinds == ["Conv3d", "InstanceNorm3d", "ReLU"]
    assert op.norm.affine
