"""Training loops shared by every stage: plain, single-path supernet, PC-DARTS bi-level.

Each loop runs one epoch and returns an ``EpochStats``: one pass over the loader, or exactly
``max_steps`` batches when given (the loader is cycled, a fresh shuffle per pass, when it holds
fewer). Batches are dicts ``{"image": (B, C, *spatial) float, "label": (B, 1, *spatial) integer
classes}``. Mixed precision follows :class:`raynas.engine.amp.Precision` (``amp``: ``"auto"``,
``"bf16"``, ``"fp16"``, ``"off"`` or a resolved ``Precision``): fp16 steps go through the
optimiser's ``GradScaler`` (:func:`raynas.engine.amp.grad_scaler`), which lives as long as the
optimiser, so its loss scale carries across epochs and into checkpoints.

Losses are summed on the device and read once at the end of the epoch, so a CUDA step does not
wait for the host. A NaN or infinite loss raises ``NonFiniteLossError`` naming the step: on CPU
it is checked at every step before the backward pass (free there); on CUDA every
``CHECK_EVERY_CUDA`` steps and at the end of the epoch (the first bad step is named).
Each epoch also measures the seconds spent waiting for the loader (``data_seconds``).

Example:
    >>> stats = train_epoch(net, loader, opt, make_loss(), device=torch.device("cpu"))
    >>> stats.loss, stats.steps
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from raynas.engine.amp import Precision, grad_scaler
from raynas.engine.optim import check_disjoint

__all__ = [
    "EpochStats",
    "NonFiniteLossError",
    "train_epoch",
    "supernet_epoch",
    "bilevel_epoch",
    "to_device",
    "Precision",
]

DEFAULT_GRAD_CLIP = 12.0  # nnU-Net's gradient-norm clip
CHECK_EVERY_CUDA = 50  # steps between non-finite checks on CUDA (each is one host sync)


@dataclass(frozen=True)
class EpochStats:
    """What one epoch of training did.

    Attributes:
        loss: mean training loss over the steps (weights steps for the bi-level loop).
        steps: optimiser steps taken on the weights.
        seconds: wall time of the epoch.
        arch_loss: mean loss of the architecture steps (bi-level loop after warm-up), else None.
        arch_steps: architecture steps taken.
        data_seconds: part of ``seconds`` spent waiting for the loaders' next batch.

    Example:
        >>> EpochStats(loss=0.7, steps=4, seconds=1.2).to_dict()["train_loss"]
        0.7
    """

    loss: float
    steps: int
    seconds: float
    arch_loss: float | None = None
    arch_steps: int = 0
    data_seconds: float = 0.0

    def to_dict(self) -> dict[str, float]:
        """Flat metrics for a report: ``train_loss``, ``train_steps``, ``epoch_seconds``, ..."""
        out: dict[str, float] = {
            "train_loss": self.loss,
            "train_steps": self.steps,
            "epoch_seconds": self.seconds,
        }
        if self.arch_loss is not None:
            out["arch_loss"] = self.arch_loss
            out["arch_steps"] = self.arch_steps
        return out

    def as_dict(self) -> dict[str, Any]:
        """The fields as they are (for checkpoints)."""
        return asdict(self)


class NonFiniteLossError(RuntimeError):
    """A training loss was NaN or infinite: the run diverged (lr too high, bad data, ...).

    Example:
        >>> str(NonFiniteLossError(float("nan"), step=3, epoch=1))
        'non-finite training loss nan at epoch 1, step 3 (weights step); ...'
    """

    def __init__(
        self, loss: float, *, step: int, epoch: int | None = None, phase: str = "weights"
    ) -> None:
        self.loss = loss
        self.step = step
        self.epoch = epoch
        self.phase = phase
        where = f"epoch {epoch}, step {step}" if epoch is not None else f"step {step}"
        super().__init__(
            f"non-finite training loss {loss} at {where} ({phase} step); the run diverged: "
            "lower the learning rate or check the data"
        )


def _plain(x: torch.Tensor) -> torch.Tensor:
    # MONAI MetaTensors carry metadata through every op; the loops do not need it.
    return x.as_tensor() if hasattr(x, "as_tensor") else x


def to_device(batch: Mapping[str, Any], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """``(image, label)`` of a batch dict on ``device`` (plain tensors, image as float32)."""
    try:
        image, label = batch["image"], batch["label"]
    except (KeyError, TypeError) as err:
        raise ValueError(
            f"a batch must be a dict with 'image' and 'label', got {type(batch).__name__}"
        ) from err
    image = _plain(image).to(device, dtype=torch.float32, non_blocking=True)
    label = _plain(label).to(device, non_blocking=True)
    return image, label


def _check_max_steps(max_steps: int | None) -> None:
    if max_steps is not None and (isinstance(max_steps, bool) or max_steps < 1):
        raise ValueError(f"max_steps must be None or >= 1, got {max_steps!r}")


class _Losses:
    """Sums one phase's losses on the device; checks them for NaN/inf every ``every`` steps."""

    def __init__(self, device: torch.device, *, phase: str, epoch: int | None) -> None:
        self.every = 1 if device.type == "cpu" else CHECK_EVERY_CUDA
        self.phase, self.epoch = phase, epoch
        self.pending: list[tuple[int, torch.Tensor]] = []
        self.total: torch.Tensor | None = None
        self.count = 0

    def add(self, loss: torch.Tensor, step: int) -> None:
        value = loss.detach().float()
        self.pending.append((step, value))
        self.total = value if self.total is None else self.total + value
        self.count += 1
        if len(self.pending) >= self.every:
            self.check()

    def check(self) -> None:
        """Raises ``NonFiniteLossError`` for the first non-finite pending loss (one sync)."""
        if not self.pending:
            return
        values = torch.stack([v for _, v in self.pending])
        bad = (~torch.isfinite(values)).nonzero()
        if len(bad):
            step, value = self.pending[int(bad[0])]
            raise NonFiniteLossError(float(value), step=step, epoch=self.epoch, phase=self.phase)
        self.pending.clear()

    def mean(self) -> float:
        self.check()
        return float(self.total) / self.count if self.total is not None and self.count else 0.0


