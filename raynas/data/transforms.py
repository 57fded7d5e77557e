"""MONAI dict-transform pipelines for training patches and whole validation volumes.

Deterministic part (cached by :class:`monai.data.CacheDataset` / ``PersistentDataset``):
load (nibabel) -> channel first (4D multi-modal images: last axis -> channels) -> RAS ->
resample to the target spacing (bilinear image, nearest label) -> intensity normalisation by
modality (CT: HU window scaled to [0, 1]; MRI: per-channel z-score over non-zero voxels) ->
pad to the patch -> foreground/background voxel indices of the label (``FgBgToIndicesd``, so
the crops never rescan a volume). With a preprocessed cache (:mod:`raynas.data.preprocess`) the
load ... normalisation steps are replaced by reading the cached case (:class:`LoadPreprocessedd`).
Random part (training only): foreground-aware crops (``RandCropByPosNegLabeld`` on those
indices; in 2D mode ``(H, W, 1)`` crops squeezed to slices), flips, in-plane 90-degree
rotations, intensity scale and shift. Everything ends in plain tensors: ``image`` float32,
``label`` int64.

MONAI is imported inside the functions, so importing this module stays cheap.

Example:
    >>> t = train_transforms(modality="MRI", spacing=(1, 1, 2.5), patch_size=(32, 32, 16),
    ...                      mode="3d", samples_per_case=2)  # doctest: +SKIP
    >>> [s["image"].shape for s in t(case.as_dict())]  # doctest: +SKIP
    [torch.Size([1, 32, 32, 16]), torch.Size([1, 32, 32, 16])]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "KEYS",
    "FG_KEY",
    "BG_KEY",
    "LoadPreprocessedd",
    "crop_size",
    "base_transforms",
    "train_transforms",
    "val_transforms",
]

KEYS = ("image", "label")
FG_KEY, BG_KEY = "label_fg_indices", "label_bg_indices"  # FgBgToIndicesd's names


class LoadPreprocessedd:
    """Reads a case written by :func:`raynas.data.preprocess.preprocess_dataset`: the item's
    ``preprocessed`` path (a ``.pt`` file of plain tensors, ``weights_only``) becomes its ``image``
    and ``label``, as the load ... normalisation transforms would have made them (other keys, such
    as ``name``, pass through)."""

    def __call__(self, item: dict[str, Any]) -> dict[str, Any]:
        import torch
        from monai.data import MetaTensor

        case = torch.load(item["preprocessed"], map_location="cpu", weights_only=True)
        out = {k: v for k, v in item.items() if k != "preprocessed"}
        out.update({k: MetaTensor(case[k]) for k in KEYS})
        return out


def crop_size(patch_size: Sequence[int], mode: str) -> tuple[int, int, int]:
    """The 3D crop for a patch: ``(H, W, D)`` in 3D mode, ``(H, W, 1)`` in 2D mode."""
    if mode not in ("3d", "2d"):
        raise ValueError(f"mode must be '3d' or '2d', got {mode!r}")
    p = tuple(int(v) for v in patch_size)
    if any(v <= 0 for v in p):
        raise ValueError(f"patch_size must be positive, got {p}")
    if mode == "3d":
        if len(p) != 3:
            raise ValueError(f"3d mode needs a 3-int patch_size, got {p}")
        return p  # type: ignore[return-value]
    if len(p) not in (2, 3):
        raise ValueError(f"2d mode needs a patch_size of 2 ints (or 3: H, W, ignored), got {p}")
    return (p[0], p[1], 1)


def _intensity(
    modality: str, hu_window: Sequence[float] | None, ct_zscore: Sequence[float] | None = None
) -> list[Any]:
    from monai.transforms import NormalizeIntensityd, ScaleIntensityRanged

    if modality == "CT":
        if hu_window is None:
            raise ValueError("a CT dataset needs hu_window=(low, high)")
        low, high = (float(v) for v in hu_window)
        b_min, b_max = 0.0, 1.0
        if ct_zscore is not None:  # clip to the window, then (x - mean) / std: one affine map
            mean, std = (float(v) for v in ct_zscore)
            b_min, b_max = (low - mean) / std, (high - mean) / std
        return [
            ScaleIntensityRanged(
                "image", a_min=low, a_max=high, b_min=b_min, b_max=b_max, clip=True
            )
        ]
    if modality == "MRI":
        return [NormalizeIntensityd("image", nonzero=True, channel_wise=True)]
    raise ValueError(f"modality must be 'CT' or 'MRI', got {modality!r}")


def base_transforms(
    *,
    modality: str,
    spacing: Sequence[float],
    hu_window: Sequence[float] | None = None,
    pad_to: Sequence[int] | None = None,
    preprocessed: bool = False,
    ct_zscore: Sequence[float] | None = None,
) -> list[Any]:
    """The deterministic transforms (a list, so callers can extend it before composing).

    With ``preprocessed``, items name a cached case (``{"preprocessed": path}``) whose
    resampling and normalisation are already done: only the pad is left. ``ct_zscore``: a
    planned CT dataset's foreground (mean, std) (see :func:`_intensity`). Images are read by
    MONAI's reader for their ending (nibabel for NIfTI, pynrrd for ``.nrrd``, ITK for ``.mha``);
    a list of files (one per channel) is stacked into channels.
    """
    from monai.transforms import (
        EnsureChannelFirstd,
        EnsureTyped,
        LoadImaged,
        Orientationd,
        Spacingd,
        SpatialPadd,
    )

    if len(spacing) != 3 or any(float(s) <= 0 for s in spacing):
        raise ValueError(f"spacing must be 3 positive numbers (mm), got {tuple(spacing)}")
    if preprocessed:
        from monai.transforms import Lambda

        # a MONAI Transform, so CacheDataset keeps its result ("memory" cache): CacheDataset
        # caches nothing past the first callable that is not one
        out: list[Any] = [Lambda(LoadPreprocessedd())]
        if pad_to is not None:
            out.append(SpatialPadd(KEYS, spatial_size=tuple(int(v) for v in pad_to)))
        return out
    out = [
        LoadImaged(KEYS, reader=None, image_only=True),
        EnsureChannelFirstd(KEYS),
        EnsureTyped("image", dtype="float32"),
        Orientationd(KEYS, axcodes="RAS", labels=None),
        Spacingd(KEYS, pixdim=tuple(float(s) for s in spacing), mode=("bilinear", "nearest")),
        *_intensity(modality, hu_window, ct_zscore),
    ]
    if pad_to is not None:
        out.append(SpatialPadd(KEYS, spatial_size=tuple(int(v) for v in pad_to)))
    return out


def _finish() -> list[Any]:
    import torch
    from monai.transforms import EnsureTyped

    return [
        EnsureTyped("image", dtype=torch.float32, track_meta=False),
        EnsureTyped("label", dtype=torch.int64, track_meta=False),
    ]


def train_transforms(
    *,
    modality: str,
    spacing: Sequence[float],
    patch_size: Sequence[int],
    mode: str = "3d",
    samples_per_case: int = 1,
    hu_window: Sequence[float] | None = None,
    preprocessed: bool = False,
    ct_zscore: Sequence[float] | None = None,
) -> Any:
    """Composed training pipeline: each case gives ``samples_per_case`` random patches.

    ``preprocessed``: the items name cases of a preprocessed cache (see :func:`base_transforms`).

    Crops are foreground-aware (``pos=1, neg=1``). In 2D mode the crop is ``(H, W, 1)`` and the
    last spatial axis is squeezed, so patches are ``(C, H, W)`` axial slices.
    """
    from monai.transforms import (
        Compose,
        FgBgToIndicesd,
        RandCropByPosNegLabeld,
        RandFlipd,
        RandRotate90d,
        RandScaleIntensityd,
        RandShiftIntensityd,
        SqueezeDimd,
    )

    if samples_per_case <= 0:
        raise ValueError(f"samples_per_case must be positive, got {samples_per_case}")
    crop = crop_size(patch_size, mode)
    ts = base_transforms(
        modality=modality, spacing=spacing, hu_window=hu_window, pad_to=crop,
        preprocessed=preprocessed, ct_zscore=ct_zscore,
    )
    # The voxel indices are computed once per case (in the cached, deterministic part); the crop
    # pops them, so they never reach a batch.
    ts.append(FgBgToIndicesd("label"))
    ts.append(
        RandCropByPosNegLabeld(
            KEYS,
            label_key="label",
            spatial_size=crop,
            pos=1.0,
            neg=1.0,
            num_samples=samples_per_case,
            fg_indices_key=FG_KEY,
            bg_indices_key=BG_KEY,
        )
    )
    spatial_axes = (0, 1, 2)
    if mode == "2d":
        ts.append(SqueezeDimd(KEYS, dim=3))
        spatial_axes = (0, 1)
    ts += [RandFlipd(KEYS, prob=0.5, spatial_axis=a) for a in spatial_axes]
    if crop[0] == crop[1]:  # a 90-degree turn of a non-square patch would break batching
        ts.append(RandRotate90d(KEYS, prob=0.5, max_k=3, spatial_axes=(0, 1)))
    ts += [
        RandScaleIntensityd("image", factors=0.1, prob=0.5),
        RandShiftIntensityd("image", offsets=0.1, prob=0.5),
        *_finish(),
    ]
    return Compose(ts)


def val_transforms(
    *,
    modality: str,
    spacing: Sequence[float],
    hu_window: Sequence[float] | None = None,
    preprocessed: bool = False,
    ct_zscore: Sequence[float] | None = None,
) -> Any:
    """Composed validation pipeline: whole resampled, normalised 3D volumes (no crop, no pad)."""
    from monai.transforms import Compose

    base = base_transforms(
        modality=modality, spacing=spacing, hu_window=hu_window, preprocessed=preprocessed,
        ct_zscore=ct_zscore,
    )
    return Compose([*base, *_finish()])
