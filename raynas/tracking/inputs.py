"""The dataset of a run as an MLflow input (the runs table's "Dataset" column): its name, a
digest of its cases, where it comes from, and the split (fold, folds, held-out test split)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from mlflow.entities import Dataset, DatasetInput, InputTag

from raynas.tracking.runs import client_for
from raynas.tracking.uri import TrackingTarget

__all__ = ["dataset_digest", "log_dataset_input"]


def dataset_digest(name: str, case_names: Sequence[str], *, seed: int | None = None) -> str:
    """A short digest (16 hex digits) of a dataset's name, case names and (synthetic) seed.

    Example:
        >>> dataset_digest("synthetic", ["case_000", "case_001"], seed=0)[:4]  # doctest: +SKIP
        '3f2a'
    """
    payload = json.dumps({"name": name, "cases": sorted(case_names), "seed": seed})
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def log_dataset_input(
    target: TrackingTarget,
    run_id: str,
    *,
    name: str,
    case_names: Sequence[str],
    source: str,
    split: Mapping[str, Any],
    seed: int | None = None,
) -> str:
    """Logs the dataset as an input of ``run_id`` (context ``training``); returns its digest.

    ``split`` (fold, folds, test cases, ...) goes into the dataset's profile beside the number
    of cases, so the UI shows it with the dataset.
    """
    digest = dataset_digest(name, case_names, seed=seed)
    profile = json.dumps({"cases": len(case_names), **dict(split)}, default=str)
    dataset = Dataset(
        name=name, digest=digest, source_type="local", source=json.dumps({"uri": source}),
        profile=profile,
    )  # fmt: skip
    tags = [InputTag(key="mlflow.data.context", value="training")]
    client_for(target).log_inputs(run_id, datasets=[DatasetInput(dataset=dataset, tags=tags)])
    return digest
