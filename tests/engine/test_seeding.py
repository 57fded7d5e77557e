"""Seeding determinism and device resolution."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from engine_fakes import TinyNet, make_batches

from raynas.engine import make_loss, make_optimizer, resolve_device, seed_everything, train_epoch
from raynas.errors import UserError


def _train(seed: int) -> dict[str, torch.Tensor]:
    seed_everything(seed)
    net = TinyNet()
    opt = make_optimizer(net.parameters(), name="adamw", lr=1e-2, weight_decay=0.0)
    batches = make_batches(n=3, batch_size=2, shape=(16, 16), seed=seed)
    train_epoch(net, batches, opt, make_loss(), device=torch.device("cpu"))
    return {k: v.clone() for k, v in net.state_dict().items()}


def test_same_seed_same_weights():
    a, b = _train(3), _train(3)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_different_seed_different_weights():
    a, b = _train(3), _train(4)
    assert not all(torch.equal(a[k], b[k]) for k in a)


def test_seed_everything_seeds_python_numpy_torch():
    seed_everything(11)
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    seed_everything(11)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == first


def test_deterministic_flag_sets_cudnn_but_not_global_algorithms():
    before = torch.are_deterministic_algorithms_enabled()
    saved = torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark
    try:
        seed_everything(0, deterministic=True)
        assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
        assert torch.are_deterministic_algorithms_enabled() == before
    finally:
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved


@pytest.mark.parametrize("bad", [-1, 1.5, "0", True])
def test_seed_rejects(bad):
    with pytest.raises(ValueError, match="seed"):
        seed_everything(bad)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("cpu", "cpu"),
        ("auto", "cuda" if torch.cuda.is_available() else "cpu"),
        (torch.device("cpu"), "cpu"),
    ],
)
def test_resolve_device(name, expected):
    assert resolve_device(name).type == expected


def test_resolve_device_rejects_unknown():
    with pytest.raises(ValueError, match="auto, cpu, cuda"):
        resolve_device("tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_resolve_cuda_without_cuda_is_a_user_error():
    with pytest.raises(UserError, match="CUDA is not available"):
        resolve_device("cuda")
