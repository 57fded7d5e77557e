"""Loss, optimisers, schedules and the disjointness check."""

from __future__ import annotations

import math

import pytest
import torch
from engine_fakes import FakeSupernet, TinyNet

from raynas.engine import (
    check_disjoint,
    make_arch_optimizer,
    make_loss,
    make_optimizer,
    make_scheduler,
)


def current_lr(optimizer: torch.optim.Optimizer) -> float:
    """The learning rate of the optimiser's first parameter group."""
    return float(optimizer.param_groups[0]["lr"])


@pytest.mark.parametrize(
    ("name", "cls", "extra"),
    [
        ("sgd", torch.optim.SGD, {"momentum": 0.99, "nesterov": True}),
        ("adamw", torch.optim.AdamW, {}),
    ],
)
def test_make_optimizer(name, cls, extra):
    opt = make_optimizer(TinyNet().parameters(), name=name, lr=0.02, weight_decay=1e-4)
    assert isinstance(opt, cls)
    group = opt.param_groups[0]
    assert group["lr"] == 0.02 and group["weight_decay"] == 1e-4
    for key, value in extra.items():
        assert group[key] == value


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"name": "rmsprop", "lr": 0.1, "weight_decay": 0.0}, "sgd, adamw"),
        ({"name": "sgd", "lr": 0.0, "weight_decay": 0.0}, "lr"),
        ({"name": "sgd", "lr": 0.1, "weight_decay": -1.0}, "weight_decay"),
    ],
)
def test_make_optimizer_rejects(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_optimizer(TinyNet().parameters(), **kwargs)


def test_make_optimizer_rejects_no_params():
    with pytest.raises(ValueError, match="no parameters"):
        make_optimizer([], name="sgd", lr=0.1, weight_decay=0.0)


def test_arch_optimizer_preset_values():
    net = FakeSupernet()
    opt = make_arch_optimizer(net.arch_parameters(), 6e-4, (0.5, 0.999), 1e-3)
    assert isinstance(opt, torch.optim.Adam)
    group = opt.param_groups[0]
    assert group["lr"] == 6e-4 and tuple(group["betas"]) == (0.5, 0.999)
    assert group["weight_decay"] == 1e-3
    with pytest.raises(ValueError, match="betas"):
        make_arch_optimizer(net.arch_parameters(), 6e-4, (1.5, 0.999), 1e-3)


def _lrs(name: str, epochs: int, lr: float = 1.0) -> list[float]:
    opt = torch.optim.SGD(TinyNet().parameters(), lr=lr)
    sched = make_scheduler(opt, name=name, epochs=epochs)
    out = []
    for _ in range(epochs):
        out.append(current_lr(opt))
        opt.step()
        sched.step()
    out.append(current_lr(opt))
    return out


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("constant", [1.0] * 5),
        (
            "cosine",
            [1.0, 0.5 * (1 + math.cos(math.pi / 4)), 0.5, 0.5 * (1 - math.cos(math.pi / 4)), 0.0],
        ),
        ("poly", [(1 - e / 4) ** 0.9 for e in range(5)]),
    ],
)
def test_scheduler_shapes(name, expected):
    assert _lrs(name, 4) == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("name", ["cosine", "poly"])
def test_decaying_schedules_are_monotone(name):
    lrs = _lrs(name, 20)
    assert all(a >= b for a, b in zip(lrs, lrs[1:], strict=False))
    assert lrs[0] == 1.0 and lrs[-1] == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"name": "step", "epochs": 3}, "cosine, poly"), ({"name": "poly", "epochs": 0}, "epochs")],
)
def test_scheduler_rejects(kwargs, match):
    opt = torch.optim.SGD(TinyNet().parameters(), lr=0.1)
    with pytest.raises(ValueError, match=match):
        make_scheduler(opt, **kwargs)


def test_disjoint_optimisers_pass():
    net = FakeSupernet()
    w = make_optimizer(net.weight_parameters(), name="sgd", lr=0.1, weight_decay=0.0)
    a = make_arch_optimizer(net.arch_parameters())
    check_disjoint(w, a, net.arch_parameters())


def test_shared_parameter_is_rejected():
    net = FakeSupernet()
    w = make_optimizer(net.parameters(), name="sgd", lr=0.1, weight_decay=0.0)  # includes alpha
    a = make_arch_optimizer(net.arch_parameters())
    with pytest.raises(ValueError, match="share 1 parameter"):
        check_disjoint(w, a)


def test_weights_optimizer_holding_alpha_is_rejected():
    net = FakeSupernet()
    w = make_optimizer(net.parameters(), name="sgd", lr=0.1, weight_decay=0.0)
    a = make_arch_optimizer([torch.nn.Parameter(torch.zeros(1))])
    with pytest.raises(ValueError, match="architecture parameter"):
        check_disjoint(w, a, net.arch_parameters())


@pytest.mark.parametrize("label_dtype", [torch.long, torch.float32, torch.uint8])
def test_loss_accepts_integer_labels(label_dtype):
    loss_fn = make_loss()
    label = torch.randint(0, 3, (2, 1, 8, 8)).to(label_dtype)
    perfect = torch.nn.functional.one_hot(label[:, 0].long(), 3).movedim(-1, 1).float() * 20
    wrong = torch.roll(perfect, 1, dims=1)
    assert float(loss_fn(perfect, label)) < 0.01 < float(loss_fn(wrong, label))
