"""A small epoch loop with a per-epoch callback (the Ray layer reports and checkpoints there).

Example:
    >>> def run_epoch(epoch):
    ...     return train_epoch(net, loader, opt, loss, device=dev, epoch=epoch)
    >>> def validate(epoch):
    ...     return evaluate(net, val, num_classes=2, roi_size=(32,) * 3, spatial_dims=3, device=dev)
    >>> history = fit(epochs=10, run_epoch=run_epoch, validate=validate,
    ...               callback=lambda epoch, metrics: print(epoch, metrics["val_dice"]),
    ...               scheduler=make_scheduler(opt, name="cosine", epochs=10))
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch.optim.lr_scheduler import LRScheduler

from raynas.engine.evaluate import EvalResult
from raynas.engine.loops import EpochStats, NonFiniteLossError

__all__ = ["fit"]


def fit(
    *,
    epochs: int,
    run_epoch: Callable[[int], EpochStats],
    validate: Callable[[int], EvalResult] | None = None,
    callback: Callable[[int, dict[str, Any]], bool | None] | None = None,
    scheduler: LRScheduler | None = None,
    start_epoch: int = 0,
    validate_every: int = 1,
) -> list[dict[str, Any]]:
    """Runs epochs ``start_epoch .. epochs-1``; returns the metrics of each epoch run.

    Each epoch: ``run_epoch(epoch)``; ``validate(epoch)`` every ``validate_every`` epochs and on
    the last one; ``scheduler.step()``; then ``callback(epoch, metrics)``. The callback sees the
    scheduler already stepped, so a checkpoint taken there resumes at ``start_epoch=epoch + 1``
    (restore the model, optimiser and scheduler state first). A callback returning True stops.

    ``metrics`` holds ``epoch``, ``lr`` (the rate used this epoch), ``EpochStats.to_dict()``
    (``train_loss``, ``train_steps``, ``epoch_seconds``, ``arch_loss`` ...) and, on validated
    epochs, ``EvalResult.to_dict()`` (``val_dice``, ``val_dice_<class>``, ...).

    Raises:
        NonFiniteLossError: from ``run_epoch``, completed with the epoch number.
        ValueError: ``epochs < 1``, ``start_epoch`` outside ``[0, epochs]``, or
            ``validate_every < 1``.
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    if not 0 <= start_epoch <= epochs:
        raise ValueError(f"start_epoch must be in [0, {epochs}], got {start_epoch!r}")
    if validate_every < 1:
        raise ValueError(f"validate_every must be >= 1, got {validate_every!r}")
    history: list[dict[str, Any]] = []
    for epoch in range(start_epoch, epochs):
        metrics: dict[str, Any] = {"epoch": epoch}
        if scheduler is not None:
            metrics["lr"] = float(scheduler.get_last_lr()[0])
        try:
            stats = run_epoch(epoch)
        except NonFiniteLossError as err:
            if err.epoch is None:
                raise err.with_epoch(epoch) from err
            raise
        metrics.update(stats.to_dict())
        last = epoch == epochs - 1
        if validate is not None and ((epoch + 1) % validate_every == 0 or last):
            metrics.update(validate(epoch).to_dict())
        if scheduler is not None:
            scheduler.step()
        history.append(metrics)
        if callback is not None and callback(epoch, metrics) is True:
            break
    return history