def _step(
    model: nn.Module,
    batch: Mapping[str, Any],
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    *,
    device: torch.device,
    precision: Precision,
    grad_clip: float | None,
    step: int,
    losses: _Losses,
) -> None:
    """One forward/backward/update on one batch; its loss goes to ``losses``."""
    image, label = to_device(batch, device)
    optimizer.zero_grad(set_to_none=True)
    with precision.autocast():
        loss = loss_fn(model(image), label)
    losses.add(loss, step)  # on CPU: checked here, before any backward pass
    params = [p for group in optimizer.param_groups for p in group["params"]]
    scaler = grad_scaler(optimizer, precision)
    if scaler is not None:
        scaler.scale(loss).backward()
        if grad_clip is not None:
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(params, grad_clip)
        scaler.step(optimizer)
        scaler.update()
    else:
        loss.backward()
        if grad_clip is not None:
            nn.utils.clip_grad_norm_(params, grad_clip)
        optimizer.step()


class _Timed:
    """Iterates batches, adding the time spent waiting for each to ``self.seconds``."""

    def __init__(self, batches: Iterator[Any]) -> None:
        self.batches = batches
        self.seconds = 0.0

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        start = time.perf_counter()
        try:
            return next(self.batches)
        finally:
            self.seconds += time.perf_counter() - start


def _batches(
    loader: Iterable[Any], max_steps: int | None, what: str = "the training loader"
) -> Iterator[Any]:
    """One pass over ``loader`` (``max_steps`` None), else exactly ``max_steps`` batches,
    cycling the loader (a fresh pass, new shuffle) when it holds fewer."""
    if max_steps is None:
        return iter(loader)
    return itertools.islice(_cycle(loader, what), max_steps)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _no_batches(what: str) -> ValueError:
    return ValueError(f"{what} yielded no batches (empty dataset or split?)")


def train_epoch(
    model: nn.Module,
    loader: Iterable[Mapping[str, Any]],
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    *,
    device: torch.device,
    max_steps: int | None = None,
    amp: str | bool | Precision = "off",
    grad_clip: float | None = DEFAULT_GRAD_CLIP,
    before_step: Callable[[int], Any] | None = None,
    epoch: int | None = None,
) -> EpochStats:
    """One epoch of plain supervised training (``model.train()`` mode).

    Args:
        model: the network, already on ``device``.
        loader: yields batch dicts; cycled to ``max_steps`` batches when that is given.
        optimizer: updates the model's weights.
        loss_fn: ``loss_fn(logits, label) -> scalar``, e.g. ``make_loss()``.
        device: where batches go.
        max_steps: steps this epoch (None = one pass over the loader).
        amp: mixed precision (see :class:`~raynas.engine.amp.Precision`; ``"auto"`` is off on
            CPU).
        grad_clip: max gradient norm (None = no clipping).
        before_step: called with the step index before each step (e.g. to pick a supernet path).
        epoch: only used to name the epoch in ``NonFiniteLossError``.

    Raises:
        NonFiniteLossError: a loss was NaN or infinite.
        ValueError: the loader yielded no batches, or bad ``max_steps``.
    """
    _check_max_steps(max_steps)
    device = torch.device(device)
    precision = Precision.resolve(device, amp)
    model.train()
    start = time.perf_counter()
    losses = _Losses(device, phase="weights", epoch=epoch)
    batches = _Timed(_batches(loader, max_steps))
    steps = 0
    for step, batch in enumerate(batches):
        if before_step is not None:
            before_step(step)
        _step(
            model, batch, optimizer, loss_fn, device=device, precision=precision,
            grad_clip=grad_clip, step=step, losses=losses,
        )  # fmt: skip
        steps += 1
    if steps == 0:
        raise _no_batches("the training loader")
    loss = losses.mean()
    _sync(device)
    return EpochStats(
        loss=loss, steps=steps, seconds=time.perf_counter() - start, data_seconds=batches.seconds
    )


