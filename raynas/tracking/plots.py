"""The frontier plot: validation Dice against parameter count (log scale), front as a step line,
each network's held-out test Dice drawn beside it (reported only: it decides nothing).

Uses matplotlib's object API with the Agg canvas (no ``pyplot``, no global figure state, no
display needed), so it is safe on headless machines and inside Ray workers.

The plot a reader gets: log-x parameters, padded y, the legend outside the data (right of the
axes), every point labelled with its name and size (labels placed greedily so that they overlap
neither each other nor a marker, and stay inside the axes), the frontier drawn as a staircase
(also for a single point) on **validation Dice** (what chose the frontier), and each network's
**test Dice** as a small cross joined to its point by a dotted line (legend: "test Dice
(reported only)", the held-out cases' Dice). Every kind has its own marker in the legend:
searched (circle), baseline (square), random control (triangle). A network that did not learn
(validation Dice 0.00 on every epoch) is a grey cross labelled "did not learn".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from matplotlib.figure import Figure

from raynas.tracking.names import network_name

__all__ = [
    "frontier_figure", "point_dice", "point_text", "dice_label",
]  # fmt: skip


class ParetoPoint(Protocol):
    """What the plot reads of a point (:class:`raynas.tracking.pareto.ParetoPoint` has it)."""

    name: str
    val_dice: float
    test_dice: float
    params: int
    kind: str


_SEARCHED = {"marker": "o", "color": "tab:blue", "label": "searched"}
_BASELINE = {"marker": "s", "color": "tab:orange", "label": "baseline"}
_NOT_LEARNED = {"marker": "x", "color": "tab:gray", "label": "did not learn"}
_RANDOM = {"marker": "^", "color": "tab:green", "label": "random control"}
_KINDS = (("searched", _SEARCHED), ("baseline", _BASELINE), ("random", _RANDOM))
TEST_LABEL = "test Dice (reported only)"
# Label offsets from the point (points): tried in order, the first free one wins.
_OFFSETS = [
    (7, 6, "left", "bottom"), (7, -6, "left", "top"), (-7, 6, "right", "bottom"),
    (-7, -6, "right", "top"), (0, 10, "center", "bottom"), (0, -10, "center", "top"),
    (10, 0, "left", "center"), (-10, 0, "right", "center"), (7, 20, "left", "bottom"),
    (7, -20, "left", "top"), (-7, 20, "right", "bottom"), (-7, -20, "right", "top"),
    (0, 30, "center", "bottom"), (0, -30, "center", "top"), (20, 34, "left", "bottom"),
    (20, -34, "left", "top"), (-20, 34, "right", "bottom"), (-20, -34, "right", "top"),
]  # fmt: skip
_MARKER_PX = 7.0  # half the side of the box kept free around every marker (pixels)


def point_dice(p: Any) -> float:
    """The Dice a point is plotted (and picked) at: its validation Dice."""
    return float(p.val_dice)


def test_dice_of(p: Any) -> float:
    """A point's held-out test Dice (NaN when it has none): drawn beside, never picked by."""
    return float(getattr(p, "test_dice", math.nan))


def _learned(p: Any) -> bool:
    return bool(getattr(p, "learned", True))


def point_text(p: Any) -> str:
    """A point's label on the plot: the network's one name
    (:func:`raynas.tracking.names.network_name`; its size is the x axis), and ``did not learn``
    where it did not (:attr:`raynas.tracking.pareto.ParetoPoint.learned`).

    Example:
        >>> from raynas.tracking.pareto import ParetoPoint
        >>> point_text(ParetoPoint("baseline-unet#0", params=1_411_787, kind="baseline",
        ...                        val_dice=0.0))
        'unet-0: did not learn'
    """
    text = network_name(p.name, getattr(p, "kind", "searched"))
    return text if _learned(p) else f"{text}: did not learn"


def dice_label(points: Sequence[Any]) -> str:
    """The frontier's Dice, as titles and tables name it: ``'validation Dice'``."""
    return "validation Dice"


def _overlap(a: Any, b: Any) -> float:
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return w * h if w > 0 and h > 0 else 0.0


def _outside(box: Any, frame: Any) -> float:
    inside = _overlap(box, frame)
    return box.width * box.height - inside


