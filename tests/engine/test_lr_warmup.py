"""The retrain recipe's learning-rate warm-up: linear over ``warmup_epochs``, then the schedule
over the remaining epochs; the preset field ``retrain.lr_warmup_epochs`` checked; resumable."""

from __future__ import annotations

import io
import math

import pytest
import torch
from engine_fakes import TinyNet

from raynas.config import load_preset
from raynas.engine import make_scheduler
from raynas.errors import ConfigError


def current_lr(optimizer: torch.optim.Optimizer) -> float:
    """The learning rate of the optimiser's first parameter group."""
    return float(optimizer.param_groups[0]["lr"])


def _lrs(name: str, epochs: int, warmup: int) -> list[float]:
    """The lr each epoch trains at (and the one after the last)."""
    opt = torch.optim.SGD(TinyNet().parameters(), lr=1.0)
    sched = make_scheduler(opt, name=name, epochs=epochs, warmup_epochs=warmup)
    out = []
    for _ in range(epochs):
        out.append(current_lr(opt))
        opt.step()
        sched.step()
    return [*out, current_lr(opt)]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("cosine", [1 / 3, 2 / 3, 1.0, 0.5 * (1 + math.cos(math.pi / 3)),
                    0.5 * (1 + math.cos(2 * math.pi / 3)), 0.0]),
        ("poly", [1 / 3, 2 / 3, 1.0, (2 / 3) ** 0.9, (1 / 3) ** 0.9, 0.0]),
        ("constant", [1 / 3, 2 / 3, 1.0, 1.0, 1.0, 1.0]),
    ],
)  # fmt: skip
def test_warmup_then_schedule(name: str, expected: list[float]) -> None:
    assert _lrs(name, 5, 2) == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("name", ["cosine", "poly", "constant"])
def test_no_warmup_is_the_plain_schedule(name: str) -> None:
    opt = torch.optim.SGD(TinyNet().parameters(), lr=1.0)
    plain = make_scheduler(opt, name=name, epochs=6)
    assert type(plain) is type(make_scheduler(opt, name=name, epochs=6, warmup_epochs=0))
    lrs = _lrs(name, 6, 0)
    assert lrs[0] == 1.0 and (name == "constant" or lrs[-1] == pytest.approx(0.0, abs=1e-12))


@pytest.mark.parametrize("warmup", [-1, 5, 6, True, 1.5])
def test_warmup_out_of_range_is_refused(warmup: object) -> None:
    opt = torch.optim.SGD(TinyNet().parameters(), lr=1.0)
    with pytest.raises(ValueError, match=r"warmup_epochs must be an integer in \[0, 5\)"):
        make_scheduler(opt, name="cosine", epochs=5, warmup_epochs=warmup)  # type: ignore[arg-type]


def test_warmup_resumes_from_a_checkpoint() -> None:
    """The scheduler's state goes through ``torch.load(weights_only=True)`` and continues."""
    opt = torch.optim.SGD(TinyNet().parameters(), lr=1.0)
    sched = make_scheduler(opt, name="cosine", epochs=8, warmup_epochs=3)
    for _ in range(2):
        opt.step()
        sched.step()
    buf = io.BytesIO()
    torch.save({"opt": opt.state_dict(), "sched": sched.state_dict()}, buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    opt2 = torch.optim.SGD(TinyNet().parameters(), lr=1.0)
    sched2 = make_scheduler(opt2, name="cosine", epochs=8, warmup_epochs=3)
    opt2.load_state_dict(state["opt"])
    sched2.load_state_dict(state["sched"])
    for _ in range(3):
        opt.step(), sched.step(), opt2.step(), sched2.step()
        assert current_lr(opt2) == pytest.approx(current_lr(opt))


def test_preset_field_and_the_cap_for_short_retrains() -> None:
    from raynas.stages.retrain import warmup_epochs

    assert load_preset("smoke").retrain.lr_warmup_epochs == 5
    assert load_preset("default").retrain.lr_warmup_epochs == 0
    with pytest.raises(ConfigError, match="retrain.lr_warmup_epochs"):
        load_preset("smoke", ["retrain.lr_warmup_epochs=-1"])
    short = load_preset("smoke", ["retrain.epochs=2"]).retrain  # --epochs 2 stays valid
    assert warmup_epochs(short.lr_warmup_epochs, short.epochs) == 1
    assert [warmup_epochs(5, e) for e in (1, 2, 6, 40)] == [0, 1, 5, 5]
    assert warmup_epochs(0, 40) == 0
