"""The frontier plot: test Dice against parameter count (log scale), front as a step line.

Uses matplotlib's object API with the Agg canvas (no ``pyplot``, no global figure state, no
display needed), so it is safe on headless machines and inside Ray workers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

__all__ = ["plot_frontier"]


class ParetoPoint(Protocol):
    """What the plot reads of a point (:class:`raynas.tracking.pareto.ParetoPoint` has it)."""

    name: str
    dice: float
    params: int
    kind: str

_SEARCHED = {"marker": "o", "color": "tab:blue", "label": "searched"}
_BASELINE = {"marker": "s", "color": "tab:orange", "label": "baseline"}


def plot_frontier(
    points: Sequence[ParetoPoint],
    front: Sequence[ParetoPoint],
    path: str | Path,
    *,
    title: str = "Pareto frontier (test Dice up, parameters down)",
) -> Path:
    """Save the frontier plot of ``points`` (with ``front`` highlighted) as a PNG at ``path``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    finite = [p for p in points if math.isfinite(p.dice)]
    fig = Figure(figsize=(7, 4.5), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for kind, style in (("searched", _SEARCHED), ("baseline", _BASELINE)):
        pts = [p for p in finite if p.kind == kind]
        if pts:
            ax.scatter(
                [max(p.params, 1) for p in pts],
                [p.dice for p in pts],
                marker=style["marker"],
                color=style["color"],
                label=style["label"],
                alpha=0.75,
                zorder=3,
            )
    for p in finite:
        if p.kind == "baseline":
            ax.annotate(
                p.name,
                (max(p.params, 1), p.dice),
                textcoords="offset points",
                xytext=(5, 5),
                fontsize=8,
            )
    if front:
        xs = [max(p.params, 1) for p in front]
        ys = [p.dice for p in front]
        ax.step(xs, ys, where="post", color="tab:red", linewidth=1.5, label="frontier", zorder=2)
        ax.scatter(xs, ys, facecolors="none", edgecolors="tab:red", s=90, zorder=4)
    ax.set_xscale("log")
    ax.set_xlabel("parameters")
    ax.set_ylabel("test Dice (held-out cases)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    if finite:
        ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, format="png")
    return path
