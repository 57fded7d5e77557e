"""The autocast wrapper of the training steps (bf16 on CPU here; CUDA in gpu_check.sh)."""

from __future__ import annotations

import pytest
import torch
from engine_fakes import TinyNet, make_batches

from raynas.engine import Precision, make_loss, make_optimizer, train_epoch
from raynas.engine.amp import grad_scaler

CPU = torch.device("cpu")


@pytest.mark.parametrize(
    ("device", "amp", "dtype", "scaled", "said"),
    [
        ("cpu", "off", None, False, "float32"),
        ("cpu", "auto", None, False, "float32"),  # "mixed precision where it pays": not on CPU
        ("cpu", "bf16", torch.bfloat16, False, "bf16 autocast"),
        ("cpu", "fp16", torch.float16, True, "fp16 autocast + grad scaler"),  # CPU scaler too
        ("cuda", "off", None, False, "float32"),
        ("cuda", "fp16", torch.float16, True, "fp16 autocast + grad scaler"),
        # the old booleans: true = auto, false = off
        ("cpu", True, None, False, "float32"),
        ("cpu", False, None, False, "float32"),
        ("cuda", False, None, False, "float32"),
    ],
)
def test_resolve(device, amp, dtype, scaled, said):
    policy = Precision.resolve(torch.device(device), amp)
    assert policy.dtype == dtype and policy.scaled == scaled
    assert policy.enabled == (dtype is not None)
    assert policy.describe() == said
    assert policy.setting == {True: "auto", False: "off"}.get(amp, amp)


def test_resolve_rejects_unknown_values():
    for bad in ("yes", 1, "float8", None):
        with pytest.raises(ValueError, match="amp must be one of auto, bf16, fp16, off"):
            Precision.resolve(CPU, bad)
    with pytest.raises(ValueError, match="for cpu used on cuda"):
        Precision.resolve(torch.device("cuda"), Precision.resolve(CPU, "bf16"))


def test_fp16_on_cpu_steps_through_one_grad_scaler_per_optimizer():
    torch.manual_seed(0)
    net = TinyNet(spatial_dims=2)
    opt = make_optimizer(net.parameters(), name="adamw", lr=5e-2, weight_decay=0.0)
    policy = Precision.resolve(CPU, "fp16")
    scaler = grad_scaler(opt, policy)
    assert scaler is not None and scaler.is_enabled() and grad_scaler(opt, policy) is scaler
    assert grad_scaler(opt, Precision.resolve(CPU, "bf16")) is None
    scaler.load_state_dict({**scaler.state_dict(), "scale": 8.0})  # the loops use this one
    batches = make_batches(n=2, batch_size=2, shape=(8, 8))
    losses = [train_epoch(net, batches, opt, make_loss(), device=CPU, amp=policy).loss
              for _ in range(2)]
    assert all(torch.isfinite(torch.tensor(losses)))
    assert grad_scaler(opt, policy) is scaler and scaler.get_scale() == 8.0  # < 2000 steps


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
def test_cuda_amp_auto_is_bf16_where_supported_else_fp16_with_a_scaler():
    policy = Precision.resolve(torch.device("cuda"), "auto")
    if torch.cuda.is_bf16_supported():
        assert policy.dtype == torch.bfloat16 and not policy.scaled
    else:
        assert policy.dtype == torch.float16 and policy.scaled
