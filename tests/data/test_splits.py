"""k-fold and bi-level splits: deterministic by seed, disjoint, covering."""

from __future__ import annotations

import pytest

from raynas.data import bilevel_split, kfold_split
from raynas.errors import DataError

NAMES = [f"case_{i:02d}" for i in range(11)]


@pytest.mark.parametrize("folds", [2, 3, 5])
def test_kfold_partitions_and_is_deterministic(folds: int) -> None:
    vals = []
    for fold in range(folds):
        train, val = kfold_split(NAMES, folds=folds, fold=fold, seed=3)
        assert set(train) | set(val) == set(NAMES) and not set(train) & set(val)
        assert (train, val) == kfold_split(NAMES, folds=folds, fold=fold, seed=3)
        vals += val
    assert sorted(vals) == NAMES  # every case is validated exactly once
    sizes = [len(kfold_split(NAMES, folds=folds, fold=f, seed=3)[1]) for f in range(folds)]
    assert max(sizes) - min(sizes) <= 1


def test_kfold_depends_on_seed_not_on_input_order() -> None:
    a = kfold_split(NAMES, folds=5, fold=0, seed=0)
    assert a == kfold_split(list(reversed(NAMES)), folds=5, fold=0, seed=0)
    assert any(kfold_split(NAMES, folds=5, fold=0, seed=s) != a for s in range(1, 5))


@pytest.mark.parametrize("n", [2, 3, 4, 7, 10])
def test_bilevel_halves_are_disjoint_and_non_empty(n: int) -> None:
    weights, arch = bilevel_split(NAMES[:n], seed=1)
    assert weights and arch and not set(weights) & set(arch)
    assert sorted(weights + arch) == NAMES[:n]
    assert abs(len(weights) - len(arch)) <= 1
    assert (weights, arch) == bilevel_split(NAMES[:n], seed=1)


def test_bilevel_single_case_is_shared() -> None:
    assert bilevel_split(["a"], seed=0) == (["a"], ["a"])


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"folds": 1, "fold": 0}, ValueError),
        ({"folds": 3, "fold": 3}, ValueError),
        ({"folds": 12, "fold": 0}, DataError),
    ],
)
def test_kfold_rejects_bad_options(kwargs: dict, error: type) -> None:
    with pytest.raises(error):
        kfold_split(NAMES, **kwargs)


def test_splits_work_on_cases(synthetic_dataset) -> None:
    train, val = kfold_split(synthetic_dataset.cases, folds=3, fold=1, seed=0)
    weights, arch = bilevel_split(train, seed=0)
    assert len(val) == 2 and len(train) == 4 and len(weights) == len(arch) == 2
    assert {c.name for c in weights}.isdisjoint(c.name for c in arch)
