"""Validation on whole volumes: sliding-window inference and per-class Dice.

A 3D network is run with MONAI's ``SlidingWindowInferer`` (Gaussian blending) over each whole
validation volume; a 2D network is run on the same 3D volumes with ``SliceInferer`` over axial
slices (the last spatial axis of ``(B, C, X, Y, Z)``), so 2D and 3D models are scored alike.

Dice: MONAI ``DiceMetric(include_background=False, reduction="mean_batch", ignore_empty=True)``
on one-hot argmax predictions. A class that is absent from a case's label gives NaN for that
case (false positives there are not scored, as in the MSD evaluation) and is left out of that
class's mean; a class absent from every case's label has per-class Dice NaN. The headline
``dice`` is the NaN-safe mean of the per-class values (0.0 if no foreground class was present
in any case).

Example:
    >>> result = evaluate(net, bundle.val, num_classes=2, roi_size=(32, 32, 32), spatial_dims=3,
    ...                   device=torch.device("cpu"))
    >>> result.dice, result.per_class, result.cases
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from raynas.engine.amp import Precision
from raynas.engine.loops import to_device

__all__ = ["EvalResult", "evaluate", "make_inferer", "AXIAL_DIM"]

AXIAL_DIM = 2  # SliceInferer's spatial_dim for axial slices: the last axis of (X, Y, Z)


@dataclass(frozen=True)
class EvalResult:
    """Validation result on whole volumes.

    Attributes:
        dice: mean foreground Dice (the headline metric; NaN-safe mean of ``per_class``).
        per_class: Dice of classes 1..K-1 (NaN where a class is absent from every label).
        cases: volumes evaluated.
        seconds: wall time.
        loss: mean validation loss (the training loss, e.g. Dice + CE, on the logits), NaN
            unless a ``loss_fn`` was given.

    Example:
        >>> EvalResult(dice=0.8, per_class=[0.9, 0.7], cases=2).to_dict()
        {'val_dice': 0.8, 'val_dice_1': 0.9, 'val_dice_2': 0.7, 'val_cases': 2, ...}
    """

    dice: float
    per_class: list[float] = field(default_factory=list)
    cases: int = 0
    seconds: float = 0.0
    loss: float = math.nan

    def to_dict(self, prefix: str = "val_") -> dict[str, float]:
        """Flat metrics: ``val_dice``, ``val_dice_<class>`` ..., ``val_cases``, ``val_seconds``
        (and ``val_loss`` where one was measured)."""
        out: dict[str, float] = {f"{prefix}dice": self.dice}
        for index, value in enumerate(self.per_class, start=1):
            out[f"{prefix}dice_{index}"] = value
        if not math.isnan(self.loss):
            out[f"{prefix}loss"] = self.loss
        out[f"{prefix}cases"] = self.cases
        out[f"{prefix}seconds"] = self.seconds
        return out


def _roi(roi_size: Sequence[int], spatial_dims: int) -> tuple[int, ...]:
    roi = tuple(int(r) for r in roi_size)
    if spatial_dims == 3:
        if len(roi) != 3:
            raise ValueError(f"roi_size must have 3 values for a 3D network, got {roi_size!r}")
        return roi
    if len(roi) == 3 and roi[AXIAL_DIM] == 1:  # a 2D patch written as (X, Y, 1)
        roi = roi[:2]
    if len(roi) != 2:
        raise ValueError(f"roi_size must have 2 values for a 2D network, got {roi_size!r}")
    return roi


def make_inferer(
    *, roi_size: Sequence[int], spatial_dims: int, sw_batch_size: int = 2, overlap: float = 0.25
) -> Any:
    """MONAI inferer for whole 3D volumes: sliding window (3D net) or axial slices (2D net).

    Raises:
        ValueError: ``spatial_dims`` not 2 or 3, a ``roi_size`` of the wrong length, or
            ``overlap`` outside [0, 1).
    """
    from monai.inferers import SliceInferer, SlidingWindowInferer

    if spatial_dims not in (2, 3):
        raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims!r}")
    if not 0 <= overlap < 1:
        raise ValueError(f"overlap must be in [0, 1), got {overlap!r}")
    if sw_batch_size < 1:
        raise ValueError(f"sw_batch_size must be >= 1, got {sw_batch_size!r}")
    roi = _roi(roi_size, spatial_dims)
    if spatial_dims == 3:
        return SlidingWindowInferer(
            roi_size=roi, sw_batch_size=sw_batch_size, overlap=overlap, mode="gaussian"
        )
    return SliceInferer(
        spatial_dim=AXIAL_DIM, roi_size=roi, sw_batch_size=sw_batch_size, overlap=overlap,
        mode="gaussian",
    )  # fmt: skip


def _nanmean(values: Iterable[float], *, empty: float) -> float:
    kept = [v for v in values if not math.isnan(v)]
    return sum(kept) / len(kept) if kept else empty


@torch.no_grad()
def evaluate(
    model: nn.Module,
    val_loader: Iterable[Mapping[str, Any]],
    *,
    num_classes: int,
    roi_size: Sequence[int],
    spatial_dims: int,
    device: torch.device,
    sw_batch_size: int = 2,
    overlap: float = 0.25,
    max_cases: int | None = None,
    amp: str | bool | Precision = "off",
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
) -> EvalResult:
    """Sliding-window Dice of ``model`` on whole validation volumes.

    Args:
        model: a 2D or 3D segmentation network giving ``num_classes`` logit channels.
        val_loader: yields ``{"image": (1, C, X, Y, Z), "label": (1, 1, X, Y, Z)}``.
        num_classes: classes including background (>= 2).
        roi_size: the training patch (3 ints for 3D, 2 ints (or ``(X, Y, 1)``) for 2D).
        spatial_dims: the network's dimensionality: 3, or 2 for slice-by-slice inference.
        device: where inference runs (the volume's output stays there too).
        sw_batch_size: windows per forward pass.
        overlap: window overlap.
        max_cases: evaluate at most this many volumes (None = all).
        amp: mixed precision as in training (:class:`~raynas.engine.amp.Precision`).
        loss_fn: also measure this loss (logits, integer labels) per volume; ``loss`` is its
            mean over the volumes.

    Raises:
        ValueError: bad options, a non-3D volume, or an empty loader.
    """
    from monai.metrics import DiceMetric
    from monai.networks.utils import one_hot

    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2 (background + foreground), got {num_classes}")
    if max_cases is not None and max_cases < 1:
        raise ValueError(f"max_cases must be None or >= 1, got {max_cases!r}")
    inferer = make_inferer(
        roi_size=roi_size, spatial_dims=spatial_dims, sw_batch_size=sw_batch_size, overlap=overlap
    )
    device = torch.device(device)
    precision = Precision.resolve(device, amp)
    metric = DiceMetric(include_background=False, reduction="mean_batch", ignore_empty=True)
    was_training = model.training
    model.eval()
    start, cases, loss_sum = time.perf_counter(), 0, 0.0
    try:
        for batch in itertools.islice(val_loader, max_cases):
            image, label = to_device(batch, device)
            if image.ndim != 5:
                raise ValueError(
                    f"validation images must be whole 3D volumes (B, C, X, Y, Z), "
                    f"got shape {tuple(image.shape)}"
                )
            with precision.autocast():
                logits = inferer(image, model)
            pred = one_hot(logits.float().argmax(dim=1, keepdim=True), num_classes=num_classes)
            metric(y_pred=pred, y=one_hot(label.long(), num_classes=num_classes))
            if loss_fn is not None:
                loss_sum += float(loss_fn(logits.float(), label.long()))
            cases += 1
    finally:
        model.train(was_training)
    if cases == 0:
        raise ValueError("the validation loader yielded no volumes")
    # The raw (cases, classes) buffer holds NaN where a case's label lacks a class. MONAI's
    # "mean_batch" turns an all-NaN column into 0.0; the NaN-safe mean keeps it NaN instead.
    scores = metric.get_buffer().reshape(cases, num_classes - 1).double().cpu()
    per_class = [_nanmean(column.tolist(), empty=math.nan) for column in scores.T]
    return EvalResult(
        dice=_nanmean(per_class, empty=0.0),
        per_class=per_class,
        cases=cases,
        seconds=time.perf_counter() - start,
        loss=loss_sum / cases if loss_fn is not None else math.nan,
    )
