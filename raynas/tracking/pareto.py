"""The Pareto frontier of retrained networks: validation Dice up, parameter count down.

**Validation picks, test reports.** Frontier membership (``on_front``, the ``pareto=true`` tags)
is decided on each network's ``val_dice``: the validation Dice of its best epoch (the epoch that
validation chose). Its ``test_dice``, the mean foreground Dice of those weights on the held-out
test cases (``data.test_fraction`` / ``data.test_cases``), is measured once and only reported
beside it: scrambling the test labels changes the test figures and nothing else. Per class both
are kept (``per_class``: ``test_dice_<class>``, ``val_dice_<class>``). Files write the columns
``val_dice`` (the frontier's objective) and ``test_dice`` (reported).

Pure data (no MLflow): :class:`ParetoPoint`, :func:`pareto_front` (the rule itself lives in
:mod:`raynas.strategy.selection`), :func:`save_frontier` (CSV, JSON and a PNG plot) and
:func:`frontier_table` (a ``rich`` table). Logging the frontier on a parent run lives in
:mod:`raynas.tracking.frontier`.

A point is on the front iff no other point has ``val_dice >=`` and ``params <=`` with at least
one of the two strict. Exact duplicates (same validation Dice, same parameter count) do not
dominate each other, so both stay on the front; points with a non-finite validation Dice are
never on it.
A network that did not learn (:func:`learned`: validation Dice 0.00 on every epoch) keeps its
place in the files, but the table, the plot and MLflow say "did not learn" for it.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from raynas.strategy.selection import pareto_front

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

POINT_KINDS = ("searched", "baseline", "random")
CSV_COLUMNS = (
    "name", "trial", "kind", "stage", "val_dice", "test_dice", "params", "run_id", "on_front",
    "learned",
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
    """One trained network (a retrain trial, named ``<candidate>#<sample>``): its validation
    Dice (``val_dice``, the frontier's objective and what every pick uses), its parameter count,
    and its test Dice (``test_dice``, held-out cases, reported only).

    Example:
        >>> p = ParetoPoint("c2f-t3#0", val_dice=0.81, params=120_000, run_id="abc", test_dice=0.78)
        >>> p.kind, p.stage, p.val_dice, p.test_dice
        ('searched', 'retrain', 0.81, 0.78)
    """

    name: str
    val_dice: float  # validation Dice of the best epoch: the frontier's objective
    params: int
    run_id: str | None = None
    kind: str = "searched"
    stage: str = "retrain"
    test_dice: float = math.nan  # held-out test Dice of the same weights: reported only
    per_class: dict[str, float] = field(default_factory=dict, compare=False)

    @property
    def network(self) -> str:
        """The network's one display name (:func:`raynas.tracking.names.network_name`):
        ``searched0-0``, ``unet-0``, ``random1-0``; ``name`` is the trial's key."""
        from raynas.tracking.names import network_name

        return network_name(self.name, self.kind)

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
        object.__setattr__(self, "val_dice", float(self.val_dice))
        object.__setattr__(self, "test_dice", float(self.test_dice))
        object.__setattr__(self, "per_class", {k: float(v) for k, v in self.per_class.items()})

    def dominates(self, other: ParetoPoint) -> bool:
        """True if ``self`` is at least as good on both objectives (validation Dice, parameters)
        and better on one (:func:`raynas.strategy.selection.dominates`)."""
        from raynas.strategy.selection import dominates

        return dominates(self, other)


def _order(p: ParetoPoint) -> tuple:
    dice = p.val_dice if math.isfinite(p.val_dice) else -math.inf
    return (p.params, -dice, p.name, p.kind, p.run_id or "")


def sort_points(points: Iterable[ParetoPoint]) -> list[ParetoPoint]:
    """Deterministic order: parameters up, then validation Dice down, then name, kind, run id."""
    return sorted(points, key=_order)


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
            "name": p.network,
            "trial": p.name,
            "kind": p.kind,
            "stage": p.stage,
            "val_dice": p.val_dice,
            "test_dice": p.test_dice,
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

    The CSV and JSON hold every point (sorted by parameters): ``name`` (the network's one
    display name, :attr:`ParetoPoint.network`), ``trial`` (the trial's key, which names its
    weights ``models/<trial>.pt``), ``val_dice`` (the objective),
    ``test_dice`` (reported), the per-class columns and ``on_front``; the PNG plots validation
    Dice against parameters (log scale), the front as a step line, each network's test Dice
    beside it, every kind with its own marker and a label.

    Returns:
        ``{"csv": path, "json": path, "png": path}``.
    """
    from raynas.tracking.plots import frontier_figure

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
        "objectives": {"val_dice": "max", "params": "min"},
        "val_dice": "mean foreground Dice on the validation cases, best epoch: decides the "
        "frontier and every pick",
        "test_dice": "mean foreground Dice of the same weights on the held-out test cases: "
        "reported only, decides nothing",
        "points": [{k: _finite(v) for k, v in r.items()} for r in rows],
        "front": [r["name"] for r in rows if r["on_front"]],
    }
    fig, _ = frontier_figure(pts, pareto_front(pts))
    fig.savefig(paths["png"], format="png")
    legend = fig.axes[0].get_legend() if fig.axes else None
    # what pareto.png shows, readable without looking at it
    payload["plot"] = {"file": paths["png"].name, "y": "val_dice", "legend": (
        [t.get_text() for t in legend.get_texts()] if legend is not None else [])}
    paths["json"].write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return paths


def frontier_table(points: Iterable[ParetoPoint], *, title: str = "Pareto frontier") -> Table:
    """A ``rich`` table of all points (front first), for ``raynas pareto`` and ``raynas search``:
    the validation Dice that picked them beside the test Dice that only reports."""
    pts = list(points)
    front = pareto_front(pts)
    front_ids = {id(p) for p in front}
    rest = [p for p in sort_points(pts) if id(p) not in front_ids]
    table = _folding_table(title=title)
    # Nothing is ever cut. Where the terminal is narrow the run id folds onto more lines first;
    # names, kinds and numbers keep one line while the terminal has room for them, and fold
    # like the rest where it has not (:func:`_folding_table`).
    justify = {"front": "center", "name": "left", "kind": "left", "val Dice": "right",
               "test Dice": "right", "params": "right"}  # fmt: skip
    for header, side in justify.items():
        table.add_column(header, justify=side, overflow="fold", no_wrap=True)
    table.add_column("run id", overflow="fold")
    for p in [*front, *rest]:
        test = f"{p.test_dice:.4f}" if math.isfinite(p.test_dice) else "-"
        val = f"{p.val_dice:.4f}" if math.isfinite(p.val_dice) else "-"
        if not p.learned:
            test = DID_NOT_LEARN
        table.add_row(
            "*" if id(p) in front_ids else "",
            p.network,
            p.kind,
            val,
            test,
            f"{p.params:,}",
            p.run_id or "",
        )
    legend = "val Dice picks the frontier; test Dice (held-out cases) is reported only"
    versus = _versus_random(pts)
    table.caption = f"{legend}\n{versus}" if versus else legend
    return table


def _folding_table_class() -> type:
    from rich.cells import cell_len
    from rich.table import Table

    class FoldingTable(Table):
        """A table whose ``no_wrap`` columns keep one line only where the console is wide
        enough for all of them at once beside 8 characters of each other column; otherwise
        every column may fold (never crop)."""

        def __rich_console__(self, console, options):  # noqa: ANN001, ANN204 - rich's protocol
            keep = [c for c in self.columns if c.no_wrap]
            need = sum(max(cell_len(str(x)) for x in [c.header, *c.cells]) for c in keep)
            need += 8 * (len(self.columns) - len(keep)) + 3 * len(self.columns) + 1  # borders
            if need > options.max_width:
                for column in keep:
                    column.no_wrap = False
            try:
                yield from super().__rich_console__(console, options)
            finally:
                for column in keep:
                    column.no_wrap = True

    return FoldingTable


def _folding_table(**kwargs: object) -> Table:
    """A ``rich`` table (``kwargs`` as for ``Table``) whose ``no_wrap`` columns fold only where
    the console is too narrow for all of them (rich is imported on first use)."""
    return _folding_table_class()(**kwargs)


def _versus_random(points: Sequence[ParetoPoint]) -> str | None:
    """The table's caption where random controls ran: best searched minus best random control,
    each best by validation Dice (:func:`raynas.strategy.selection.search_vs_random`)."""
    from raynas.strategy.selection import search_vs_random

    if not any(p.kind == "random" for p in points):
        return None
    diff = search_vs_random(points)
    text = {k: "n/a" if v is None else f"{v:+.4f}" for k, v in diff.items()}
    return (f"searched vs random control (best of each by val Dice): val Dice {text['val_dice']}"
            f", test Dice {text['test_dice']}")
