"""Thrifty search space: candidates, supernet (shared alphas/betas), derive, param counts."""

from __future__ import annotations

import random

import pytest
import torch

from raynas.nets import build_network, count_parameters, load_architecture
from raynas.spaces import MixedOp, ThriftySpace, ThriftySupernet, derive_cell, load_space

torch.set_num_threads(2)

OPS = ["conv3", "sep_conv3", "dil_conv3", "max_pool3", "avg_pool3", "skip", "none"]


def tiny(space: str = "thrifty", **kw) -> ThriftySupernet:
    s = load_space(space)
    choice = {"depth": kw.pop("depth", 3), "width": kw.pop("width", 8)}
    return s.build_fine_supernet(choice, in_channels=kw.pop("in_channels", 1),
                                 out_channels=kw.pop("out_channels", 2))


@pytest.mark.parametrize("name,dims", [("thrifty", 2), ("thrifty3d", 3), ("thrifty_small", 2)])
def test_load_and_candidates(name, dims):
    space = load_space(name)
    assert isinstance(space, ThriftySpace) and space.config.spatial_dims == dims
    c = space.config
    cands = space.coarse_candidates()
    assert [cand.params for cand in cands] == [
        {"depth": d, "width": w} for d in c.candidates_depth for w in c.candidates_width
    ]
    assert len({cand.key for cand in cands}) == len(cands)


def test_supernet_shares_one_genotype_per_cell_type():
    net = tiny()
    assert set(net.arch.keys()) == {"alpha_dn", "beta_dn", "alpha_up", "beta_up"}
    assert net.arch["alpha_dn"].shape == (5, len(OPS))  # 2 + 3 edges for N = 2
    assert net.arch["beta_up"].shape == (5,)
    mixed = [m for m in net.modules() if isinstance(m, MixedOp)]
    assert len(mixed) == 6 * 5  # depth 3: 6 cells of 5 edges, no per-cell alphas
    assert all(m.k == 4 for m in mixed)


def test_weight_and_arch_parameters_are_disjoint_and_complete():
    net = tiny()
    w, a = net.weight_parameters(), net.arch_parameters()
    assert len(a) == 4
    assert not {id(p) for p in w} & {id(p) for p in a}
    assert {id(p) for p in w} | {id(p) for p in a} == {id(p) for p in net.parameters()}


@pytest.mark.parametrize("space,size", [("thrifty", (16, 16)), ("thrifty3d", (8, 8, 8))])
def test_supernet_forward_backward_reaches_alphas(space, size):
    net = tiny(space, depth=2)
    y = net(torch.randn(2, 1, *size))
    assert y.shape == (2, 2, *size)
    y.square().mean().backward()
    for p in net.arch_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0


def test_coarse_supernet_is_frozen_uniform_and_reports_default_count():
    space = load_space("thrifty")
    cand = next(c for c in space.coarse_candidates() if c.params == {"depth": 3, "width": 16})
    net = space.build_coarse_supernet(cand, in_channels=1, out_channels=2, width=999)
    assert net.width == 16 and net.depth == 3  # the candidate's width wins
    assert net.arch_parameters() == []
    assert all(not p.requires_grad and p.abs().sum() == 0 for p in net.arch.values())
    assert len(net.weight_parameters()) == len(list(net.parameters())) - 4
    choice = net.sample(random.Random(0))
    assert choice == {"depth": 3, "width": 16} and net.choices() == [choice]
    net.set_active(choice)
    arch = net.derive(choice)
    default = space.default_architecture(depth=3, width=16, in_channels=1, out_channels=2)
    assert arch == default
    assert default.dn == [[(0, "conv3"), (1, "conv3")], [(0, "conv3"), (1, "conv3")]]
    assert net.param_count(choice) == count_parameters(build_network(arch))
    y = net(torch.randn(1, 1, 16, 16))
    y.mean().backward()
    assert all(p.grad is None for p in net.arch.values())
    with pytest.raises(ValueError, match="choice"):
        net.set_active({"depth": 4, "width": 16})


