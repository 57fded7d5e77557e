"""k-fold and bi-level splits: deterministic by seed, disjoint, covering."""

from __future__ import annotations

import pytest

from raynas.data import bilevel_split, case_split, holdout_split, kfold_split
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


# ----------------------------------------------------------------- held-out test cases


@pytest.mark.parametrize(
    ("n", "fraction", "expected"),
    [(11, 0.2, 2), (8, 0.2, 2), (6, 0.2, 1), (3, 0.1, 1), (10, 0.5, 5), (5, 0.0, 0)],
)
def test_holdout_sizes_and_at_least_one(n: int, fraction: float, expected: int) -> None:
    rest, test = holdout_split(NAMES[:n], fraction=fraction, seed=0)
    assert len(test) == expected and not set(rest) & set(test)
    assert sorted(rest + test) == NAMES[:n]


def test_holdout_is_deterministic_per_seed_not_input_order() -> None:
    a = holdout_split(NAMES, fraction=0.3, seed=4)
    assert a == holdout_split(NAMES, fraction=0.3, seed=4)
    rest, test = holdout_split(list(reversed(NAMES)), fraction=0.3, seed=4)
    assert test == a[1] and sorted(rest) == sorted(a[0])
    assert any(holdout_split(NAMES, fraction=0.3, seed=s)[1] != a[1] for s in range(5))


def test_explicit_test_cases_win_and_unknown_names_are_named() -> None:
    rest, test = holdout_split(NAMES, fraction=0.5, names=["case_07", "case_02"], seed=0)
    assert test == ["case_02", "case_07"] and len(rest) == 9
    with pytest.raises(DataError, match=r"data.test_cases: unknown case\(s\) case_99"):
        holdout_split(NAMES, names=["case_99"], seed=0)


def test_kfold_is_made_from_the_non_test_cases_only() -> None:
    """No fold's train or validation cases ever include a test case."""
    for fold in range(4):
        split = case_split(NAMES, folds=4, fold=fold, seed=1, test_fraction=0.2)
        assert len(split["test"]) == 2
        assert not set(split["test"]) & (set(split["train"]) | set(split["val"]))
        assert sorted(split["test"] + split["train"] + split["val"]) == NAMES
        assert split["test"] == case_split(NAMES, folds=4, fold=0, seed=1, test_fraction=0.2)[
            "test"
        ]  # the same test cases in every fold


def test_too_few_cases_left_for_the_folds() -> None:
    with pytest.raises(DataError, match=r"data.test_fraction=0.5 holds out 3 of 6 .* data.folds=4"):
        case_split(NAMES[:6], folds=4, seed=0, test_fraction=0.5)


def test_smoke_preset_split_leaves_train_and_val_cases() -> None:
    """The smoke preset (8 synthetic cases, 4 folds): test, train and val all non-empty, for
    every fold, and the bi-level halves of the training cases too."""
    from raynas.config import load_preset

    preset = load_preset("smoke")
    cases = [f"synthetic_{i:03d}" for i in range(preset.data.synthetic_cases)]
    for fold in range(preset.data.folds):
        split = case_split(
            cases,
            folds=preset.data.folds,
            fold=fold,
            seed=preset.seed,
            test_fraction=preset.data.test_fraction,
            test_cases=preset.data.test_cases,
        )
        assert len(split["test"]) >= 1 and len(split["val"]) >= 1 and len(split["train"]) >= 2
        weights, arch = bilevel_split(split["train"], seed=preset.seed)
        assert weights and arch and not set(weights) & set(arch)


def test_loaders_hold_the_test_cases_apart(synthetic_dataset) -> None:
    from raynas.data import build_loaders

    bundle = build_loaders(
        synthetic_dataset, mode="3d", patch_size=(16, 16, 8), folds=3, test_fraction=0.2
    )
    assert len(bundle.test_cases) == 1 and bundle.test is not None
    seen = set(bundle.train_cases) | set(bundle.val_cases)
    assert not set(bundle.test_cases) & seen and len(seen) == 5
    (batch,) = list(bundle.test)  # whole volumes, one per batch
    assert batch["image"].shape[0] == 1
    none = build_loaders(synthetic_dataset, mode="3d", patch_size=(16, 16, 8), folds=3)
    assert none.test is None and none.test_cases == [] and len(none.val_cases) == 2