def supernet_epoch(
    supernet: nn.Module,
    loader: Iterable[Mapping[str, Any]],
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    *,
    sample: Callable[[], Any],
    device: torch.device,
    max_steps: int | None = None,
    amp: str | bool | Precision = "off",
    grad_clip: float | None = DEFAULT_GRAD_CLIP,
    epoch: int | None = None,
) -> EpochStats:
    """One epoch of single-path weight-sharing training (C2F coarse stage).

    Before each step ``choice = sample()`` and ``supernet.set_active(choice)``, so every step
    trains one path (e.g. one topology of the cluster). Other arguments as ``train_epoch``.

    Example:
        >>> rng = random.Random(0)
        >>> supernet_epoch(net, loader, opt, loss, sample=lambda: net.sample(rng), device=dev)
    """
    if not callable(getattr(supernet, "set_active", None)):
        raise ValueError(f"{type(supernet).__name__} has no set_active(choice) method")

    def activate(_step: int) -> None:
        supernet.set_active(sample())

    return train_epoch(
        supernet, loader, optimizer, loss_fn, device=device, max_steps=max_steps, amp=amp,
        grad_clip=grad_clip, before_step=activate, epoch=epoch,
    )  # fmt: skip


def _cycle(loader: Iterable[Any], what: str = "the architecture loader") -> Iterator[Any]:
    """Iterates a loader forever, starting a fresh pass (new shuffle) when one ends."""
    while True:
        empty = True
        for batch in loader:
            empty = False
            yield batch
        if empty:
            raise _no_batches(what)


def bilevel_epoch(
    supernet: nn.Module,
    weights_loader: Iterable[Mapping[str, Any]],
    arch_loader: Iterable[Mapping[str, Any]],
    w_optimizer: torch.optim.Optimizer,
    a_optimizer: torch.optim.Optimizer,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    *,
    update_arch: bool,
    device: torch.device,
    max_steps: int | None = None,
    amp: str | bool | Precision = "off",
    grad_clip: float | None = DEFAULT_GRAD_CLIP,
    epoch: int | None = None,
) -> EpochStats:
    """One epoch of first-order PC-DARTS (alternating updates).

    For each batch of ``weights_loader``: if ``update_arch`` (after warm-up), one batch of
    ``arch_loader`` (cycled; the held-out half of the training cases) updates alpha/beta with
    ``a_optimizer`` (no gradient clipping, as PC-DARTS); then the weights batch updates the
    weights with ``w_optimizer``. The architecture step comes first, as in PC-DARTS'
    ``train()``. The two optimisers must not share a parameter, and the weights optimiser must
    not hold any of ``supernet.arch_parameters()`` (checked, ``ValueError``).

    Returns:
        ``EpochStats`` with ``loss`` over the weights steps and ``arch_loss`` over the
        architecture steps (None during warm-up).
    """
    _check_max_steps(max_steps)
    arch_params = supernet.arch_parameters() if hasattr(supernet, "arch_parameters") else ()
    check_disjoint(w_optimizer, a_optimizer, arch_params)
    device = torch.device(device)
    precision = Precision.resolve(device, amp)
    supernet.train()
    start = time.perf_counter()
    arch_batches = _Timed(_cycle(arch_loader)) if update_arch else None
    w_losses = _Losses(device, phase="weights", epoch=epoch)
    a_losses = _Losses(device, phase="architecture", epoch=epoch)
    batches = _Timed(_batches(weights_loader, max_steps, "the weights loader"))
    steps = 0
    for step, batch in enumerate(batches):
        if arch_batches is not None:
            _step(
                supernet, next(arch_batches), a_optimizer, loss_fn, device=device,
                precision=precision, grad_clip=None, step=step, losses=a_losses,
            )  # fmt: skip
        _step(
            supernet, batch, w_optimizer, loss_fn, device=device, precision=precision,
            grad_clip=grad_clip, step=step, losses=w_losses,
        )  # fmt: skip
        steps += 1
    if steps == 0:
        raise _no_batches("the weights loader")
    a_loss = a_losses.mean() if update_arch else None
    w_loss = w_losses.mean()
    _sync(device)
    return EpochStats(
        loss=w_loss,
        steps=steps,
        seconds=time.perf_counter() - start,
        arch_loss=a_loss,
        arch_steps=steps if update_arch else 0,
        data_seconds=batches.seconds + (arch_batches.seconds if arch_batches else 0.0),
    )
