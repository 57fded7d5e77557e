"""Deterministic case splits: k-fold train/validation, and the bi-level weights/arch halves.

Splits depend only on the case names and the seed (not on the order of ``dataset.json``), so
every Ray trial of a search sees the same folds.

Example:
    >>> train, val = kfold_split([f"c{i}" for i in range(10)], folds=5, fold=0, seed=0)
    >>> len(train), len(val)
    (8, 2)
    >>> weights, arch = bilevel_split(train, seed=0)
    >>> len(weights), len(arch), set(weights) & set(arch)
    (4, 4, set())
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import numpy as np

from raynas.errors import DataError

__all__ = ["kfold_split", "bilevel_split"]

T = TypeVar("T")


def _key(item: object) -> str:
    return str(getattr(item, "name", item))


def _shuffled(items: Sequence[T], seed: int, salt: int) -> list[T]:
    ordered = sorted(items, key=_key)
    perm = np.random.default_rng([seed, salt]).permutation(len(ordered))
    return [ordered[i] for i in perm]


def kfold_split(
    items: Sequence[T], *, folds: int = 5, fold: int = 0, seed: int = 0
) -> tuple[list[T], list[T]]:
    """Splits ``items`` (cases or names) into ``(train, val)`` for fold ``fold`` of ``folds``.

    The folds partition the items (sizes differ by at most one); the order is a seeded
    permutation of the items sorted by name.

    Raises:
        ValueError: ``folds < 2`` or ``fold`` outside ``0..folds-1``.
        DataError: fewer items than folds.
    """
    if folds < 2:
        raise ValueError(f"folds must be >= 2, got {folds}")
    if not 0 <= fold < folds:
        raise ValueError(f"fold must be in 0..{folds - 1}, got {fold}")
    if len(items) < folds:
        raise DataError(
            f"data.folds={folds} needs at least {folds} cases; the dataset has {len(items)} "
            "(lower data.folds or use more cases)"
        )
    order = _shuffled(items, seed, 0)
    chunks = np.array_split(np.arange(len(order)), folds)
    val_idx = set(chunks[fold].tolist())
    train = [c for i, c in enumerate(order) if i not in val_idx]
    val = [order[i] for i in chunks[fold]]
    return train, val


def bilevel_split(items: Sequence[T], *, seed: int = 0) -> tuple[list[T], list[T]]:
    """Splits training cases into disjoint ``(weights, arch)`` halves for bi-level search.

    Both halves are non-empty when there are >= 2 items (``weights`` gets the extra one of an
    odd count). With a single item both halves hold it (nothing else is possible).

    Raises:
        DataError: no items at all.
    """
    if not items:
        raise DataError("no training cases to split into weights/architecture halves")
    if len(items) == 1:
        return list(items), list(items)
    order = _shuffled(items, seed, 1)
    half = (len(order) + 1) // 2
    return order[:half], order[half:]
