"""The search stages' scoring proxy: a fixed set of validation patches, scored by patch Dice.

Sliding-window Dice over whole volumes costs hundreds of window forwards per scoring; a search
stage scores many times per epoch (C2F: every evaluated topology). :func:`build_patch_set` crops
``patches_per_case`` patches of the training patch size from each validation volume once per
trial: a share ``background_share`` of them (rounded) centred on a background voxel, so false
positives away from the organs cost score, the rest each centred on a foreground voxel (classes
taken in turn, so small classes get patches too). Centres are drawn by a generator seeded with
``(seed, case index)``: the same seed gives the same patches, so scores are comparable between
topologies and epochs. :func:`evaluate_patches` runs the network once per patch (no blending)
and aggregates Dice per class over all patches (``2 * sum(TP) / (sum(pred) + sum(label))``).
A class absent from every patch's label is scored as MONAI's ``DiceMetric(ignore_empty=False)``
scores an empty ground truth: 1.0 when it is predicted nowhere, 0.0 when it is predicted
anywhere (a false positive); ``ignore_empty=True`` gives NaN instead (left out of the mean, as
before). The headline ``dice`` is the NaN-safe mean over classes. Retraining and final
evaluation keep sliding-window Dice (:func:`raynas.engine.evaluate`).

Example:
    >>> patches = build_patch_set(bundle.val, roi_size=(32, 32, 16), spatial_dims=3,
    ...                           num_classes=3, patches_per_case=4, background_share=0.25,
    ...                           seed=0)
    >>> evaluate_patches(net, patches, num_classes=3, device=torch.device("cpu")).dice
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from raynas.engine.amp import Precision
from raynas.engine.evaluate import AXIAL_DIM, EvalResult
from raynas.engine.loops import to_device

__all__ = ["PatchSet", "build_patch_set", "evaluate_patches"]


@dataclass(frozen=True)
class PatchSet:
    """Validation patches held in memory (CPU): ``images`` (N, C, *roi) float32, ``labels``
    (N, 1, *roi) uint8, ``centres`` the (case, x, y, z) of each patch, ``cases`` volumes used,
    ``background`` whether each patch was centred on background."""

    images: torch.Tensor
    labels: torch.Tensor
    centres: list[tuple[int, int, int, int]]
    cases: int
    background: list[bool] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.images.shape[0])


def _crop3d(roi_size: Sequence[int], spatial_dims: int) -> tuple[int, int, int]:
    roi = tuple(int(r) for r in roi_size)
    if spatial_dims == 3 and len(roi) == 3:
        return roi  # type: ignore[return-value]
    if spatial_dims == 2 and len(roi) in (2, 3):
        return (roi[0], roi[1], 1)
    raise ValueError(f"roi_size {roi_size!r} does not fit a {spatial_dims}D network")


def _pad_to(x: torch.Tensor, size: Sequence[int]) -> tuple[torch.Tensor, list[int]]:
    """Zero-pads (C, X, Y, Z) symmetrically to at least ``size``; returns the low pads."""
    lows, pads = [], []
    for dim, want in zip(x.shape[1:], size, strict=True):
        extra = max(0, int(want) - int(dim))
        lows.append(extra // 2)
        pads.append((extra // 2, extra - extra // 2))
    flat = [v for pair in reversed(pads) for v in pair]
    return (F.pad(x, flat) if any(flat) else x), lows


def build_patch_set(
    val_loader: Iterable[Mapping[str, Any]],
    *,
    roi_size: Sequence[int],
    spatial_dims: int,
    num_classes: int,
    patches_per_case: int = 8,
    background_share: float = 0.0,
    seed: int = 0,
) -> PatchSet:
    """Crops ``patches_per_case`` patches from each validation volume, a share of them centred
    on background and the rest on foreground.

    Args:
        val_loader: yields whole volumes ``{"image": (1, C, X, Y, Z), "label": (1, 1, X, Y, Z)}``.
        roi_size: the training patch (3 ints; 2 ints or ``(X, Y, 1)`` for a 2D network, whose
            patches are axial slices).
        spatial_dims: 3, or 2 for a 2D network.
        num_classes: classes including background; patch ``k`` of a case is centred on a voxel
            of foreground class ``1 + k % (num_classes - 1)`` (the next present class if that
            one is absent; a random voxel if the case has no foreground).
        patches_per_case: patches per volume (>= 1).
        background_share: in [0, 1): ``patches_per_case * background_share`` patches of each
            case (rounded half up, leaving at least one foreground patch; its last ones) are
            centred on a random background voxel (a random voxel if the case has none); the
            others follow the foreground rule above.
        seed: with the case index, seeds the choice of centres.

    Raises:
        ValueError: bad options, a non-3D volume, or an empty loader.
    """
    if patches_per_case < 1:
        raise ValueError(f"patches_per_case must be >= 1, got {patches_per_case!r}")
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2, got {num_classes}")
    if isinstance(background_share, bool) or not 0 <= background_share < 1:
        raise ValueError(f"background_share must be in [0, 1), got {background_share!r}")
    crop = _crop3d(roi_size, spatial_dims)
    # at least one foreground patch per case; the background count is rounded half up
    n_fg = max(1, patches_per_case - math.floor(patches_per_case * background_share + 0.5))
    images, labels, centres, background = [], [], [], []
    cases = 0
    for case, batch in enumerate(val_loader):
        image, label = to_device(batch, torch.device("cpu"))
        if image.ndim != 5:
            raise ValueError(f"validation images must be (1, C, X, Y, Z), got {tuple(image.shape)}")
        image, lows = _pad_to(image[0], crop)
        label, _ = _pad_to(label[0].to(torch.uint8), crop)
        gen = torch.Generator().manual_seed(int(seed) * 1_000_003 + case)
        by_class = {c: (label[0] == c).nonzero() for c in range(1, num_classes)}
        present = [c for c in range(1, num_classes) if len(by_class[c])]
        shape = label.shape[1:]
        back = (label[0] == 0).nonzero() if n_fg < patches_per_case else None
        for k in range(patches_per_case):
            if k >= n_fg and back is not None and len(back):
                centre = back[int(torch.randint(len(back), (1,), generator=gen))].tolist()
            elif present and k < n_fg:
                want = 1 + k % (num_classes - 1)
                cls = want if want in present else present[k % len(present)]
                voxels = by_class[cls]
                centre = voxels[int(torch.randint(len(voxels), (1,), generator=gen))].tolist()
            else:
                centre = [int(torch.randint(int(n), (1,), generator=gen)) for n in shape]
            start = [
                min(max(0, int(c) - s // 2), int(n) - s)
                for c, s, n in zip(centre, crop, shape, strict=True)
            ]
            window = tuple(slice(a, a + s) for a, s in zip(start, crop, strict=True))
            images.append(image[(slice(None), *window)].clone())
            labels.append(label[(slice(None), *window)].clone())
            centres.append((case, *(int(c) - lo for c, lo in zip(centre, lows, strict=True))))
            background.append(k >= n_fg)
        cases += 1
    if cases == 0:
        raise ValueError("the validation loader yielded no volumes")
    stacked_images = torch.stack(images)
    stacked_labels = torch.stack(labels)
    if spatial_dims == 2:  # (N, C, X, Y, 1) -> axial slices (N, C, X, Y)
        stacked_images = stacked_images.squeeze(2 + AXIAL_DIM)
        stacked_labels = stacked_labels.squeeze(2 + AXIAL_DIM)
    return PatchSet(stacked_images, stacked_labels, centres, cases, background)


def _empty_truth(predicted: float, ignore_empty: bool) -> float:
    """Dice of a class with no voxel in the ground truth, as MONAI's ``DiceMetric`` scores it:
    NaN (left out) with ``ignore_empty``, else 1.0 for no prediction and 0.0 for any."""
    if ignore_empty:
        return math.nan
    return 1.0 if predicted == 0 else 0.0


@torch.no_grad()
def evaluate_patches(
    model: nn.Module,
    patches: PatchSet,
    *,
    num_classes: int,
    device: torch.device,
    batch_size: int = 4,
    amp: str | bool | Precision = "off",
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    ignore_empty: bool = False,
) -> EvalResult:
    """Patch-level Dice of ``model`` on ``patches``, aggregated per class over all patches.

    The sums stay on ``device`` until the end (one host sync per scoring). With ``loss_fn``
    (logits, integer labels; a batch mean) the result's ``loss`` is its mean over the patches.
    A class absent from every patch's label scores 1.0 if predicted nowhere, else 0.0 (MONAI's
    ``ignore_empty=False``); with ``ignore_empty`` it is NaN and left out of ``dice``.

    Raises:
        ValueError: ``num_classes`` < 2 or ``batch_size`` < 1.
    """
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2, got {num_classes}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
    device = torch.device(device)
    precision = Precision.resolve(device, amp)
    spatial = patches.images.ndim - 2
    classes = torch.arange(1, num_classes, device=device).view(1, -1, *([1] * spatial))
    inter = torch.zeros(num_classes - 1, device=device, dtype=torch.float64)
    pred_sum = torch.zeros_like(inter)
    label_sum = torch.zeros_like(inter)
    loss_sum = torch.zeros((), device=device, dtype=torch.float64)
    was_training = model.training
    model.eval()
    start = time.perf_counter()
    try:
        for i in range(0, len(patches), batch_size):
            x = patches.images[i : i + batch_size].to(device, non_blocking=True)
            y = patches.labels[i : i + batch_size].to(device, non_blocking=True).long()
            with precision.autocast():
                logits = model(x)
            pred = logits.float().argmax(dim=1, keepdim=True)
            if loss_fn is not None:
                loss_sum += loss_fn(logits.float(), y).double() * len(x)
            p, t = pred == classes, y == classes
            dims = [0, *range(2, p.ndim)]
            inter += (p & t).sum(dim=dims).double()
            pred_sum += p.sum(dim=dims).double()
            label_sum += t.sum(dim=dims).double()
    finally:
        model.train(was_training)
    inter_c, pred_c, label_c = (v.cpu().tolist() for v in (inter, pred_sum, label_sum))
    per_class = [
        2.0 * i / (p + t) if t > 0 else _empty_truth(p, ignore_empty)
        for i, p, t in zip(inter_c, pred_c, label_c, strict=True)
    ]
    kept = [v for v in per_class if not math.isnan(v)]
    return EvalResult(
        dice=sum(kept) / len(kept) if kept else 0.0,
        per_class=per_class,
        cases=patches.cases,
        seconds=time.perf_counter() - start,
        loss=float(loss_sum) / len(patches) if loss_fn is not None and len(patches) else math.nan,
    )
