"""U-Net / UNet++ start as the paper's Keras code does (he_normal convolutions, glorot_uniform
transposed convolutions, zero biases), so their logits depend on the input at step 0."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from raynas.nets import UNet, UNetPlusPlus

torch.set_num_threads(2)

NETS = {"unet": UNet, "unetpp": UNetPlusPlus}
FILTERS = (8, 16, 32, 64, 128)  # the smoke preset's retrain width 8, five levels


@pytest.mark.parametrize("name", list(NETS))
def test_convolutions_start_with_keras_initialisers(name: str) -> None:
    torch.manual_seed(0)
    net = NETS[name](spatial_dims=3, in_channels=1, out_channels=3, filters=FILTERS)
    convs = [m for m in net.modules() if type(m) is nn.Conv3d and m.weight[0].numel() >= 200]
    for m in convs:
        fan_in = m.weight[0].numel()
        assert float(m.weight.var()) * fan_in == pytest.approx(2.0, rel=0.2)  # He: 2 / fan_in
        assert bool((m.bias == 0).all())
    for m in (m for m in net.modules() if isinstance(m, nn.ConvTranspose3d)):
        rf = m.weight[0, 0].numel()
        limit = (6.0 / (rf * (m.in_channels + m.out_channels))) ** 0.5  # Glorot uniform
        assert float(m.weight.abs().max()) <= limit and bool((m.bias == 0).all())


@pytest.mark.parametrize("name", list(NETS))
def test_initial_logits_follow_the_input(name: str) -> None:
    """With PyTorch's default init the logits of the 5-level 3D net varied ~0.006 across
    voxels (a near-constant: the all-background solution it never left); with He ~0.5."""
    torch.manual_seed(0)
    net = NETS[name](spatial_dims=3, in_channels=1, out_channels=3, filters=FILTERS)
    with torch.no_grad():
        y = net(torch.randn(2, 1, 32, 32, 16))
    spread = (y - y.mean(dim=(2, 3, 4), keepdim=True)).std()
    assert float(spread) > 0.1
