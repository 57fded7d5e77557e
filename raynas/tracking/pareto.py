"""The Pareto frontier of retrained networks: test Dice up, parameter count down.

A point's ``dice`` is its **test Dice**: the mean foreground Dice of its best-epoch weights on
the held-out test cases (``data.test_fraction`` / ``data.test_cases``), which no search,
selection or best-epoch choice saw. The validation Dice of its best epoch stays beside it
(``val_dice``), and per class both (``per_class``: ``test_dice_<class>``, ``val_dice_<class>``).
Files write the columns ``test_dice`` and ``val_dice``.

Pure data (no MLflow): :class:`ParetoPoint`, :func:`pareto_front`, :func:`save_frontier` (CSV,
JSON and a PNG plot) and :func:`frontier_table` (a ``rich`` table). Logging the frontier on a
parent run lives in :mod:`raynas.tracking.frontier`.

A point is on the front iff no other point has ``dice >=`` and ``params <=`` with at least one
of the two strict. Exact duplicates (same Dice, same parameter count) do not dominate each
other, so both stay on the front; points with a non-finite Dice are never on it. A network that
did not learn (:func:`learned`: validation Dice 0.00 on every epoch) keeps its place in the
files, but the table, the plot and MLflow say "did not learn" for it instead of its Dice.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.table import Table

__all__ = [
    "POINT_KINDS",
    "ParetoPoint",
    "pareto_front",
    "sort_points",
    "save_frontier",
    "frontier_table",
    "learned",
    "DID_NOT_LEARN",
    "LEARNED_MIN_DICE",
]

POINT_KINDS = ("searched", "baseline")
CSV_COLUMNS = (
    "name", "kind", "stage", "test_dice", "val_dice", "params", "run_id", "on_front", "learned",
)  # fmt: skip
DID_NOT_LEARN = "did not learn"
LEARNED_MIN_DICE = 0.01  # best validation Dice below this on every epoch: "did not learn"


def learned(val_dice: float) -> bool:
    """Whether a network learnt: False when its best validation Dice stayed at 0 (below
    :data:`LEARNED_MIN_DICE`, i.e. 0.00 to two decimals) on every epoch, so its other figures
    are no result; a NaN Dice (never validated) is not judged, True.

    A network that learnt nothing still scores noise above 0 (the U-Net before the fix peaked at
    0.007 on ``synthetic`` while predicting background), hence the margin over exact 0.

    Example:
        >>> learned(0.0), learned(0.007), learned(0.31), learned(float("nan"))
        (False, False, True, True)
    """
    return not (math.isfinite(val_dice) and val_dice < LEARNED_MIN_DICE)


@dataclass(frozen=True)
class ParetoPoint:
    """One trained network (a retrain trial, named ``<candidate>#<sample>``): its test Dice
    (``dice``, the frontier's objective), its validation Dice and its parameter count.

    Example:
        >>> p = ParetoPoint("c2f-t3#0", dice=0.78, params=120_000, run_id="abc", val_dice=0.81)
        >>> p.kind, p.stage, p.test_dice
        ('searched', 'retrain', 0.78)
    """

    name: str
    dice: float  # test Dice (held-out cases)
    params: int
    run_id: str | None = None
    kind: str = "searched"
    stage: str = "retrain"
    val_dice: float = math.nan  # validation Dice of the best epoch
    per_class: dict[str, float] = field(default_factory=dict, compare=False)

    @property
    def test_dice(self) -> float:
        return self.dice

    @property
    def learned(self) -> bool:
        """False when its validation Dice stayed at 0.00 on every epoch (:func:`learned`): the
        table, plot and MLflow then say "did not learn" instead of its Dice."""
        return learned(self.val_dice)

    def __post_init__(self) -> None:
        if self.kind not in POINT_KINDS:
            raise ValueError(f"kind must be one of {', '.join(POINT_KINDS)}; got {self.kind!r}")
        if isinstance(self.params, bool) or int(self.params) != self.params or self.params < 0:
            raise ValueError(f"params must be a non-negative integer; got {self.params!r}")
        object.__setattr__(self, "params", int(self.params))
        object.__setattr__(self, "dice", float(self.dice))
        object.__setattr__(self, "val_dice", float(self.val_dice))
        object.__setattr__(self, "per_class", {k: float(v) for k, v in self.per_class.items()})

    def dominates(self, other: ParetoPoint) -> bool:
        """True if ``self`` is at least as good on both objectives and better on one."""
        if not math.isfinite(self.dice):
            return False
        if not math.isfinite(other.dice):
            return True
        return (
            self.dice >= other.dice
            and self.params <= other.params
            and (self.dice > other.dice or self.params < other.params)
        )


def _order(p: ParetoPoint) -> tuple:
    dice = p.dice if math.isfinite(p.dice) else -math.inf
    return (p.params, -dice, p.name, p.kind, p.run_id or "")


def sort_points(points: Iterable[ParetoPoint]) -> list[ParetoPoint]:
    """Deterministic order: parameters up, then Dice down, then name, kind, run id."""
    return sorted(points, key=_order)


def pareto_front(points: Iterable[ParetoPoint]) -> list[ParetoPoint]:
    """The non-dominated points, sorted by parameters (ascending) then Dice (descending).

    Example:
        >>> a = ParetoPoint("a", dice=0.8, params=10)
        >>> b = ParetoPoint("b", dice=0.7, params=20)   # dominated by a
        >>> [p.name for p in pareto_front([a, b])]
        ['a']
    """
    pts = list(points)
    front = [
        p
        for p in pts
        if math.isfinite(p.dice) and not any(q.dominates(p) for q in pts if q is not p)
    ]
    return sort_points(front)


def _class_columns(points: Sequence[ParetoPoint]) -> list[str]:
    keys = {k for p in points for k in p.per_class}
    return sorted(k for k in keys if k.startswith("test_")) + sorted(
        k for k in keys if not k.startswith("test_")
    )


def _rows(points: Sequence[ParetoPoint]) -> list[dict]:
    front_ids = {id(p) for p in pareto_front(points)}
    extra = _class_columns(points)
    rows = []
    for p in sort_points(points):
        row = {
            "name": p.name,
            "kind": p.kind,
            "stage": p.stage,
            "test_dice": p.dice,
            "val_dice": p.val_dice,
            "params": p.params,
            "run_id": p.run_id,
            "on_front": id(p) in front_ids,
            "learned": p.learned,
        }
        row.update({k: p.per_class.get(k, math.nan) for k in extra})
        rows.append(row)
    return rows


def _finite(value: object) -> object:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def save_frontier(
    points: Iterable[ParetoPoint], out_dir: str | Path, *, stem: str = "frontier"
) -> dict[str, Path]:
    """Write ``<stem>.csv``, ``<stem>.json`` and ``<stem>.png`` into ``out_dir``.

    The CSV and JSON hold every point (sorted by parameters): ``test_dice``, ``val_dice``, the
    per-class columns and ``on_front``; the PNG plots test Dice against parameters (log scale),
    the front as a step line, baselines with their own marker and a label.

    Returns:
        ``{"csv": path, "json": path, "png": path}``.
    """
    from raynas.tracking.plots import plot_frontier

    pts = list(points)
    if not pts:
        raise ValueError("save_frontier needs at least one point")
    if not stem or "/" in stem:
        raise ValueError(f"stem must be a file name without '/', got {stem!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = _rows(pts)
    paths = {"csv": out / f"{stem}.csv", "json": out / f"{stem}.json", "png": out / f"{stem}.png"}
    with paths["csv"].open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=[*CSV_COLUMNS, *_class_columns(pts)])
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "run_id": row["run_id"] or ""})
    payload = {
        "objectives": {"test_dice": "max", "params": "min"},
        "dice": "test_dice: mean foreground Dice on the held-out test cases",
        "points": [{k: _finite(v) for k, v in r.items()} for r in rows],
        "front": [r["name"] for r in rows if r["on_front"]],
    }
    paths["json"].write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    plot_frontier(pts, pareto_front(pts), paths["png"])
    return paths


def frontier_table(points: Iterable[ParetoPoint], *, title: str = "Pareto frontier") -> Table:
    """A ``rich`` table of all points (front first), for ``raynas pareto``."""
    from rich.table import Table

    pts = list(points)
    front = pareto_front(pts)
    front_ids = {id(p) for p in front}
    rest = [p for p in sort_points(pts) if id(p) not in front_ids]
    table = Table(title=title)
    table.add_column("front", justify="center")
    table.add_column("name")
    table.add_column("kind")
    table.add_column("test Dice", justify="right")
    table.add_column("val Dice", justify="right")
    table.add_column("params", justify="right")
    table.add_column("run id")
    for p in [*front, *rest]:
        dice = f"{p.dice:.4f}" if math.isfinite(p.dice) else "-"
        val = f"{p.val_dice:.4f}" if math.isfinite(p.val_dice) else "-"
        if not p.learned:
            dice = DID_NOT_LEARN
        table.add_row(
            "*" if id(p) in front_ids else "",
            p.name,
            p.kind,
            dice,
            val,
            f"{p.params:,}",
            p.run_id or "",
        )
    return table
