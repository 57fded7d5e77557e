"""Data layer: MSD reader, synthetic tasks, MONAI transforms, caching, splits and loaders.

Importing this package is cheap (no torch, no MONAI): those load when loaders are built.

Example:
    >>> from raynas.data import open_dataset, build_loaders
    >>> ds = open_dataset("synthetic", synthetic_cases=6)  # doctest: +SKIP
    >>> bundle = build_loaders(ds, folds=3, patch_size=(32, 32, 16))  # doctest: +SKIP
"""

from __future__ import annotations

from raynas.data.loaders import CACHE_MODES, DataBundle, build_loaders
from raynas.data.msd import Case, MSDDataset, open_dataset, read_msd
from raynas.data.splits import bilevel_split, case_split, holdout_split, kfold_split
from raynas.data.synthetic import cache_root, ensure_synthetic, generate_case, write_synthetic
from raynas.data.tasks import DATASETS, DatasetInfo, get_dataset_info, list_datasets
from raynas.data.transforms import base_transforms, train_transforms, val_transforms
from raynas.data.validate import CaseReport, check_case, check_dataset

__all__ = [
    "CACHE_MODES",
    "DATASETS",
    "Case",
    "CaseReport",
    "DataBundle",
    "DatasetInfo",
    "MSDDataset",
    "base_transforms",
    "bilevel_split",
    "build_loaders",
    "cache_root",
    "check_case",
    "check_dataset",
    "ensure_synthetic",
    "generate_case",
    "get_dataset_info",
    "kfold_split",
    "holdout_split",
    "case_split",
    "list_datasets",
    "open_dataset",
    "read_msd",
    "train_transforms",
    "val_transforms",
    "write_synthetic",
]
