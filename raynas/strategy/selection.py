"""Every selection rule of a search, in one place: pure functions of scores (no torch, no Ray,
no MLflow).

The pipeline (:mod:`raynas.pipeline`) and the benchmarks (:mod:`raynas.bench`, e.g.
``benchmarks/equal_cost.py``) both call these functions, so a benchmark measures exactly the
picks ``raynas search`` makes:

- **coarse ranking** of a cluster's topologies: :func:`coarse_score` (``coarse.rank_by``: the
  validation loss, lower is better, or the validation Dice, higher is better) and
  :func:`leaders` (best score first; ties: the earlier topology);
- **survivors** of the coarse and fine stages (``top_k``): :func:`rank` and :func:`top_k` on the
  trials' validation Dice (ties: fewer parameters, then name); the ``asha`` coarse strategy
  ranks its stand-alone trials by their best :func:`coarse_score` (``score=``) instead;
- a **parameter-aware** survivors pick, :func:`top_k_pareto` (non-dominated fronts first): the
  idea the equal-cost benchmark tries (``--survivors pareto``); the pipeline does not use it;
- **frontier membership**: :func:`pareto_front` on validation Dice (up) and parameters (down);
- **the best model** of the retrain stage: :func:`best_model`;
- **searched vs random controls**: :func:`search_vs_random`.

What is ranked is anything with the attributes ``name``, ``val_dice`` and ``params`` (and
``kind`` for :func:`best_model` / :func:`search_vs_random`): a frontier point, or a
:class:`Candidate` wrapping another record (``ref``). **Test Dice is never read by a pick**: it
is carried beside (``test_dice``) to be reported, so scrambling the test labels changes no pick.

Example:
    >>> a = Candidate("a#0", val_dice=0.8, params=10)
    >>> b = Candidate("b#0", val_dice=0.7, params=20)  # dominated by a
    >>> [c.name for c in top_k([b, a], 1)], [c.name for c in pareto_front([a, b])]
    (['a#0'], ['a#0'])
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

__all__ = [
    "RANK_BY",
    "Candidate",
    "Scored",
    "best_by_val",
    "best_model",
    "coarse_score",
    "dominates",
    "leaders",
    "pareto_front",
    "rank",
    "search_vs_random",
    "top_k",
    "top_k_pareto",
]

RANK_BY = ("loss", "dice")


class Scored(Protocol):
    """What a selection rule reads of an item."""

    name: str
    val_dice: float
    params: int


S = TypeVar("S", bound=Scored)
G = TypeVar("G", bound=Hashable)


@dataclass(frozen=True)
class Candidate:
    """A record as the selection rules see it; ``ref`` carries the caller's own record.

    Example:
        >>> Candidate("searched0#0", val_dice=0.71, params=12_000, ref={"trial_id": "x"}).ref
        {'trial_id': 'x'}
    """

    name: str
    val_dice: float
    params: int
    kind: str = "searched"
    test_dice: float = math.nan  # reported beside; never read by a pick
    ref: Any = field(default=None, compare=False, repr=False)


def _val(item: Scored) -> float:
    v = float(item.val_dice)
    return v if math.isfinite(v) else -math.inf


def coarse_score(rank_by: str, *, dice: float, loss: float | None = None) -> float:
    """A topology's rank score with the shared weights, higher is better: minus the validation
    loss (``rank_by="loss"``) or the validation Dice (``"dice"``); a non-finite one is ``-inf``.

    Example:
        >>> coarse_score("loss", dice=0.4, loss=0.9), coarse_score("dice", dice=0.4, loss=0.9)
        (-0.9, 0.4)
    """
    if rank_by not in RANK_BY:
        raise ValueError(f"rank_by must be one of {', '.join(RANK_BY)}; got {rank_by!r}")
    value = -float(loss if loss is not None else math.nan) if rank_by == "loss" else float(dice)
    return value if math.isfinite(value) else -math.inf


def leaders(scores: Mapping[G, float], n: int, order: Mapping[G, int] | None = None) -> list[G]:
    """The ``n`` best-scored keys (e.g. topologies by :func:`coarse_score`), best first; ties:
    lower ``order``, else insertion order."""
    pos = order if order is not None else {g: i for i, g in enumerate(scores)}
    return sorted(scores, key=lambda g: (-scores[g], pos.get(g, len(pos))))[: max(0, n)]


def rank(items: Iterable[S], *, score: Callable[[S], float] | None = None) -> list[S]:
    """Items with a finite validation Dice, best first: validation Dice down, then parameters
    up, then name. Items without one are left out (a trial that failed or never reported).

    ``score`` replaces the validation Dice as what is ranked (higher is better), e.g. the
    ``asha`` coarse strategy's :func:`coarse_score` of each stand-alone trial.

    Example:
        >>> a, b = Candidate("a", val_dice=0.8, params=10), Candidate("b", val_dice=0.7, params=5)
        >>> [c.name for c in rank([a, b], score=lambda c: -c.params)]
        ['b', 'a']
    """
    key = score if score is not None else (lambda p: float(p.val_dice))
    ok = [(float(key(p)), p) for p in items]
    ok = [(v, p) for v, p in ok if math.isfinite(v)]
    return [p for _, p in sorted(ok, key=lambda vp: (-vp[0], int(vp[1].params), str(vp[1].name)))]


def top_k(items: Iterable[S], k: int, *, score: Callable[[S], float] | None = None) -> list[S]:
    """The ``k`` survivors of a stage (``coarse.top_k`` / ``fine.top_k``): :func:`rank`'s first
    (by ``score`` where given)."""
    if k < 0:
        raise ValueError(f"k must be >= 0; got {k}")
    return rank(items, score=score)[:k]


def top_k_pareto(items: Iterable[S], k: int) -> list[S]:
    """A parameter-aware ``top_k``: the first non-dominated front on (validation Dice up,
    parameters down) first, then the next front of what is left, ...; within a front by
    :func:`rank`. Items without a finite validation Dice are left out.

    Example:
        >>> a, b = Candidate("a", val_dice=0.8, params=50), Candidate("b", val_dice=0.79, params=60)
        >>> c = Candidate("c", val_dice=0.7, params=10)  # b is dominated by a; c is not
        >>> [x.name for x in top_k_pareto([a, b, c], 2)], [x.name for x in top_k([a, b, c], 2)]
        (['a', 'c'], ['a', 'b'])
    """
    if k < 0:
        raise ValueError(f"k must be >= 0; got {k}")
    left, out = rank(items), []
    while left and len(out) < k:
        front = [p for p in left if not any(dominates(q, p) for q in left if q is not p)]
        out += rank(front)
        left = [p for p in left if all(p is not f for f in front)]
    return out[:k]


def best_by_val(items: Iterable[S]) -> S | None:
    """The highest validation Dice (ties: fewer parameters, name); ``None`` if none is finite."""
    ranked = rank(items)
    return ranked[0] if ranked else None


def dominates(a: Scored, b: Scored) -> bool:
    """True if ``a`` has a validation Dice ``>=`` and parameters ``<=`` ``b``'s, one strictly;
    a point without a finite validation Dice dominates nothing, and anything dominates it."""
    if not math.isfinite(float(a.val_dice)):
        return False
    if not math.isfinite(float(b.val_dice)):
        return True
    va, vb = float(a.val_dice), float(b.val_dice)
    return va >= vb and a.params <= b.params and (va > vb or a.params < b.params)


def pareto_front(items: Iterable[S]) -> list[S]:
    """The non-dominated items on (validation Dice up, parameters down), sorted by parameters
    then validation Dice down, then name. Exact duplicates do not dominate each other (both
    stay); items without a finite validation Dice are never on it."""
    pts = list(items)
    front = [
        p for p in pts
        if math.isfinite(float(p.val_dice)) and not any(dominates(q, p) for q in pts if q is not p)
    ]  # fmt: skip
    return sorted(front, key=lambda p: (int(p.params), -_val(p), str(p.name)))


def best_model(items: Sequence[Any]) -> Any | None:
    """The search's best model: the searched network on the frontier (:func:`pareto_front` of
    all ``items``) with the highest validation Dice; else the best searched network; else the
    best of all (:func:`best_by_val` in each pool; nothing ranks by test Dice)."""
    items = list(items)
    front = pareto_front(items)
    for pool in (
        [p for p in front if p.kind == "searched"],
        [p for p in items if p.kind == "searched"],
        items,
    ):
        best = best_by_val(pool)
        if best is not None:
            return best
    return None


def search_vs_random(items: Sequence[Any]) -> dict[str, float | None]:
    """Best searched minus best random control (each the highest **validation** Dice of its kind,
    :func:`best_by_val`): ``val_dice`` and ``test_dice`` differences; ``None`` where either side
    is missing or its figure is not finite (never a number for an undefined difference)."""
    searched = best_by_val(p for p in items if p.kind == "searched")
    random = best_by_val(p for p in items if p.kind == "random")
    out: dict[str, float | None] = {"val_dice": None, "test_dice": None}
    if searched is None or random is None:
        return out
    for key in out:
        diff = float(getattr(searched, key, math.nan)) - float(getattr(random, key, math.nan))
        out[key] = diff if math.isfinite(diff) else None
    return out
