"""Deterministic case splits: the held-out test cases, k-fold train/validation of the rest, and
the bi-level weights/arch halves.

Splits depend only on the case names and the seed (not on the order of ``dataset.json``), so
every Ray trial of a search sees the same folds. :func:`holdout_split` comes first: the k-fold
split is made from the cases it leaves, so no search, selection, early stopping or best-epoch
choice ever sees a test case. :func:`case_split` does all of it as a preset asks.

Example:
    >>> rest, test = holdout_split([f"c{i}" for i in range(10)], fraction=0.2, seed=0)
    >>> len(rest), len(test), set(rest) & set(test)
    (8, 2, set())
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

__all__ = ["kfold_split", "bilevel_split", "holdout_split", "case_split"]

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


def holdout_split(
    items: Sequence[T],
    *,
    fraction: float = 0.2,
    names: Sequence[str] | None = None,
    seed: int = 0,
    keep: int = 0,
) -> tuple[list[T], list[T]]:
    """Splits ``items`` into ``(rest, test)``: the held-out test cases and the others.

    ``names`` (explicit case names, ``data.test_cases``) wins over ``fraction``
    (``data.test_fraction``): then ``round(fraction * n)`` cases, at least one when
    ``fraction > 0``, drawn by a seeded permutation of the items sorted by name (salt 2,
    independent of the k-fold order). ``keep`` is how many cases the rest must still hold
    (``data.folds``).

    Raises:
        DataError: an unknown name in ``names``, or too few cases left for ``keep``.
        ValueError: ``fraction`` outside ``[0, 1)``.
    """
    if not 0 <= fraction < 1:
        raise ValueError(f"test fraction must be in [0, 1), got {fraction}")
    if names is not None:
        wanted = list(dict.fromkeys(str(n) for n in names))
        known = {_key(c) for c in items}
        unknown = [n for n in wanted if n not in known]
        if unknown:
            some = ", ".join(sorted(known)[:5])
            raise DataError(
                f"data.test_cases: unknown case(s) {', '.join(unknown[:5])}; cases look like: "
                f"{some}"
            )
        chosen = set(wanted)
        test = [c for c in sorted(items, key=_key) if _key(c) in chosen]
        what = "data.test_cases"
    else:
        count = max(1, round(fraction * len(items))) if fraction > 0 and items else 0
        test = sorted(_shuffled(items, seed, 2)[:count], key=_key)
        what = f"data.test_fraction={fraction:g}"
    held = {id(c) for c in test}
    rest = [c for c in items if id(c) not in held]
    if len(rest) < keep:
        raise DataError(
            f"{what} holds out {len(test)} of {len(items)} cases, leaving {len(rest)}; "
            f"data.folds={keep} needs at least {keep} (lower one of them or use more cases)"
        )
    return rest, test


def case_split(
    items: Sequence[T],
    *,
    folds: int = 5,
    fold: int = 0,
    seed: int = 0,
    test_fraction: float = 0.0,
    test_cases: Sequence[str] | None = None,
) -> dict[str, list[T]]:
    """The whole split of a run: ``{"test", "train", "val"}`` (test first, then k-fold of the
    rest). With ``test_fraction=0`` and no ``test_cases``, ``test`` is empty."""
    rest, test = holdout_split(
        items, fraction=test_fraction, names=test_cases, seed=seed, keep=folds
    )
    train, val = kfold_split(rest, folds=folds, fold=fold, seed=seed)
    return {"test": test, "train": train, "val": val}