def _place_labels(fig: Figure, ax: Any, items: list[tuple[float, float, str]]) -> list[Any]:
    """Greedy label placement in display space: for each point (left to right), the first
    offset whose box hits no placed label, no marker and stays in the axes; else the least bad."""
    from matplotlib.transforms import Bbox

    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer).padded(-2)
    centres = [ax.transData.transform((x, y)) for x, y, _ in items]
    markers = [Bbox.from_extents(cx - _MARKER_PX, cy - _MARKER_PX, cx + _MARKER_PX,
                                 cy + _MARKER_PX) for cx, cy in centres]  # fmt: skip
    placed: list[Any] = []
    annotations = []
    order = sorted(range(len(items)), key=lambda i: (items[i][0], -items[i][1]))
    for i in order:
        x, y, text = items[i]
        best: tuple[float, Any] | None = None
        for dx, dy, ha, va in _OFFSETS:
            ann = ax.annotate(text, (x, y), textcoords="offset points", xytext=(dx, dy),
                              ha=ha, va=va, fontsize=8, zorder=5)  # fmt: skip
            box = ann.get_window_extent(renderer).padded(1)
            cost = sum(_overlap(box, b) for b in placed)
            cost += sum(_overlap(box, m) for j, m in enumerate(markers) if j != i)
            cost += 4 * _outside(box, frame)
            if best is None or cost < best[0]:
                if best is not None:
                    best[1].remove()
                best = (cost, ann)
            else:
                ann.remove()
            if cost == 0:
                break
        assert best is not None
        ann = best[1]
        placed.append(ann.get_window_extent(renderer).padded(1))
        annotations.append(ann)
    return annotations


def _limits(xs: list[float], ys: list[float]) -> tuple[tuple[float, float], tuple[float, float]]:
    lo_x, hi_x = min(xs), max(xs)
    lx, hx = math.log10(lo_x), math.log10(hi_x)
    pad = max(0.35, 0.18 * (hx - lx))
    lo_y, hi_y = min(ys), max(ys)
    span = max(hi_y - lo_y, 0.1)
    return (10 ** (lx - pad), 10 ** (hx + pad)), (lo_y - 0.3 * span, hi_y + 0.3 * span)


def frontier_figure(
    points: Sequence[ParetoPoint],
    front: Sequence[ParetoPoint],
    *,
    title: str | None = None,
) -> tuple[Figure, list[Any]]:
    """The frontier plot as a matplotlib ``Figure`` (Agg canvas) and its point labels.

    Returns:
        ``(figure, labels)``: ``labels`` are the annotation artists, one per finite point.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    label = dice_label(points)
    finite = [p for p in points if math.isfinite(point_dice(p))]
    fig = Figure(figsize=(8.5, 4.8), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.09, 0.12, 0.68, 0.76))
    ax.set_xscale("log")
    ax.set_xlabel("parameters (log scale)")
    ax.set_ylabel(label)
    ax.set_title(title or f"Pareto frontier on {label} (up) vs parameters (down); "
                 "test Dice reported beside", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    if not finite:
        ax.text(0.5, 0.5, "no point with a finite Dice", transform=ax.transAxes, ha="center")
        return fig, []
    xs = [max(p.params, 1) for p in finite]
    tests = [(max(p.params, 1), point_dice(p), test_dice_of(p)) for p in finite
             if math.isfinite(test_dice_of(p))]  # fmt: skip
    ys = [point_dice(p) for p in finite] + [t for _, _, t in tests]
    (x0, x1), (y0, y1) = _limits(xs, ys)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    groups = [(style, [p for p in finite if p.kind == kind and _learned(p)])
              for kind, style in _KINDS]
    groups.append((_NOT_LEARNED, [p for p in finite if not _learned(p)]))
    for style, pts in groups:
        if pts:
            ax.scatter([max(p.params, 1) for p in pts], [point_dice(p) for p in pts],
                       marker=style["marker"], color=style["color"], label=style["label"],
                       alpha=0.8, zorder=3)  # fmt: skip
    for i, (x, val, test) in enumerate(tests):
        ax.plot([x, x], [val, test], color="grey", linestyle=":", linewidth=0.8, zorder=1)
        ax.scatter([x], [test], marker="x", color="black", s=22, zorder=3,
                   label=TEST_LABEL if i == 0 else None)  # fmt: skip
    front_pts = sorted((p for p in front if math.isfinite(point_dice(p))),
                       key=lambda p: (p.params, point_dice(p)))  # fmt: skip
    if front_pts:
        fx = [max(p.params, 1) for p in front_pts]
        fy = [point_dice(p) for p in front_pts]
        # the staircase a dominated region lies under: up at each point, right to the edge
        sx, sy = [fx[0]], [y0]
        for i, (x, y) in enumerate(zip(fx, fy, strict=True)):
            sx.append(x)
            sy.append(y)
            if i + 1 < len(fx):
                sx.append(fx[i + 1])
                sy.append(y)
        sx.append(x1)
        sy.append(fy[-1])
        ax.plot(sx, sy, color="tab:red", linewidth=1.5, label="frontier", zorder=2)
        ax.scatter(fx, fy, facecolors="none", edgecolors="tab:red", s=110, zorder=4)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, fontsize=8,
              frameon=False)
    items = [(max(p.params, 1), point_dice(p), point_text(p)) for p in finite]
    return fig, _place_labels(fig, ax, items)


