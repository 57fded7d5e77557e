"""Statistics of the benchmarks: pure functions, no torch; an undefined figure is ``None``.

- :func:`percentile_in`: where a value lands among others (ties count half);
- :func:`agreement`: Kendall tau / Spearman rho between two rankings and the top-1 / top-3
  regret, ``None`` where a rank correlation is undefined (a constant ranking);
- :func:`hypervolume`: the area a set of (test Dice up, log10 params down) points dominates,
  up to a fixed reference point (:data:`HV_REFERENCE`);
- :func:`paired`: mean and a seeded percentile-bootstrap 95 % interval of per-seed differences,
  with ``n_seeds`` (the defined ones) and ``n_undefined`` (left out, never averaged as 0).

Example:
    >>> hypervolume([(0.5, 4.0)], reference=(0.0, 6.0))
    1.0
    >>> paired([0.1, None, 0.3], resamples=2000)["n_undefined"]
    1
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = [
    "HV_REFERENCE",
    "agreement",
    "hypervolume",
    "paired",
    "percentile_in",
    "spread",
]

# (test Dice, log10 params): a network with Dice <= 0 or >= 10M parameters adds no area
HV_REFERENCE: tuple[float, float] = (0.0, 7.0)


def percentile_in(value: float, others: Sequence[float]) -> float | None:
    """Where ``value`` lands among ``others`` (ties count half), 0-100; ``None`` without others.

    Example:
        >>> percentile_in(0.5, [0.1, 0.5, 0.9, 0.2])
        62.5
    """
    if not others:
        return None
    below = sum(o < value for o in others) + 0.5 * sum(o == value for o in others)
    return 100.0 * below / len(others)


def _finite(v: float) -> float | None:
    return float(v) if v is not None and math.isfinite(float(v)) else None


def agreement(proxy: Sequence[float], alone: Sequence[float]) -> dict[str, float | None]:
    """Rank agreement of ``proxy`` scores with stand-alone results (higher is better in both):
    Kendall tau, Spearman rho (``None`` when undefined), and the regret of trusting the proxy:
    best stand-alone result minus the best among the proxy's top 1 / top 3."""
    from scipy import stats

    tau = stats.kendalltau(proxy, alone).statistic if len(proxy) >= 2 else math.nan
    rho = stats.spearmanr(proxy, alone).statistic if len(proxy) >= 2 else math.nan
    order = sorted(range(len(proxy)), key=lambda i: -proxy[i])
    best = max(alone)
    return {
        "kendall_tau": _finite(tau),
        "spearman_rho": _finite(rho),
        "top1_regret": float(best - alone[order[0]]),
        "top3_regret": float(best - max(alone[i] for i in order[:3])),
    }


def hypervolume(points: Iterable[tuple[float, float]],
                reference: tuple[float, float] = HV_REFERENCE) -> float:
    """Area dominated by ``(dice, log10_params)`` points (Dice up, log10 params down) inside
    the box from ``reference`` = (lowest Dice, highest log10 params); 0.0 for no point there.

    Example:
        >>> hypervolume([(0.4, 5.0), (0.6, 6.0)], reference=(0.0, 7.0))  # 0.4*2 + 0.2*1
        1.0
    """
    ref_y, ref_x = reference
    pts = sorted((x, y) for y, x in points
                 if math.isfinite(y) and math.isfinite(x) and y > ref_y and x < ref_x)
    area, best_y = 0.0, ref_y
    for i, (x, y) in enumerate(pts):
        best_y = max(best_y, y)
        nxt = pts[i + 1][0] if i + 1 < len(pts) else ref_x
        area += (nxt - x) * (best_y - ref_y)
    return area


def paired(diffs: Sequence[float | None], *, resamples: int = 2000, seed: int = 0,
           level: float = 0.95) -> dict[str, Any]:
    """Mean of the defined per-seed differences and its percentile-bootstrap interval
    (``resamples`` resamples of the seeds with replacement, ``random.Random(seed)``): ``ci95``
    is ``None`` with fewer than 2 defined seeds, ``mean`` ``None`` with none."""
    values = [float(d) for d in diffs if d is not None and math.isfinite(float(d))]
    out: dict[str, Any] = {"mean": statistics.fmean(values) if values else None, "ci95": None,
                           "n_seeds": len(values), "n_undefined": len(diffs) - len(values),
                           "resamples": resamples}
    if len(values) >= 2:
        rng = random.Random(seed)
        n = len(values)
        means = sorted(statistics.fmean(rng.choices(values, k=n)) for _ in range(resamples))
        lo = means[int(math.floor((1 - level) / 2 * (resamples - 1)))]
        hi = means[int(math.ceil((1 + level) / 2 * (resamples - 1)))]
        out["ci95"] = [lo, hi]
    return out


def spread(values: Iterable[float | None]) -> dict[str, Any]:
    """Mean, population SD, min and max of the defined values, with ``n_valid``; every figure
    ``None`` when none is defined."""
    v = [float(x) for x in values if x is not None and math.isfinite(float(x))]
    if not v:
        return {"mean": None, "std": None, "min": None, "max": None, "n_valid": 0}
    return {"mean": statistics.fmean(v), "std": statistics.pstdev(v) if len(v) > 1 else 0.0,
            "min": min(v), "max": max(v), "n_valid": len(v)}