def test_derive_keeps_strongest_edges_and_ops():
    net = tiny()
    with torch.no_grad():
        for p in net.arch.values():
            p.zero_()
        a, b = net.arch["alpha_dn"], net.arch["beta_dn"]
        # node 0 (edges 0, 1): make "none" the largest on edge 0 -> next best op is derived
        a[0, OPS.index("none")] = 9.0
        a[0, OPS.index("skip")] = 5.0
        a[1, OPS.index("dil_conv3")] = 3.0
        # node 1 (edges 2, 3, 4 = in_0, in_1, node 0): keep in_1 and node 0
        b[2] = -5.0
        a[3, OPS.index("avg_pool3")] = 2.0
        a[4, OPS.index("sep_conv3")] = 2.0
        net.arch["alpha_up"][2, OPS.index("max_pool3")] = 4.0
    arch = net.derive()
    assert arch.dn == [[(0, "skip"), (1, "dil_conv3")], [(1, "avg_pool3"), (2, "sep_conv3")]]
    assert arch.up == [[(0, "conv3"), (1, "conv3")], [(0, "max_pool3"), (1, "conv3")]]


def test_derive_cell_keep_one():
    alpha = torch.zeros(5, 3)
    beta = torch.tensor([0.0, 1.0, 0.0, 0.0, 2.0])
    cell = derive_cell(alpha, beta, ["conv3", "skip", "none"], nodes=2, keep_edges=1)
    assert cell == [[(1, "conv3")], [(2, "conv3")]]


@pytest.mark.parametrize("space,dims", [("thrifty", 2), ("thrifty3d", 3)])
def test_derive_json_build_round_trip(space, dims):
    net = tiny(space)
    with torch.no_grad():
        for p in net.arch_parameters():
            p.normal_()
    arch = net.derive()
    assert arch.space == "thrifty" and arch.spatial_dims == dims
    child = build_network(load_architecture(arch.to_json()))
    assert count_parameters(child) == net.param_count()
    assert not any(isinstance(m, MixedOp) for m in child.modules())
    assert not any("alpha" in n or "beta" in n for n, _ in child.named_parameters())


def test_default_derived_model_is_thrifty():
    """Default depth 4, C = 32: well under 1M parameters (the paper reports 0.61M)."""
    space = load_space("thrifty")
    assert (space.config.depth, space.config.width) == (4, 32)
    default = count_parameters(build_network(space.default_architecture()))
    assert default == space.describe()["default_derived_params"]
    assert 100_000 < default < 1_000_000
    for seed in range(5):
        arch = space.sample_architecture(seed=seed, in_channels=1, out_channels=2)
        assert count_parameters(build_network(arch)) < 1_000_000


@pytest.mark.parametrize("name", ["thrifty", "thrifty3d"])
def test_describe_and_sample(name):
    space = load_space(name)
    info = space.describe()
    c = space.config
    assert info["cells"] == c.depth * (c.depth + 1) // 2
    assert info["dn_cells"] + info["up_cells"] == info["cells"]
    # node 0: C(2,2) * 6^2, node 1: C(3,2) * 6^2 with the 6 non-none ops
    assert info["genotypes_per_cell_type"] == 36 * 3 * 36
    assert info["architectures_per_candidate"] == info["genotypes_per_cell_type"] ** 2
    assert len(info["wiring"]) == info["cells"]
    a, b = space.sample_architecture(seed=3), space.sample_architecture(seed=3)
    assert a == b and a.depth == c.depth and a.width == c.width
    archs = {space.sample_architecture(seed=s).to_json() for s in range(8)}
    assert len(archs) > 1
    for s in range(8):
        arch = space.sample_architecture(seed=s, in_channels=2, out_channels=3, width=8)
        assert load_architecture(arch.to_json()) == arch and arch.width == 8
        assert all(op != "none" for cell in (arch.dn, arch.up) for e in cell for _, op in e)


def test_width_must_divide_by_pc_k():
    space = load_space("thrifty")
    with pytest.raises(ValueError, match="pc_k"):
        space.build_fine_supernet({"depth": 2, "width": 6}, in_channels=1, out_channels=2)


def test_raynas_summary_shows_the_default_derived_model_is_thrifty(tmp_path, capsys):
    import json

    from raynas.cli.main import main

    arch = load_space("thrifty").default_architecture(in_channels=1, out_channels=2)
    path = arch.save(tmp_path / "ARCH.json")
    assert main(["summary", str(path), "--input-size", "64", "64", "--json"]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts["space"] == "thrifty"
    assert facts["params"] == count_parameters(build_network(arch)) < 1_000_000
