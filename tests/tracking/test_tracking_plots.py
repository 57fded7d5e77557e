"""pareto.png a reader can read: labels that do not overlap, legend outside the data, log-x,
padded y, the frontier drawn even for one point on validation Dice, each test Dice beside it and
named as reported only."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from raynas.tracking import ParetoPoint, pareto_front, save_frontier
from raynas.tracking.plots import frontier_figure

# name, validation Dice, params, kind
TABLES = {
    # the smoke search: a small searched net and a dominated-or-not U-Net
    "searched_and_unet": [("searched#0", 0.32, 13_000, "searched"),
                          ("unet", 0.43, 1_400_000, "baseline")],
    "one_point": [("searched#0", 0.5, 12_000, "searched")],
    # a crowd: near-identical Dice and sizes, labels must still find free spots
    "crowded": [(f"searched#{i}", 0.40 + 0.004 * i, 10_000 + 700 * i, "searched")
                for i in range(8)] + [("unet", 0.41, 1_400_000, "baseline"),
                                      ("unetpp", 0.415, 1_600_000, "baseline")],
    "long_names": [("a-very-long-network-name-indeed", 0.9, 2_000, "searched"),
                   ("searched3-0-1-2-2-1-1-0-0-0-0-0-0", 0.5, 30_000, "searched"),
                   ("baseline-dynunet-planned", 0.91, 9_000_000, "baseline"),
                   ("mid", 0.2, 50_000, "searched")],
}  # fmt: skip


def _points(rows: list[tuple[str, float, int, str]]) -> list[ParetoPoint]:
    return [ParetoPoint(n, val_dice=d, params=p, kind=k, run_id=f"r{n}") for n, d, p, k in rows]


def _overlap(a, b) -> bool:
    return min(a.x1, b.x1) > max(a.x0, b.x0) and min(a.y1, b.y1) > max(a.y0, b.y0)


@pytest.mark.parametrize("rows", TABLES.values(), ids=TABLES.keys())
def test_labels_legend_axes(rows: list[tuple[str, float, int, str]]) -> None:
    points = _points(rows)
    fig, labels = frontier_figure(points, pareto_front(points))
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    # every point labelled with its network's one name (its size is the x axis)
    assert sorted(t.get_text() for t in labels) == sorted(p.network for p in points)
    boxes = [t.get_window_extent(renderer) for t in labels]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert not _overlap(a, b), "two labels overlap"
    frame = ax.get_window_extent(renderer)
    for box in boxes:  # inside the axes: never past the frame, never under the legend
        assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0
        assert box.y1 <= frame.y1
    legend = ax.get_legend().get_window_extent(renderer)
    assert legend.x0 >= frame.x1, "the legend must sit outside the data"
    assert ax.get_xscale() == "log"
    lo, hi = ax.get_ylim()
    dice = [p.val_dice for p in points]
    assert lo < min(dice) and hi > max(dice)  # padded
    assert min(dice) - lo >= 0.02 and hi - max(dice) >= 0.02
    x_lo, x_hi = ax.get_xlim()
    assert x_lo < min(p.params for p in points) and x_hi > max(p.params for p in points)


def test_one_point_frontier_is_a_line() -> None:
    points = _points(TABLES["one_point"])
    fig, _ = frontier_figure(points, points)
    lines = [ln for ln in fig.axes[0].get_lines() if ln.get_label() == "frontier"]
    assert len(lines) == 1
    xs, ys = lines[0].get_data()
    assert len(xs) >= 3 and len(set(xs)) >= 2 and len(set(ys)) >= 2  # a staircase, not a dot


def test_frontier_staircase_goes_through_every_front_point() -> None:
    points = _points(TABLES["crowded"])
    front = pareto_front(points)
    fig, _ = frontier_figure(points, front)
    (line,) = [ln for ln in fig.axes[0].get_lines() if ln.get_label() == "frontier"]
    vertices = set(zip(*line.get_data(), strict=True))
    assert all((p.params, p.val_dice) in vertices for p in front)


def test_validation_dice_plotted_test_dice_beside() -> None:
    """The points (and their labels, and the staircase) sit at their validation Dice; each test
    Dice is a cross of its own legend entry, "reported only"."""
    from raynas.tracking.plots import TEST_LABEL

    points = [ParetoPoint("a", val_dice=0.6, params=1000, test_dice=0.55),
              ParetoPoint("b", val_dice=0.7, params=9000, test_dice=0.95),
              ParetoPoint("r", val_dice=0.5, params=5000, test_dice=0.5, kind="random")]
    fig, labels = frontier_figure(points, pareto_front(points))
    ax = fig.axes[0]
    assert ax.get_ylabel() == "validation Dice" and "validation Dice" in ax.get_title()
    assert sorted(t.xy[1] for t in labels) == [0.5, 0.6, 0.7]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert TEST_LABEL in legend and "random control" in legend
    crosses = [c for c in ax.collections if c.get_label() == TEST_LABEL]
    assert len(crosses) == 1
    lo, hi = ax.get_ylim()
    assert lo < 0.5 and hi > 0.95  # the test figures are inside the axes too


def test_png_written_and_nan_tolerated(tmp_path: Path) -> None:
    broken = ParetoPoint("broken", val_dice=math.nan, params=5)
    points = _points(TABLES["searched_and_unet"]) + [broken]
    path = save_frontier(points, tmp_path, stem="pareto")["png"]
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    empty = save_frontier([broken], tmp_path, stem="empty")["png"]
    assert empty.stat().st_size > 0


@pytest.mark.parametrize(
    ("name", "kind", "label"),
    [("searched2-0-1-1-0#1", "searched", "searched2-1"),  # a trial name: its network's name
     ("baseline-unet#0", "baseline", "unet-0"), ("random0#0", "random", "random0-0"),
     ("tiny#0", "searched", "tiny-0")],
)  # fmt: skip
def test_point_labels(name: str, kind: str, label: str) -> None:
    """The plot names a point as MLflow names its run and model: no size inside the name."""
    from raynas.tracking.plots import point_text

    assert point_text(ParetoPoint(name, val_dice=0.3, params=13_000, kind=kind)) == label
