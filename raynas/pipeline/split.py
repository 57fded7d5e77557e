"""The case split of a run, decided once on the driver and recorded where a reviewer looks.

:func:`run_split` applies :func:`raynas.data.case_split` to the dataset as the preset asks (the
same pure function every trial applies on its worker, so they agree): the held-out test cases
first (``data.test_fraction`` or ``data.test_cases``, seeded by ``seed``), then fold
``data.fold`` of ``data.folds`` of the other cases. :func:`write_split` saves it as
``split.json`` in the output folder; :func:`log_split` logs that file and the ``split.*`` params
on the parent MLflow run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["SPLIT_FILE", "log_split", "run_split", "write_split"]

SPLIT_FILE = "split.json"


def run_split(dataset: Any, preset: Any) -> dict[str, Any]:
    """``{"seed", "folds", "fold", "test_fraction", "test_cases_listed", "test", "train",
    "val"}`` (case names).

    Raises:
        DataError: an unknown name in ``data.test_cases``, or too few cases left for the folds.
    """
    from raynas.data import case_split

    data = preset.data
    split = case_split(
        [c.name for c in dataset.cases],
        folds=data.folds,
        fold=data.fold,
        seed=preset.seed,
        test_fraction=data.test_fraction,
        test_cases=data.test_cases,
    )
    return {
        "dataset": dataset.info.name,
        "seed": preset.seed,
        "folds": data.folds,
        "fold": data.fold,
        "test_fraction": data.test_fraction,
        "test_cases_listed": data.test_cases is not None,
        **{part: list(split[part]) for part in ("test", "train", "val")},
    }


def write_split(root: Path, split: dict[str, Any]) -> Path:
    path = Path(root) / SPLIT_FILE
    path.write_text(json.dumps(split, indent=1) + "\n", encoding="utf-8")
    return path


def log_split(target: Any, run_id: str, split: dict[str, Any]) -> None:
    """``split.json`` as an artifact of ``run_id``, and params ``split.test`` (the test case
    names), ``split.n_test``, ``split.n_train``, ``split.n_val``."""
    from raynas.tracking import log_params, log_text

    log_text(target, run_id, json.dumps(split, indent=1) + "\n", SPLIT_FILE)
    log_params(
        target,
        run_id,
        {
            "split.test": ",".join(split["test"]),
            **{f"split.n_{part}": len(split[part]) for part in ("test", "train", "val")},
        },
    )
