"""C2F coarse and fine supernets: forward/backward in 2D and 3D, exact param counts, derive."""

from __future__ import annotations

import random

import pytest
import torch

from raynas.nets import build_network, count_parameters, load_architecture
from raynas.spaces import C2FFineSupernet, load_space

torch.set_num_threads(2)

SPACES = [  # (space, overrides, dims)
    ("c2f_small", None, 3),
    ("c2f_small", {"spatial_dims": 2, "ops": ["conv3", "skip"], "coarse_op": "conv3"}, 2),
]


def _x(dims: int) -> torch.Tensor:
    return torch.randn(2, 1, *(16,) * dims)


@pytest.mark.parametrize("name,overrides,dims", SPACES)
def test_coarse_supernet_single_path_and_exact_param_count(name, overrides, dims):
    space = load_space(name, overrides=overrides)
    cand = space.coarse_candidates()[1]
    net = space.build_coarse_supernet(cand, in_channels=1, out_channels=2, width=4)
    assert net.choices() == cand.params["topologies"]
    rng = random.Random(0)
    for _ in range(2):
        choice = net.sample(rng)
        net.set_active(choice)
        net.zero_grad()
        y = net(_x(dims))
        assert y.shape == (2, 2, *(16,) * dims)
        y.mean().backward()
        assert net.stem.conv.weight.grad is not None
    for topo in net.choices():  # every topology runs on the shared weights
        derived = build_network(net.derive({"topology": topo}))
        assert net.param_count({"topology": topo}) == count_parameters(derived)
    with torch.no_grad():
        net.set_active(net.choices()[-1])
        assert torch.isfinite(net(_x(dims))).all()
    with pytest.raises(ValueError, match="not in this cluster"):
        net.set_active(space.coarse_candidates()[0].params["topologies"][0])


def test_coarse_cells_are_shared_per_position_and_level():
    space = load_space("c2f_small")
    net = space.build_coarse_supernet(space.coarse_candidates()[2], in_channels=1,
                                      out_channels=2, width=4)
    keys = {(int(k.split("_")[0]), int(k.split("_")[1])) for k in net.cells}
    needed = {(i, int(lv)) for t in net.choices() for i, lv in enumerate(t.split("-"))}
    assert keys == needed


@pytest.mark.parametrize("name,overrides,dims", SPACES)
def test_fine_supernet_gradients_reach_alpha_and_derive_round_trip(name, overrides, dims):
    space = load_space(name, overrides=overrides)
    topo = "0-1-2-1-1-0"
    net = space.build_fine_supernet({"topology": topo}, in_channels=1, out_channels=3, width=4)
    arch_ids = {id(p) for p in net.arch_parameters()}
    weight_ids = {id(p) for p in net.weight_parameters()}
    assert not arch_ids & weight_ids
    assert arch_ids | weight_ids == {id(p) for p in net.parameters()}
    assert net.arch["alpha"].shape == (9, len(space.config.ops))  # 3 encoder + 3x2 decoder edges
    assert set(net.arch.keys()) == {"alpha"}  # no beta: decoder cells keep both edges
    y = net(_x(dims))
    assert y.shape == (2, 3, *(16,) * dims)
    y.square().mean().backward()
    assert net.arch["alpha"].grad.abs().sum() > 0
    with torch.no_grad():
        net.arch["alpha"].zero_()
        net.arch["alpha"][:, space.config.ops.index("skip")] = 1.0
    arch = net.derive()
    assert arch.topology == topo and all(op == "skip" for row in arch.ops for op in row)
    again = load_architecture(arch.to_json())
    derived = build_network(again)
    assert not any("alpha" in n or "beta" in n for n, _ in derived.named_parameters())
    assert derived(_x(dims)).shape == (2, 3, *(16,) * dims)


