"""U-Net / UNet++ of the UNet++ paper (exact parameter counts), nnU-Net-planned DynUNet."""

from __future__ import annotations

import pytest
import torch

from raynas.errors import ConfigError, UserError
from raynas.nets import (
    UNet,
    UNetPlusPlus,
    build_network,
    count_parameters,
    dynunet_plan,
    load_architecture,
    named_architecture,
    unet_architecture,
    unetpp_architecture,
)
from raynas.nets.baselines import plan_kernels_strides

torch.set_num_threads(2)

PAPER = [32, 64, 128, 256, 512]


def conv(c_in: int, c_out: int, kernel_volume: int) -> int:
    """Weights + bias of one convolution."""
    return c_in * c_out * kernel_volume + c_out


def block(c_in: int, c_out: int, dims: int) -> int:
    """Two 3^d convolutions with bias."""
    return conv(c_in, c_out, 3**dims) + conv(c_out, c_out, 3**dims)


def unet_params(f: list[int], *, dims: int = 2, c_in: int = 1, c_out: int = 1) -> int:
    enc = sum(block(c_in if i == 0 else f[i - 1], f[i], dims) for i in range(len(f)))
    dec = sum(
        conv(f[i + 1], f[i], 2**dims) + block(2 * f[i], f[i], dims) for i in range(len(f) - 1)
    )
    return enc + dec + conv(f[0], c_out, 1)


def unetpp_params(f: list[int], *, dims: int = 2, c_in: int = 1, c_out: int = 1) -> int:
    """Closed form: X[i][0] encoder; X[i][j] (j >= 1, i + j < L) = up conv + block((j+1) f_i)."""
    n = len(f)
    enc = sum(block(c_in if i == 0 else f[i - 1], f[i], dims) for i in range(n))
    nested = sum(
        conv(f[i + 1], f[i], 2**dims) + block((j + 1) * f[i], f[i], dims)
        for j in range(1, n)
        for i in range(n - j)
    )
    return enc + nested + conv(f[0], c_out, 1)


def test_unet_hand_count_is_the_published_one():
    # Encoder 9,568 + 55,424 + 221,440 + 885,248 + 3,539,968 = 4,711,648;
    # decoder 2,294,528 + 573,824 + 143,552 + 35,936 + head 33 = 3,047,873.
    assert unet_params(PAPER) == 4_711_648 + 3_047_873 == 7_759_521
    assert count_parameters(UNet()) == 7_759_521
    assert round(count_parameters(UNet()) / 1e6, 2) == 7.76


def test_unetpp_closed_form_count_rounds_to_904m():
    expected = unetpp_params(PAPER)
    assert expected == 9_041_601
    assert count_parameters(UNetPlusPlus()) == expected
    assert round(expected / 1e6, 2) == 9.04


@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("c_in,c_out", [(1, 1), (4, 3)])
@pytest.mark.parametrize("name", ["unet", "unetpp"])
def test_counts_match_closed_form_any_dims_and_channels(name, dims, c_in, c_out):
    f = [4, 8, 16, 32]
    cls, formula = (UNet, unet_params) if name == "unet" else (UNetPlusPlus, unetpp_params)
    net = cls(spatial_dims=dims, in_channels=c_in, out_channels=c_out, filters=f)
    assert count_parameters(net) == formula(f, dims=dims, c_in=c_in, c_out=c_out)


@pytest.mark.parametrize(
    "name,dims,size",
    [("unet", 2, (32, 32)), ("unet", 2, (30, 21)), ("unetpp", 2, (32, 32)),
     ("unet", 3, (16, 16, 16)), ("unetpp", 3, (16, 12, 10))],
)
def test_forward_backward_shapes(name, dims, size):
    factory = unet_architecture if name == "unet" else unetpp_architecture
    arch = factory(spatial_dims=dims, in_channels=2, out_channels=3, width=4)
    net = build_network(arch)
    x = torch.randn(2, 2, *size)
    y = net(x)
    assert y.shape == (2, 3, *size)
    y.square().mean().backward()
    assert all(p.grad is not None for p in net.parameters())


@pytest.mark.parametrize("name", ["unet", "unetpp"])
def test_architecture_json_round_trip(name):
    factory = unet_architecture if name == "unet" else unetpp_architecture
    arch = factory(spatial_dims=2, in_channels=1, out_channels=1)
    assert arch.filters == PAPER and arch.width == 32 and arch.space == name
    again = load_architecture(arch.to_json())
    assert again == arch
    expected = 7_759_521 if name == "unet" else 9_041_601
    assert count_parameters(build_network(again)) == expected


@pytest.mark.parametrize(
    "data,field",
    [
        ({"space": "unet", "spatial_dims": 2, "in_channels": 1, "out_channels": 1,
          "filters": [32]}, "filters"),
        ({"space": "unetpp", "spatial_dims": 2, "in_channels": 1, "out_channels": 1,
          "filters": [32, 64], "width": 16}, "width"),
        ({"space": "dynunet", "spatial_dims": 2, "in_channels": 1, "out_channels": 2,
          "filters": [8, 16], "kernels": [[3, 3], [3, 3]], "strides": [[2, 2], [2, 2]]},
         "strides"),
        ({"space": "dynunet", "spatial_dims": 3, "in_channels": 1, "out_channels": 2,
          "filters": [8, 16], "kernels": [[3, 3], [3, 3]], "strides": [[1, 1], [2, 2]]},
         "kernels"),
    ],
)
def test_invalid_baseline_architectures_name_the_field(data, field):
    with pytest.raises(ConfigError, match=field):
        load_architecture(data)


