"""The autocast wrapper of the training steps (bf16 on CPU here; CUDA in gpu_check.sh)."""

from __future__ import annotations

import pytest
import torch
from engine_fakes import TinyNet, make_batches

from raynas.engine import Precision, make_loss, make_optimizer, train_epoch

CPU = torch.device("cpu")


@pytest.mark.parametrize(
    ("device", "amp", "dtype", "scaled"),
    [
        ("cpu", False, None, False),
        ("cpu", True, None, False),  # "mixed precision where it pays": not on CPU
        ("cpu", "bf16", torch.bfloat16, False),
        ("cpu", "fp16", torch.float16, False),  # a grad scaler only on CUDA
        ("cuda", False, None, False),
    ],
)
def test_resolve(device, amp, dtype, scaled):
    policy = Precision.resolve(torch.device(device), amp)
    assert policy.dtype == dtype and policy.scaled == scaled
    assert policy.enabled == (dtype is not None)


def test_resolve_rejects_unknown_values():
    for bad in ("yes", 1, "float8"):
        with pytest.raises(ValueError, match="amp must be one of"):
            Precision.resolve(CPU, bad)


def test_bf16_autocast_on_cpu_runs_the_step_in_bf16_and_trains():
    policy = Precision.resolve(CPU, "bf16")
    net = TinyNet(spatial_dims=2)
    x = torch.randn(2, 1, 16, 16)
    with policy.autocast():
        assert net(x).dtype == torch.bfloat16
    with Precision.resolve(CPU, False).autocast():
        assert net(x).dtype == torch.float32
    torch.manual_seed(0)
    net = TinyNet(spatial_dims=2)
    opt = make_optimizer(net.parameters(), name="adamw", lr=5e-2, weight_decay=0.0)
    batches = make_batches(n=2, batch_size=2, shape=(8, 8))  # CPU bf16 convs are slow
    losses = [
        train_epoch(net, batches, opt, make_loss(), device=CPU, amp="bf16").loss for _ in range(5)
    ]
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < 0.8 * losses[0], losses
    assert all(p.dtype == torch.float32 for p in net.parameters())  # weights stay float32


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_amp_true_is_bf16_where_supported_else_fp16_with_a_scaler():
    policy = Precision.resolve(torch.device("cuda"), True)
    if torch.cuda.is_bf16_supported():
        assert policy.dtype == torch.bfloat16 and not policy.scaled
    else:
        assert policy.dtype == torch.float16 and policy.scaled
