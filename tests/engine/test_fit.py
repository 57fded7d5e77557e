"""The per-epoch loop: callback, early stop, scheduler, resume, NaN with the epoch named."""

from __future__ import annotations

import pytest
import torch
from engine_fakes import NaNNet, TinyNet, make_batches

from raynas.engine import (
    EpochStats,
    EvalResult,
    NonFiniteLossError,
    fit,
    make_loss,
    make_optimizer,
    make_scheduler,
    train_epoch,
)

CPU = torch.device("cpu")


def _stats(epoch: int) -> EpochStats:
    return EpochStats(loss=1.0 / (epoch + 1), steps=2, seconds=0.01)


def test_callback_gets_metrics_every_epoch():
    opt = torch.optim.SGD(TinyNet().parameters(), lr=1.0)
    sched = make_scheduler(opt, name="poly", epochs=3)
    calls: list[tuple[int, dict]] = []
    history = fit(
        epochs=3,
        run_epoch=lambda e: (opt.step(), _stats(e))[1],
        validate=lambda e: EvalResult(dice=0.1 * e, per_class=[0.1 * e]),
        callback=lambda e, m: calls.append((e, m)),
        scheduler=sched,
    )
    assert [e for e, _ in calls] == [0, 1, 2] and history == [m for _, m in calls]
    first = calls[0][1]
    assert first["epoch"] == 0 and first["lr"] == 1.0 and first["train_loss"] == 1.0
    assert first["val_dice"] == 0.0 and "val_dice_1" in first
    assert calls[1][1]["lr"] == pytest.approx((1 - 1 / 3) ** 0.9)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.0)  # stepped after every epoch


def test_callback_returning_true_stops():
    ran: list[int] = []

    def run_epoch(epoch):
        ran.append(epoch)
        return _stats(epoch)

    history = fit(epochs=10, run_epoch=run_epoch, callback=lambda e, m: e == 1)
    assert ran == [0, 1] and len(history) == 2


def test_validate_every_and_last_epoch():
    validated: list[int] = []

    def validate(epoch):
        validated.append(epoch)
        return EvalResult(dice=0.5)

    fit(epochs=5, run_epoch=_stats, validate=validate, validate_every=2)
    assert validated == [1, 3, 4]


def test_resume_from_start_epoch():
    ran: list[int] = []
    fit(epochs=4, run_epoch=lambda e: ran.append(e) or _stats(e), start_epoch=2)
    assert ran == [2, 3]


def test_non_finite_loss_names_the_epoch():
    net = NaNNet()
    opt = make_optimizer(net.parameters(), name="sgd", lr=1e-2, weight_decay=0.0)
    batches = make_batches(n=1, batch_size=1, shape=(8, 8))
    calls: list[int] = []
    with pytest.raises(NonFiniteLossError, match="at epoch 0, step 0") as info:
        fit(
            epochs=3, run_epoch=lambda e: train_epoch(net, batches, opt, make_loss(), device=CPU),
            callback=lambda e, m: calls.append(e),
        )  # fmt: skip
    assert info.value.epoch == 0 and calls == []


def test_fit_trains_a_real_model():
    torch.manual_seed(0)
    net = TinyNet()
    opt = make_optimizer(net.parameters(), name="adamw", lr=2e-2, weight_decay=0.0)
    batches = make_batches(n=3, batch_size=2, shape=(16, 16))
    history = fit(
        epochs=5, run_epoch=lambda e: train_epoch(net, batches, opt, make_loss(), device=CPU),
        scheduler=make_scheduler(opt, name="cosine", epochs=5),
    )  # fmt: skip
    assert history[-1]["train_loss"] < history[0]["train_loss"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"epochs": 0}, "epochs"), ({"epochs": 2, "start_epoch": 3}, "start_epoch"),
     ({"epochs": 2, "validate_every": 0}, "validate_every")],
)  # fmt: skip
def test_fit_rejects(kwargs, match):
    with pytest.raises(ValueError, match=match):
        fit(run_epoch=_stats, **kwargs)