def _derived_weights(supernet, choice: dict[tuple[str, int], int]) -> dict[str, torch.Tensor]:
    """The supernet's weights renamed for the derived net: the chosen op of each MixedOp."""
    out = {}
    for name, value in supernet.state_dict().items():
        if name.startswith("arch."):
            continue
        parts = name.split(".")
        if parts[0] == "cells" and parts[2] == "edges" and parts[4] == "ops":
            if int(parts[5]) != choice[(parts[1], int(parts[3]))]:
                continue
            name = ".".join(parts[:4] + parts[6:])
        out[name] = value
    return out


@pytest.mark.parametrize("topology", ["0-1-2-1-0", "0-1-2-2-1-1-0", "1-1-0"])
@pytest.mark.parametrize("dims", [2, 3])
def test_derived_net_computes_the_supernet_argmax_path(topology, dims):
    """With one-hot alphas (and K=1, no partial channels), the fine supernet and the network it
    derives, holding the same weights, compute the same function: the derived network is what
    was searched, decoder cells summing both edges with weight 1 in both."""
    ops = ["conv3", "skip", "sep_conv3", "none"]
    net = C2FFineSupernet(topology=topology, ops=ops, k=1, levels=3, spatial_dims=dims,
                          in_channels=1, out_channels=2, width=4)
    gen = torch.Generator().manual_seed(0)
    rows = net.arch["alpha"].shape[0]
    picks = [int(v) for v in torch.randint(0, 3, (rows,), generator=gen)]  # never "none"
    with torch.no_grad():
        net.arch["alpha"].fill_(-1e4)
        for r, j in enumerate(picks):
            net.arch["alpha"][r, j] = 1e4  # softmax is exactly one-hot
    arch = net.derive()
    row_of = {}
    for i, rows_i in enumerate(net._alpha_rows):
        for e, r in enumerate(rows_i):
            row_of[(f"{i}_{net.topology[i]}", e)] = r
    assert arch.ops == [[ops[picks[r]] for r in rows_i] for rows_i in net._alpha_rows]
    derived = build_network(load_architecture(arch.to_json()))
    derived.load_state_dict(
        _derived_weights(net, {k: picks[r] for k, r in row_of.items()}), strict=True
    )
    net.eval(), derived.eval()
    x = torch.randn(2, 1, *(16,) * dims, generator=gen)
    with torch.no_grad():
        torch.testing.assert_close(derived(x), net(x), rtol=1e-5, atol=1e-6)


def test_fine_supernet_derive_never_picks_none():
    net = C2FFineSupernet(topology="0-1-0", ops=["none", "conv3", "skip"], k=2, levels=2,
                          spatial_dims=2, in_channels=1, out_channels=2, width=4)
    with torch.no_grad():
        net.arch["alpha"][:, 0] = 10.0
        net.arch["alpha"][:, 1] = 1.0
    assert net.derive().ops == [["conv3"], ["conv3"], ["conv3", "conv3"]]


def test_fine_supernet_rejects_width_not_divisible_by_k():
    with pytest.raises(ValueError, match="pc_k"):
        load_space("c2f").build_fine_supernet({"topology": "0-1-0" + "-0" * 9}, in_channels=1,
                                               out_channels=2, width=6)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sample_architecture_is_valid_and_deterministic(seed):
    space = load_space("c2f")
    a = space.sample_architecture(seed=seed, in_channels=1, out_channels=2, width=8)
    b = space.sample_architecture(seed=seed, in_channels=1, out_channels=2, width=8)
    assert a == b == load_architecture(a.to_dict())
    assert a.topology in {"-".join(map(str, t)) for t in space.topologies}


def test_load_space_rejects_ops_unknown_for_dims(tmp_path):
    from raynas.errors import ConfigError

    path = tmp_path / "bad.yaml"
    path.write_text("type: c2f\nspatial_dims: 2\nops: [conv3, p3d]\n")
    with pytest.raises(ConfigError) as info:
        load_space(path)
    msg = str(info.value)
    assert str(path) in msg and "ops" in msg and "p3d" in msg and "valid: conv3" in msg
