"""Topology rules, canonical strings and U-Net skips."""

from __future__ import annotations

import pytest

from raynas.nets import (
    check_topology,
    decoder_skips,
    edges_per_cell,
    format_topology,
    parse_topology,
    topology_errors,
)


@pytest.mark.parametrize("text,skips", [
    ("0-1-2-1-0", {3: 1, 4: 0}),
    ("1-1-0", {2: -1}),  # cell 1 sits in the bottleneck
    ("0-1-1-2-2-1-1-0", {5: 2, 6: 2, 7: 0}),  # cells 3, 4: the bottleneck
    ("0-0-1-0", {3: 1}),
    ("0-1-2-2-2-1-0", {5: 1, 6: 0}),
    ("0-1-1-0", {3: 0}),
    ("0-0-0", {}),  # never leaves level 0: all bottleneck
])
def test_decoder_skips_take_latest_encoder_output(text, skips):
    t = check_topology(text, levels=4)
    assert decoder_skips(t) == skips
    assert edges_per_cell(t) == [2 if i in skips else 1 for i in range(len(t))]
    assert format_topology(parse_topology(text)) == text


@pytest.mark.parametrize("text,rule", [
    ("2-1-0", "first cell"),
    ("0-2-1-0", "at most one level"),
    ("0-1-1", "last cell"),
    ("0-1-0-1-0", "U-shaped"),
    ("0-1-2-3-2-1-0", "levels must lie"),
    ("0-0-0", "min_depth"),
])
def test_broken_rules_are_named(text, rule):
    errs = topology_errors(parse_topology(text), levels=3, min_depth=1)
    assert any(rule in e for e in errs)
    with pytest.raises(ValueError, match=rule):
        check_topology(text, levels=3, min_depth=1)


@pytest.mark.parametrize("space", ["c2f", "c2f_small"])
def test_no_decoder_cell_gets_its_own_input_as_skip(space):
    """A decoder cell's skip is an encoder output of its level, never the tensor it also gets as
    its previous input (which a plateau at the deepest level used to give it)."""
    from raynas.spaces import load_space

    topologies = load_space(space).topologies
    plateaus = 0
    for t in topologies:
        deepest = max(t)
        plateaus += t.count(deepest) > 1
        for i, src in decoder_skips(t).items():
            assert src != i - 1, (format_topology(t), i)
            assert src == -1 or t[src] == t[i]  # an output of the cell's own level
            assert t[i] < deepest
    assert plateaus > 0  # the spaces do have plateau topologies


@pytest.mark.parametrize("text", ["0-1-2-2-2-1-0", "0-1-1-0", "1-1-1-0", "0-1-2-1-0"])
def test_derived_plateau_net_never_feeds_a_cell_the_same_tensor_twice(text):
    import torch

    from raynas.nets import C2FArchitecture, build_network

    t = parse_topology(text)
    ops = [["conv3"] * n for n in edges_per_cell(t)]
    net = build_network(C2FArchitecture(spatial_dims=2, in_channels=1, out_channels=2, width=4,
                                        levels=3, topology=text, ops=ops))
    seen: list[tuple[int, bool]] = []
    for key, cell in net.cells.items():
        def hook(module, args, key=key):
            prev, prev_level, skip = args[0], args[1], args[2]
            h = module.adapt[str(prev_level)](prev)
            seen.append((int(key.split("_")[0]), skip is not None and torch.equal(h, skip)))
        cell.register_forward_pre_hook(hook)
    net.eval()
    with torch.no_grad():
        net(torch.randn(1, 1, 16, 16))
    assert len(seen) == len(t) and not any(same for _, same in seen)
