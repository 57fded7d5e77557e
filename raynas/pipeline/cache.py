"""The preprocessing cache of a run: the resampled, normalised volumes every trial reads, built
once under ``<storage>/cache/<dataset>-<digest>/`` (later searches reuse it; see
:mod:`raynas.data.preprocess`)."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

__all__ = ["preprocess_cache"]

logger = logging.getLogger("raynas.search")


def preprocess_cache(storage: Path, preset: Any, dataset: Any) -> Path:
    """Builds (or finds and verifies) the preprocessed cases of ``dataset`` at the preset's
    spacing (else the dataset's target spacing) under ``<storage>/cache``; returns the folder."""
    from raynas.data.preprocess import preprocess_dataset

    t0 = time.perf_counter()
    spacing = tuple(preset.data.spacing or dataset.info.target_spacing)
    folder = preprocess_dataset(dataset, spacing=spacing, root=storage / "cache")
    logger.info("preprocessed cases: %s (%.1f s)", folder, time.perf_counter() - t0)
    return folder
