"""Loss, optimisers and learning-rate schedules, built from preset values.

Choices, written down once:

* Loss: MONAI ``DiceCELoss(to_onehot_y=True, softmax=True)`` (Dice + cross-entropy, as nnU-Net
  and C2FNAS use), on logits ``(B, K, *spatial)`` and integer labels ``(B, 1, *spatial)``.
* ``sgd``: momentum 0.99 with Nesterov, as nnU-Net (its default lr 0.01 is also our preset's).
  ``adamw``: torch defaults (betas 0.9, 0.999).
* Architecture optimiser (PC-DARTS): Adam, by default lr 6e-4, betas (0.5, 0.999), weight decay
  1e-3; it must never share a parameter with the weights optimiser (``check_disjoint``).
* Schedules are stepped once per epoch: ``cosine`` anneals to 0 at ``epochs``, ``poly`` is
  nnU-Net's ``(1 - epoch / epochs) ** 0.9``, ``constant`` keeps the base lr; an optional linear
  warm-up of ``warmup_epochs`` comes first (the retrain stage's ``retrain.lr_warmup_epochs``).

Example:
    >>> import torch
    >>> net = torch.nn.Conv2d(1, 2, 3)
    >>> opt = make_optimizer(net.parameters(), name="sgd", lr=0.01, weight_decay=3e-5)
    >>> sched = make_scheduler(opt, name="poly", epochs=10)
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR, LRScheduler

__all__ = [
    "OPTIMIZERS",
    "SCHEDULES",
    "SGD_MOMENTUM",
    "POLY_EXPONENT",
    "make_loss",
    "make_optimizer",
    "make_arch_optimizer",
    "make_scheduler",
    "warmup_factor",
    "check_disjoint",
]

OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("cosine", "poly", "constant")
SGD_MOMENTUM = 0.99
POLY_EXPONENT = 0.9


def make_loss() -> nn.Module:
    """Dice + cross-entropy on logits and integer labels (MONAI ``DiceCELoss``)."""
    from monai.losses import DiceCELoss

    return DiceCELoss(to_onehot_y=True, softmax=True)


def _check_rates(lr: float, weight_decay: float) -> None:
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr!r}")
    if not weight_decay >= 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay!r}")


def make_optimizer(
    params: Iterable[nn.Parameter] | Iterable[dict],
    *,
    name: str,
    lr: float,
    weight_decay: float,
    momentum: float = SGD_MOMENTUM,
) -> torch.optim.Optimizer:
    """The weights optimiser: ``"sgd"`` (Nesterov, momentum 0.99) or ``"adamw"``.

    Raises:
        ValueError: unknown name (lists the valid ones), lr <= 0, weight_decay < 0, or no params.
    """
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {name!r}")
    _check_rates(lr, weight_decay)
    params = list(params)
    if not params:
        raise ValueError("make_optimizer: got no parameters to optimise")
    if name == "sgd":
        return torch.optim.SGD(
            params, lr=lr, momentum=momentum, nesterov=momentum > 0, weight_decay=weight_decay
        )
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)


def make_arch_optimizer(
    params: Iterable[nn.Parameter],
    lr: float = 6e-4,
    betas: tuple[float, float] = (0.5, 0.999),
    weight_decay: float = 1e-3,
) -> torch.optim.Adam:
    """PC-DARTS architecture optimiser (Adam) over alpha/beta; pass the preset's ``fine.arch_*``.

    Raises:
        ValueError: lr <= 0, weight_decay < 0, betas outside [0, 1), or no params.
    """
    _check_rates(lr, weight_decay)
    if len(betas) != 2 or not all(0 <= b < 1 for b in betas):
        raise ValueError(f"betas must be two values in [0, 1), got {betas!r}")
    params = list(params)
    if not params:
        raise ValueError("make_arch_optimizer: got no architecture parameters")
    return torch.optim.Adam(params, lr=lr, betas=tuple(betas), weight_decay=weight_decay)


def _factor(name: str, done: float) -> float:
    """The schedule's lr factor after ``done`` (0..1) of its epochs."""
    if name == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * done))
    if name == "poly":
        return max(0.0, 1.0 - done) ** POLY_EXPONENT
    return 1.0


def warmup_factor(epoch: int, *, name: str, epochs: int, warmup_epochs: int) -> float:
    """The lr factor epoch ``epoch`` (from 0) trains at: ``(epoch + 1) / (warmup_epochs + 1)``
    during the warm-up, then ``name`` over the remaining ``epochs - warmup_epochs`` epochs.

    Example:
        >>> [round(warmup_factor(e, name="cosine", epochs=6, warmup_epochs=2), 2)
        ...  for e in range(6)]
        [0.33, 0.67, 1.0, 0.85, 0.5, 0.15]
    """
    if epoch < warmup_epochs:
        return (epoch + 1) / (warmup_epochs + 1)
    return _factor(name, (epoch - warmup_epochs) / (epochs - warmup_epochs))


def make_scheduler(
    optimizer: torch.optim.Optimizer, *, name: str, epochs: int, warmup_epochs: int = 0
) -> LRScheduler:
    """A per-epoch schedule: call ``scheduler.step()`` once after each epoch. With
    ``warmup_epochs`` W > 0 the lr first rises linearly (``lr / (W + 1)``, ``2 lr / (W + 1)``,
    ...; :func:`warmup_factor`), then follows ``name`` over the other ``epochs - W`` epochs.

    Raises:
        ValueError: unknown name (lists the valid ones), ``epochs < 1`` or a warm-up that is
            negative or not shorter than ``epochs``.
    """
    if name not in SCHEDULES:
        raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got {name!r}")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    if isinstance(warmup_epochs, bool) or not isinstance(warmup_epochs, int) or not (
        0 <= warmup_epochs < epochs
    ):
        raise ValueError(
            f"warmup_epochs must be an integer in [0, {epochs}), got {warmup_epochs!r}"
        )
    if warmup_epochs:
        return LambdaLR(optimizer, lambda e: warmup_factor(
            e, name=name, epochs=epochs, warmup_epochs=warmup_epochs))
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs, eta_min=0.0)
    if name == "poly":
        return LambdaLR(optimizer, lambda e: max(0.0, 1.0 - e / epochs) ** POLY_EXPONENT)
    return LambdaLR(optimizer, lambda e: 1.0)


def _param_ids(optimizer: torch.optim.Optimizer) -> set[int]:
    return {id(p) for group in optimizer.param_groups for p in group["params"]}


def check_disjoint(
    w_optimizer: torch.optim.Optimizer,
    a_optimizer: torch.optim.Optimizer,
    arch_parameters: Iterable[nn.Parameter] = (),
) -> None:
    """Raises ``ValueError`` if the two optimisers share a parameter, or if the weights optimiser
    holds any of ``arch_parameters`` (the supernet's alpha/beta)."""
    shared = _param_ids(w_optimizer) & _param_ids(a_optimizer)
    if shared:
        raise ValueError(
            f"the weights and architecture optimisers share {len(shared)} parameter(s); "
            "build them from weight_parameters() and arch_parameters()"
        )
    leaked = _param_ids(w_optimizer) & {id(p) for p in arch_parameters}
    if leaked:
        raise ValueError(
            f"the weights optimiser holds {len(leaked)} architecture parameter(s); "
            "build it from weight_parameters()"
        )
