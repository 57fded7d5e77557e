"""Architectures: JSON round trip, validation errors, build, weights save/load."""

from __future__ import annotations

import json

import pytest
import torch

from raynas.errors import ConfigError
from raynas.nets import (
    C2FArchitecture,
    architecture_spaces,
    build_network,
    count_parameters,
    load_architecture,
    model_cost,
)

torch.set_num_threads(2)

GOOD = {
    "space": "c2f", "schema_version": 1, "spatial_dims": 3, "in_channels": 1, "out_channels": 3,
    "width": 4, "levels": 3, "topology": "0-1-2-1-0",
    "ops": [["conv3"], ["p3d"], ["conv2d_in_3d"], ["conv3", "skip"], ["skip", "conv3"]],
}


def test_round_trip_file_dict_json(tmp_path):
    arch = load_architecture(GOOD)
    path = arch.save(tmp_path / "ARCH.json")
    assert load_architecture(path) == arch
    assert load_architecture(str(path)) == arch
    assert load_architecture(arch.to_json()) == arch
    assert json.loads(arch.to_json())["topology"] == "0-1-2-1-0"
    assert "c2f" in architecture_spaces()


def test_search_width_is_optional_recorded_and_backward_compatible():
    old = load_architecture(GOOD)  # a file written before search_width existed
    assert old.search_width is None and "search_width" not in old.to_dict()
    arch = load_architecture({**GOOD, "width": 16, "search_width": 4})
    assert (arch.width, arch.search_width) == (16, 4)
    assert load_architecture(arch.to_json()) == arch
    assert json.loads(arch.to_json())["search_width"] == 4
    # the network is built at the width it is trained at
    assert count_parameters(build_network(arch)) == count_parameters(
        build_network({**GOOD, "width": 16}))


def test_old_plateau_architecture_is_named_clearly():
    plateau = {**GOOD, "topology": "0-1-2-2-1-0",
               "ops": [["conv3"], ["p3d"], ["conv3"], ["conv3", "skip"], ["skip", "conv3"],
                       ["conv3", "conv3"]]}
    with pytest.raises(ConfigError, match="bottleneck cells"):
        load_architecture(plateau)


@pytest.mark.parametrize("change,field", [
    ({"ops": [["conv3"], ["p3d"], ["conv7"], ["conv3", "skip"], ["skip", "conv3"]]}, "ops"),
    ({"ops": [["conv3"], ["p3d"], ["none"], ["conv3", "skip"], ["skip", "conv3"]]}, "ops"),
    ({"ops": [["conv3"], ["p3d"], ["conv3"], ["conv3"], ["skip", "conv3"]]}, "ops"),
    ({"topology": "0-2-1-0"}, "topology"),
    ({"topology": "0-1-0-1-0"}, "topology"),
    ({"topology": "0-1-2-1-1"}, "topology"),
    ({"topology": "0-1-3-1-0"}, "topology"),
    ({"width": 4096}, "width"),
    ({"width": 0}, "width"),
    ({"search_width": 0}, "search_width"),
    ({"search_width": "wide"}, "search_width"),
    ({"space": "nope"}, "space"),
    ({"spatial_dims": 2}, "ops"),  # p3d does not exist in 2D
    ({"extra": 1}, "extra"),
])
def test_invalid_architecture_names_file_and_field(tmp_path, change, field):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({**GOOD, **change}))
    with pytest.raises(ConfigError) as info:
        load_architecture(path)
    msg = str(info.value)
    assert str(path) in msg and field in msg and "\n" not in msg


def test_not_json_is_a_config_error(tmp_path):
    path = tmp_path / "x.json"
    path.write_text("{nope")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_architecture(path)


@pytest.mark.parametrize("dims,ops", [
    (3, GOOD["ops"]),
    (2, [["conv3"], ["sep_conv3"], ["dil_conv3"], ["conv3", "skip"], ["max_pool3", "avg_pool3"]]),
])
def test_build_forward_backward_and_weights_only_round_trip(tmp_path, dims, ops):
    arch = C2FArchitecture(**{**GOOD, "spatial_dims": dims, "ops": ops})
    net = build_network(arch)
    x = torch.randn(2, 1, *(16,) * dims)
    y = net(x)
    assert y.shape == (2, 3, *(16,) * dims)
    y.mean().backward()
    assert all(p.grad is not None for p in net.parameters())
    torch.save(net.state_dict(), tmp_path / "w.pt")
    other = build_network(load_architecture(arch.to_json()))
    other.load_state_dict(torch.load(tmp_path / "w.pt", weights_only=True))
    net.eval()
    other.eval()
    assert torch.allclose(net(x), other(x))
    assert count_parameters(other) == count_parameters(net)


def test_model_cost_meta_equals_cpu():
    net = build_network(GOOD)
    meta = model_cost(net, (16, 16, 16))
    cpu = model_cost(net, (16, 16, 16), device="cpu")
    assert meta == cpu and meta.params == count_parameters(net) and meta.flops > 0