# --- DynUNet, planned the nnU-Net way --------------------------------------------------------

PLANS = [
    # anisotropic (e.g. prostate MRI): z has 3.75x the in-plane spacing -> kernel 1 and no
    # pooling on z at the top; once the in-plane spacing has doubled twice z is pooled too.
    ((0.8, 0.8, 3.0), (128, 128, 32),
     [[3, 3, 1], [3, 3, 3], [3, 3, 3], [3, 3, 3], [3, 3, 3], [3, 3, 3]],
     [[1, 1, 1], [2, 2, 1], [2, 2, 2], [2, 2, 2], [2, 2, 2], [2, 2, 1]]),
    # isotropic: halve everything while the axis has >= 8 voxels (bottleneck 6^3)
    ((1.0, 1.0, 1.0), (96, 96, 96),
     [[3, 3, 3]] * 5,
     [[1, 1, 1], [2, 2, 2], [2, 2, 2], [2, 2, 2], [2, 2, 2]]),
    # very anisotropic: kernel 1 on z for two levels
    ((0.5, 0.5, 2.5), (64, 64, 16),
     [[3, 3, 1], [3, 3, 1], [3, 3, 3], [3, 3, 3], [3, 3, 3]],
     [[1, 1, 1], [2, 2, 1], [2, 2, 1], [2, 2, 2], [2, 2, 2]]),
    # 2D isotropic
    ((1.0, 1.0), (32, 32), [[3, 3]] * 4, [[1, 1], [2, 2], [2, 2], [2, 2]]),
]


@pytest.mark.parametrize("spacing,patch,kernels,strides", PLANS)
def test_plan_kernels_strides(spacing, patch, kernels, strides):
    assert plan_kernels_strides(spacing, patch) == (kernels, strides)


def test_dynunet_plan_widths_and_build():
    arch = dynunet_plan((0.8, 0.8, 3.0), (128, 128, 32), in_channels=2, out_channels=3)
    assert arch.space == "dynunet" and arch.spatial_dims == 3
    assert arch.filters == [32, 64, 128, 256, 320, 320]
    assert load_architecture(arch.to_json()) == arch
    arch2d = dynunet_plan((1.0, 1.0), (32, 32), in_channels=1, out_channels=2)
    assert arch2d.filters == [32, 64, 128, 256]
    net = build_network(arch2d)
    x = torch.randn(2, 1, 32, 32)
    y = net(x)
    assert y.shape == (2, 2, 32, 32)
    y.mean().backward()


def test_dynunet_anisotropic_3d_forward():
    arch = dynunet_plan((1.0, 1.0, 3.0), (32, 32, 8), in_channels=1, out_channels=2,
                        base_width=4)
    assert arch.kernels[0] == [3, 3, 1] and arch.strides[1] == [2, 2, 1]
    net = build_network(arch).eval()
    with torch.no_grad():
        assert net(torch.randn(1, 1, 32, 32, 8)).shape == (1, 2, 32, 32, 8)


def test_dynunet_plan_rejects_bad_input():
    with pytest.raises(ValueError, match="spacing"):
        plan_kernels_strides((1.0, 1.0, 1.0), (32, 32))


@pytest.mark.parametrize("name", ["unet", "unetpp", "dynunet"])
@pytest.mark.parametrize("dims", [2, 3])
def test_named_models(name, dims):
    arch = named_architecture(name, spatial_dims=dims, in_channels=3, out_channels=4)
    assert (arch.space, arch.spatial_dims, arch.in_channels, arch.out_channels) == (
        name, dims, 3, 4)


def test_unknown_named_model():
    with pytest.raises(UserError, match="unetpp"):
        named_architecture("vnet")


@pytest.mark.parametrize(
    "args,params",
    [(["unet", "--dims", "2", "--classes", "1", "--input-size", "64", "64"], 7_759_521),
     (["unetpp", "--dims", "2", "--classes", "1", "--input-size", "64", "64"], 9_041_601)],
)
def test_raynas_summary_of_baselines(args, params, capsys):
    import json

    from raynas.cli.main import main

    assert main(["summary", *args, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["params"] == params


def test_raynas_summary_plans_dynunet_for_the_input_size(capsys):
    import json

    from raynas.cli.main import main

    assert main(["summary", "dynunet", "--input-size", "64", "64", "16", "--json"]) == 0
    facts = json.loads(capsys.readouterr().out)
    expected = dynunet_plan((1.0, 1.0, 1.0), (64, 64, 16), in_channels=1, out_channels=2)
    assert facts["space"] == "dynunet"
    assert facts["params"] == count_parameters(build_network(expected))
