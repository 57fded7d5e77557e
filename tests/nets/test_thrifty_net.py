"""Thrifty grid network: wiring, resolutions, 2D/3D forward/backward, architecture validation."""

from __future__ import annotations

import pytest
import torch

from raynas.errors import ConfigError
from raynas.nets import (
    ThriftyArchitecture,
    ThriftyNet,
    build_network,
    count_parameters,
    load_architecture,
)
from raynas.nets.ops import Op
from raynas.nets.thrifty import cell_names, grid_wiring

torch.set_num_threads(2)

CELL = [[(0, "conv3"), (1, "sep_conv3")], [(1, "skip"), (2, "max_pool3")]]
CELL_B = [[(0, "dil_conv3"), (1, "avg_pool3")], [(0, "skip"), (2, "conv3")]]

DEPTH4 = {
    "X[0][0]": ("stem", "stem"),
    "X[0][1]": ("stem", "X[0][0]"),
    "X[0][2]": ("X[0][0]", "X[0][1]"),
    "X[0][3]": ("X[0][1]", "X[0][2]"),
    "X[1][0]": ("X[0][0]", "X[0][1]"),
    "X[1][1]": ("X[0][1]", "X[0][2]"),
    "X[1][2]": ("X[0][2]", "X[0][3]"),
    "X[2][0]": ("X[0][0]+X[1][0]", "X[1][1]"),
    "X[2][1]": ("X[0][1]+X[1][1]", "X[1][2]"),
    "X[3][0]": ("X[0][0]+X[1][0]+X[2][0]", "X[2][1]"),
}


def make_net(dims: int = 2, depth: int = 4, width: int = 4, **kw) -> ThriftyNet:
    return ThriftyNet(spatial_dims=dims, in_channels=kw.get("c_in", 1),
                      out_channels=kw.get("c_out", 2), depth=depth, width=width,
                      dn_cell=kw.get("dn", CELL), up_cell=kw.get("up", CELL_B))


def test_depth4_wiring_is_the_papers():
    net = make_net()
    assert net.wiring() == DEPTH4
    assert list(net.wiring()) == cell_names(4)  # computation order: column by column
    assert len(net.cells) == 10


def test_wiring_rule_for_every_depth():
    for depth in range(1, 7):
        wiring = grid_wiring(depth)
        assert len(wiring) == depth * (depth + 1) // 2
        for k in range(1, depth):
            for j in range(depth - k):
                in0, in1 = wiring[f"X[{k}][{j}]"]
                assert in0.split("+") == [f"X[{m}][{j}]" for m in range(k)]
                assert in1 == f"X[{k - 1}][{j + 1}]"
        assert f"X[{depth - 1}][0]" in wiring and f"X[{depth}][0]" not in wiring


def test_cell_inputs_and_resolutions_follow_the_wiring():
    """Hooks record every cell's actual inputs: shapes follow the grid (depth j at 1/2^(j+1))."""
    width, size = 4, 64
    net = make_net(width=width)
    seen: dict[str, tuple] = {}

    def hook(name):
        def record(module, args, out):
            seen[name] = (tuple(args[0].shape), tuple(args[1].shape), tuple(out.shape))
        return record

    for name in cell_names(4):
        k, j = (int(v) for v in name[2:-1].split("]["))
        net.cells[f"x{k}_{j}"].register_forward_hook(hook(name))
    net(torch.randn(1, 1, size, size))
    res = {"stem": size}
    res.update({name: size // 2 ** (int(name[-2]) + 1) for name in cell_names(4)})
    for name, (in0, in1) in DEPTH4.items():
        s0, s1, out = seen[name]
        parts = in0.split("+")
        assert s0 == (1, width * len(parts), res[parts[0]], res[parts[0]])
        assert s1[2:] == (res[in1], res[in1])
        assert out == (1, width, res[name], res[name])


@pytest.mark.parametrize(
    "dims,depth,size,c_in,c_out",
    [(2, 4, (32, 32), 1, 2), (2, 3, (27, 40), 3, 4), (3, 3, (16, 16, 16), 1, 3),
     (3, 2, (17, 12, 20), 2, 2), (2, 1, (16, 16), 1, 2)],
)
def test_forward_backward(dims, depth, size, c_in, c_out):
    net = make_net(dims=dims, depth=depth, c_in=c_in, c_out=c_out)
    x = torch.randn(2, c_in, *size)
    y = net(x)
    assert y.shape == (2, c_out, *size)
    y.square().mean().backward()
    grads = [p.grad for p in net.parameters()]
    assert all(g is not None for g in grads)
    assert all(torch.isfinite(g).all() for g in grads)


def test_child_network_has_only_plain_ops():
    net = make_net()
    edges = [e for cell in net.cells.values() for row in cell.edges for e in row]
    assert len(edges) == 10 * 4
    assert all(isinstance(e, Op) for e in edges)
    assert not any("Mixed" in type(m).__name__ for m in net.modules())


def test_same_width_everywhere_and_thrifty():
    arch = ThriftyArchitecture(spatial_dims=2, in_channels=1, out_channels=2, width=32,
                               depth=4, nodes=2, dn=CELL, up=CELL_B)
    net = build_network(arch)
    for cell in net.cells.values():
        assert cell.out.conv.out_channels == 32 and cell.out.conv.in_channels == 2 * 32
    assert count_parameters(net) < 1_000_000


def test_architecture_round_trip():
    arch = ThriftyArchitecture(spatial_dims=3, in_channels=1, out_channels=2, width=8,
                               depth=3, nodes=2, dn=CELL, up=CELL_B)
    again = load_architecture(arch.to_json())
    assert again == arch
    assert count_parameters(build_network(again)) == count_parameters(build_network(arch))


@pytest.mark.parametrize(
    "dn,match",
    [
        ([[(0, "none"), (1, "conv3")], [(0, "conv3")]], "none"),
        ([[(0, "conv3"), (2, "conv3")], [(0, "conv3")]], "sources"),
        ([[(0, "conv3"), (0, "skip")], [(0, "conv3")]], "sources"),
        ([[(0, "conv3")]], "nodes"),
        ([[(0, "p3d")], [(1, "conv3")]], "p3d"),
    ],
)
def test_invalid_genotypes(dn, match):
    data = {"space": "thrifty", "spatial_dims": 2, "in_channels": 1, "out_channels": 2,
            "width": 8, "depth": 3, "nodes": 2, "dn": dn, "up": CELL}
    with pytest.raises(ConfigError, match=match):
        load_architecture(data)
