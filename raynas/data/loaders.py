"""DataLoaders for search and retraining: :func:`build_loaders` -> :class:`DataBundle`.

One cached dataset holds the training fold (the deterministic transforms run once); the
``weights`` and ``arch`` loaders of bi-level search are disjoint subsets of it. Validation and
the held-out test cases (``test``, see :func:`raynas.data.case_split`) give whole 3D volumes,
batch size 1, in both modes.

Example:
    >>> ds = open_dataset("synthetic", synthetic_cases=6)  # doctest: +SKIP
    >>> bundle = build_loaders(ds, mode="3d", patch_size=(32, 32, 16), batch_size=2,
    ...                        samples_per_case=1, folds=3)  # doctest: +SKIP
    >>> next(iter(bundle.train))["image"].shape  # doctest: +SKIP
    torch.Size([2, 1, 32, 32, 16])
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from raynas.data.splits import bilevel_split, case_split
from raynas.data.synthetic import cache_root
from raynas.data.transforms import crop_size, train_transforms, val_transforms

if TYPE_CHECKING:
    from torch.utils.data import DataLoader

    from raynas.data.msd import MSDDataset

__all__ = ["DataBundle", "build_loaders", "CACHE_MODES"]

CACHE_MODES = ("memory", "disk", "none")


@dataclass
class DataBundle:
    """The loaders of one fold and what a network needs to know about them.

    Example:
        >>> bundle.in_channels, bundle.num_classes, bundle.patch_size  # doctest: +SKIP
        (1, 3, (32, 32, 16))
    """

    train: DataLoader
    val: DataLoader
    weights: DataLoader
    arch: DataLoader
    in_channels: int
    num_classes: int
    patch_size: tuple[int, ...]
    spatial_dims: int
    mode: str
    spacing: tuple[float, float, float]
    train_cases: list[str] = field(default_factory=list)
    val_cases: list[str] = field(default_factory=list)
    weights_cases: list[str] = field(default_factory=list)
    arch_cases: list[str] = field(default_factory=list)
    test: DataLoader | None = None  # the held-out test cases (None when there are none)
    test_cases: list[str] = field(default_factory=list)


def _make_dataset(
    items: list[dict[str, str]], transform: Any, cache: str, cache_dir: Path | None
) -> Any:
    from monai.data import CacheDataset, Dataset, PersistentDataset

    if cache == "memory":
        return CacheDataset(items, transform, num_workers=0, progress=False, copy_cache=True)
    if cache == "disk":
        assert cache_dir is not None
        cache_dir.mkdir(parents=True, exist_ok=True)
        return PersistentDataset(items, transform, cache_dir=cache_dir)
    return Dataset(items, transform)


def _disk_cache_dir(ds: MSDDataset, base: Path | str | None, key: dict[str, Any]) -> Path:
    """A folder per (dataset, deterministic-transform settings): stale caches are never reused."""
    text = json.dumps({"root": str(Path(ds.root).resolve()), **key}, sort_keys=True)
    digest = hashlib.sha1(text.encode()).hexdigest()[:12]
    return cache_root(base) / "persistent" / f"{ds.name}-{digest}"


def _items(
    ds: MSDDataset, preprocessed: Path | str | None, spacing: tuple[float, ...]
) -> dict[str, dict[str, str]]:
    """The transform input of each case: its NIfTI files, or its file in the preprocessed cache
    (which must hold every case, made at ``spacing``)."""
    if preprocessed is None:
        return {c.name: c.as_dict() for c in ds.cases}
    from raynas.data.preprocess import read_manifest

    folder = Path(preprocessed)
    manifest = read_manifest(folder)
    made_at = tuple(manifest["settings"]["spacing"])
    if made_at != spacing:
        raise ValueError(f"{folder}: preprocessed at spacing {made_at}, the trial wants {spacing}")
    cases = manifest["cases"]
    missing = [c.name for c in ds.cases if c.name not in cases]
    if missing:
        raise ValueError(f"{folder}: no preprocessed case {missing[0]!r}")
    return {
        c.name: {"preprocessed": str(folder / cases[c.name]["file"]), "name": c.name}
        for c in ds.cases
    }


def build_loaders(
    ds: MSDDataset,
    *,
    mode: str | None = None,
    patch_size: Sequence[int] | None = None,
    spacing: Sequence[float] | None = None,
    batch_size: int = 2,
    samples_per_case: int = 1,
    cache: str = "memory",
    num_workers: int = 0,
    folds: int = 5,
    fold: int = 0,
    seed: int = 0,
    test_fraction: float = 0.0,
    test_cases: Sequence[str] | None = None,
    max_val_cases: int | None = None,
    cache_dir: Path | str | None = None,
    check: bool = True,
    preprocessed: Path | str | None = None,
    with_test: bool = True,
    pin_memory: bool = False,
) -> DataBundle:
    """Splits ``ds`` (held-out test cases, fold ``fold`` of ``folds`` of the rest, then
    weights/arch halves) and builds loaders.

    Args:
        mode: ``"3d"`` patches or ``"2d"`` axial slices; default ``ds.info.default_mode``.
        patch_size: training patch; default ``ds.info.search_patch``. In 2D mode ``(H, W)`` or
            ``(H, W, anything)`` (the third value is ignored).
        spacing: target spacing in mm; default ``ds.info.target_spacing``.
        batch_size: cases per batch; a batch holds ``batch_size * samples_per_case`` patches.
        cache: ``"memory"`` (CacheDataset), ``"disk"`` (PersistentDataset under ``cache_dir``,
            default ``<raynas cache>/persistent``) or ``"none"``.
        test_fraction, test_cases: the held-out test cases (see :func:`case_split`); none by
            default.
        max_val_cases: validate on at most this many cases of the fold.
        check: read every used case first (:func:`check_dataset`), so bad data fails early.
        preprocessed: a folder written by :func:`raynas.data.preprocess.preprocess_dataset` for
            ``ds`` at ``spacing``: cases are read from it (no NIfTI reading, resampling or
            normalisation here); ``cache`` still decides what the trial keeps in memory.
        with_test: build the loader of the held-out test cases (``test``); False for a search
            trial, which never scores them: their volumes are then neither read nor kept
            (``test_cases`` still names them).
        pin_memory: page-locked batches, for a consumer that trains on CUDA (the trial's
            device decides, not whether this machine has a GPU).

    Raises:
        ValueError: a bad option (names it and the allowed values).
        DataError: too few cases for ``folds``, or a bad case (with ``check``).
    """
    from monai.data import DataLoader
    from torch.utils.data import Subset

    mode = mode or ds.info.default_mode
    if cache not in CACHE_MODES:
        raise ValueError(f"cache must be one of {', '.join(CACHE_MODES)}, got {cache!r}")
    for opt, val in (("batch_size", batch_size), ("samples_per_case", samples_per_case)):
        if val <= 0:
            raise ValueError(f"{opt} must be positive, got {val}")
    if num_workers < 0:
        raise ValueError(f"num_workers must be >= 0, got {num_workers}")
    if max_val_cases is not None and max_val_cases <= 0:
        raise ValueError(f"max_val_cases must be positive, got {max_val_cases}")
    crop = crop_size(patch_size or ds.info.search_patch, mode)
    spacing = tuple(float(s) for s in (spacing or ds.info.target_spacing))
    split = case_split(
        ds.cases,
        folds=folds,
        fold=fold,
        seed=seed,
        test_fraction=test_fraction,
        test_cases=test_cases,
    )
    train_cases, val_cases, held_out = split["train"], split["val"], split["test"]
    if max_val_cases is not None:
        val_cases = val_cases[:max_val_cases]
    weights_cases, arch_cases = bilevel_split(train_cases, seed=seed)
    if check:
        from raynas.data.validate import check_dataset

        check_dataset(
            dataclasses.replace(ds, cases=[*train_cases, *val_cases, *held_out]), deep=True
        )

    common = {
        "modality": ds.modality,
        "spacing": spacing,
        "hu_window": ds.info.hu_window,
        "preprocessed": preprocessed is not None,
        "ct_zscore": ds.info.ct_zscore,
    }
    train_t = train_transforms(
        **common, patch_size=crop, mode=mode, samples_per_case=samples_per_case
    )
    train_t.set_random_state(seed=seed)
    val_t = val_transforms(**common)
    tdir = vdir = None
    items = _items(ds, preprocessed, spacing)
    if cache == "disk":
        key = {"modality": ds.modality, "spacing": spacing, "hu": ds.info.hu_window,
               "ct_zscore": ds.info.ct_zscore,
               "preprocessed": str(preprocessed) if preprocessed else None}
        tdir = _disk_cache_dir(ds, cache_dir, {**key, "pad": crop})
        vdir = _disk_cache_dir(ds, cache_dir, {**key, "pad": None})
    train_ds = _make_dataset([items[c.name] for c in train_cases], train_t, cache, tdir)
    val_ds = _make_dataset([items[c.name] for c in val_cases], val_t, cache, vdir)
    test_ds = (
        _make_dataset([items[c.name] for c in held_out], val_t, cache, vdir)
        if held_out and with_test
        else None
    )
    index = {id(c): i for i, c in enumerate(train_cases)}

    def loader(dataset: Any, shuffle: bool, bs: int, salt: int, workers: int) -> Any:
        import torch

        gen = torch.Generator().manual_seed(seed * 1000 + salt)
        # Training loaders keep their workers between epochs.
        return DataLoader(
            dataset,
            batch_size=bs,
            shuffle=shuffle,
            num_workers=workers,
            drop_last=False,
            generator=gen,
            persistent_workers=workers > 0,
            pin_memory=bool(pin_memory),
        )

    # Cached validation volumes need no worker processes (forking them per evaluation costs more).
    val_workers = 0 if cache == "memory" else num_workers

    return DataBundle(
        train=loader(train_ds, True, batch_size, 0, num_workers),
        val=loader(val_ds, False, 1, 1, val_workers),
        weights=loader(
            Subset(train_ds, [index[id(c)] for c in weights_cases]), True, batch_size, 2,
            num_workers,
        ),
        arch=loader(
            Subset(train_ds, [index[id(c)] for c in arch_cases]), True, batch_size, 3, num_workers
        ),
        in_channels=ds.in_channels,
        num_classes=ds.num_classes,
        patch_size=crop if mode == "3d" else crop[:2],
        spatial_dims=3 if mode == "3d" else 2,
        mode=mode,
        spacing=spacing,  # type: ignore[arg-type]
        train_cases=[c.name for c in train_cases],
        val_cases=[c.name for c in val_cases],
        weights_cases=[c.name for c in weights_cases],
        arch_cases=[c.name for c in arch_cases],
        test=loader(test_ds, False, 1, 4, val_workers) if test_ds is not None else None,
        test_cases=[c.name for c in held_out],
    )
