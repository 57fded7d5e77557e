"""raynas.bench.stats: hypervolume, the paired bootstrap and the null-safe figures."""

from __future__ import annotations

import math
import random

import pytest

from raynas.bench.stats import HV_REFERENCE, agreement, hypervolume, paired, percentile_in, spread


@pytest.mark.parametrize(
    ("points", "area"),
    [
        ([], 0.0),
        ([(0.5, 4.0)], 0.5 * 3.0),
        # two non-dominated points: 0.4 over [5, 7] plus the extra 0.2 over [6, 7]
        ([(0.4, 5.0), (0.6, 6.0)], 0.4 * 2 + 0.2 * 1),
        # a dominated point adds nothing, in any order
        ([(0.6, 6.0), (0.3, 6.5), (0.4, 5.0)], 0.4 * 2 + 0.2 * 1),
        # outside the reference box (Dice <= 0, >= 10**7 params, NaN): nothing
        ([(0.0, 4.0), (0.5, 7.5), (math.nan, 4.0)], 0.0),
    ],
)
def test_hypervolume_of_dice_up_log_params_down(points, area) -> None:
    assert HV_REFERENCE == (0.0, 7.0)
    assert hypervolume(points) == pytest.approx(area)


def test_paired_is_seeded_covers_the_mean_and_counts_undefined() -> None:
    rng = random.Random(1)
    diffs = [rng.gauss(0.05, 0.02) for _ in range(10)]
    a, b = paired([*diffs, None, math.nan]), paired([*diffs, None, math.nan])
    assert a == b  # seeded: the same interval every time
    assert a["n_seeds"] == 10 and a["n_undefined"] == 2 and a["resamples"] == 2000
    lo, hi = a["ci95"]
    assert lo < a["mean"] < hi and lo > 0  # 10 clearly positive differences exclude 0
    assert paired([0.1]) == {"mean": 0.1, "ci95": None, "n_seeds": 1, "n_undefined": 0,
                             "resamples": 2000}
    none = paired([None, None])
    assert none["mean"] is None and none["ci95"] is None and none["n_undefined"] == 2


def test_undefined_rank_agreement_is_null_not_zero() -> None:
    out = agreement([0.5, 0.5, 0.5], [0.1, 0.2, 0.3])  # a constant supernet score
    assert out["kendall_tau"] is None and out["spearman_rho"] is None
    assert out["top1_regret"] == pytest.approx(0.2)
    assert agreement([1, 2, 3], [1, 2, 3])["kendall_tau"] == pytest.approx(1.0)


def test_percentile_and_spread_of_nothing_are_null() -> None:
    assert percentile_in(0.5, [0.1, 0.5, 0.9, 0.2]) == pytest.approx(62.5)
    assert percentile_in(0.5, []) is None
    assert spread([None, math.nan])["mean"] is None and spread([1.0, None])["n_valid"] == 1
