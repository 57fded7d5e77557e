"""Pictures of derived architectures, drawn from the Architecture data alone (pure matplotlib).

- C2F: the stem, the path of cells over the resolution levels (level 0 = 1/2 at the top, deeper
  levels below, the channel width of each level on the left), each cell's operation(s) written
  in its box, the U-Net skips of the decoder cells as dashed arcs, and the head.
- Thrifty: the grid of cells ``X[k][j]`` (DN cells down the left diagonal, UP cells to the right),
  its edges (``in_1`` solid, the dense ``in_0`` skips dashed), and the DN and UP genotypes (each
  node's input edges and operations) in a panel beside it.
- Other spaces (baselines): a one-box summary of the JSON fields.

Uses the object API with the Agg canvas (no ``pyplot``, no display), so it runs headless.

Example:
    >>> from raynas.nets import load_architecture          # doctest: +SKIP
    >>> save_architecture_png(load_architecture("a.json"), "a.png")  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["architecture_figure", "save_architecture_png"]

_OP_COLORS = {
    "conv3": "#c6dbef", "conv2d": "#c6e5c6", "conv3x3x1": "#c6e5c6", "p3d": "#fdd0a2",
    "skip": "#eeeeee", "dil_conv3": "#dadaeb", "sep_conv3": "#fcbba1",
}  # fmt: skip
_DEFAULT_COLOR = "#f0f0d0"


def _data(arch: Any) -> dict[str, Any]:
    if isinstance(arch, Mapping):
        return dict(arch)
    if hasattr(arch, "to_dict"):
        return arch.to_dict()
    from raynas.nets.architecture import load_architecture

    return load_architecture(arch).to_dict()


def _figure(width: float, height: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110)
    FigureCanvasAgg(fig)
    return fig


def _box(ax: Axes, x: float, y: float, text: str, *, color: str, w: float, h: float) -> None:
    from matplotlib.patches import FancyBboxPatch

    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.02",
                                facecolor=color, edgecolor="#444444", linewidth=0.8, zorder=3))
    ax.text(x, y, text, ha="center", va="center", fontsize=7, zorder=4)


def _arrow(ax: Axes, a: tuple[float, float], b: tuple[float, float], **style: Any) -> None:
    from matplotlib.patches import FancyArrowPatch

    style = {"shrinkA": 12, "shrinkB": 12, **style}
    ax.add_patch(FancyArrowPatch(a, b, arrowstyle="-|>", mutation_scale=8, zorder=2, **style))


def _c2f(data: dict[str, Any], title: str) -> Figure:
    from raynas.nets.c2f_topology import STEM, decoder_skips, parse_topology

    topology = parse_topology(data["topology"])
    ops: list[list[str]] = data["ops"]
    levels = int(data.get("levels", max(topology) + 1))
    width = int(data["width"])
    n = len(topology)
    fig = _figure(max(6.0, 1.05 * (n + 2) + 1.2), 1.0 + 0.95 * levels + 0.6)
    ax = fig.add_axes((0.1, 0.04, 0.88, 0.84))
    skips = decoder_skips(topology)
    pos = {STEM: (0.0, 0.0)}
    pos.update({i: (float(i + 1), -float(lv)) for i, lv in enumerate(topology)})
    head = (float(n + 1), 0.0)
    bw, bh = 0.9, 0.62
    _box(ax, *pos[STEM], "stem\n/2", color="#dddddd", w=bw, h=bh)
    for i in range(n):
        row = ops[i] if i < len(ops) else ["?"]
        text = row[0] + "".join(f"\n+ {op} (skip)" for op in row[1:])
        color = _OP_COLORS.get(ops[i][0], _DEFAULT_COLOR) if i < len(ops) and ops[i] else "#fff"
        _box(ax, *pos[i], f"{i}: {text}", color=color, w=bw, h=bh)
        _arrow(ax, pos[i - 1] if i else pos[STEM], pos[i], color="#333333", linewidth=1.0)
    _box(ax, *head, "head\nx2, 1x1", color="#dddddd", w=bw, h=bh)
    _arrow(ax, pos[n - 1], head, color="#333333", linewidth=1.0)
    lanes: dict[int, int] = {}
    for cell, src in sorted(skips.items(), key=lambda kv: kv[0] - kv[1]):
        # a skip runs in a lane just above its level's row: up, across, down into the cell
        (xa, y), (xb, _) = pos[src], pos[cell]
        lane = lanes.get(int(y), 0)
        lanes[int(y)] = lane + 1
        top = y + bh / 2 + 0.07 * (lane + 1)
        ax.plot([xa + 0.15, xa + 0.15, xb - 0.15], [y + bh / 2, top, top], color="tab:green",
                linewidth=0.9, linestyle="--", zorder=1)
        _arrow(ax, (xb - 0.15, top), (xb - 0.15, y + bh / 2), color="tab:green",
               linewidth=0.9, shrinkA=0, shrinkB=0)
    ax.set_xlim(-0.7, n + 1.7)
    ax.set_ylim(-(levels - 1) - 0.6, bh / 2 + 0.07 * (lanes.get(0, 0) + 1) + 0.05)
    ax.set_yticks([-lv for lv in range(levels)])
    ax.set_yticklabels([f"1/{2 ** (lv + 1)}  C={width * 2**lv}" for lv in range(levels)],
                       fontsize=7)  # fmt: skip
    ax.set_xticks([])
    for side in ("top", "right", "bottom"):
        ax.spines[side].set_visible(False)
    ax.grid(True, axis="y", alpha=0.25)
    ax.set_title(f"{title}C2F, {data.get('spatial_dims')}D, width {width}, topology "
                 f"{data['topology']}  (dashed: U-Net skip)", fontsize=9)  # fmt: skip
    return fig


def _genotype_lines(name: str, cell: list[list[Any]]) -> list[str]:
    names = {0: "in_0", 1: "in_1"}
    lines = [f"{name} cell"]
    for i, edges in enumerate(cell):
        terms = [f"{op}({names.get(int(s), f'node{int(s) - 2}')})" for s, op in edges]
        lines.append(f"  node{i} = " + " + ".join(terms))
    lines.append(f"  out = 1x1 conv(concat node0..node{len(cell) - 1})")
    return lines


def _thrifty(data: dict[str, Any], title: str) -> Figure:
    from raynas.nets.thrifty import cell_names, grid_wiring

    depth = int(data["depth"])
    width = int(data["width"])
    wiring = grid_wiring(depth)

    def at(name: str) -> tuple[float, float]:
        if name == "stem":
            return (-1.0, 0.8)
        k, j = (int(v) for v in name[2:-1].split("]["))
        return (float(j + 2 * k), -float(j))

    fig = _figure(max(6.5, 1.2 * depth * 2 + 4.5), 1.6 + 0.95 * depth)
    ax = fig.add_axes((0.02, 0.04, 0.6, 0.84))
    _box(ax, *at("stem"), "stem", color="#dddddd", w=0.8, h=0.5)
    for name in cell_names(depth):
        kind = "DN" if name.startswith("X[0]") else "UP"
        _box(ax, *at(name), f"{name}\n{kind}", color="#c6dbef" if kind == "DN" else "#fdd0a2",
             w=0.95, h=0.55)  # fmt: skip
        in0, in1 = wiring[name]
        _arrow(ax, at(in1), at(name), color="#333333", linewidth=1.0)
        for src in in0.split("+"):
            if src != in1:
                _arrow(ax, at(src), at(name), color="tab:green", linewidth=0.8, linestyle="--",
                       connectionstyle="arc3,rad=0.2")
    out = at(f"X[{depth - 1}][0]")
    _box(ax, out[0] + 1.3, out[1], "head\n1x1", color="#dddddd", w=0.8, h=0.5)
    _arrow(ax, out, (out[0] + 1.3, out[1]), color="#333333", linewidth=1.0)
    ax.set_xlim(-1.7, 2 * (depth - 1) + 2.0)
    ax.set_ylim(-(depth - 1) - 0.6, 1.3)
    ax.axis("off")
    ax.set_title(f"{title}Thrifty, {data.get('spatial_dims')}D, depth {depth}, C={width} in "
                 "every cell  (solid: in_1, dashed: in_0)", fontsize=9, loc="left")  # fmt: skip
    text = _genotype_lines("DN", data["dn"]) + [""] + _genotype_lines("UP", data["up"])
    fig.text(0.64, 0.86, "\n".join(text), va="top", ha="left", fontsize=7.5, family="monospace")
    return fig


def _generic(data: dict[str, Any], title: str) -> Figure:
    fig = _figure(6.0, 3.0)
    ax = fig.add_axes((0.02, 0.02, 0.96, 0.86))
    ax.axis("off")
    lines = [f"{k}: {v}" for k, v in data.items() if not isinstance(v, list | dict)]
    ax.text(0.02, 0.98, "\n".join(lines), va="top", fontsize=8, family="monospace")
    ax.set_title(f"{title}{data.get('space')} network", fontsize=9)
    return fig


def architecture_figure(arch: Any, *, name: str | None = None) -> Figure:
    """The picture of an Architecture (object, dict, JSON string or path) as a ``Figure``."""
    data = _data(arch)
    title = f"{name}: " if name else ""
    if data.get("space") == "c2f":
        return _c2f(data, title)
    if data.get("space") == "thrifty":
        return _thrifty(data, title)
    return _generic(data, title)


def save_architecture_png(arch: Any, path: str | Path, *, name: str | None = None) -> Path:
    """Draws ``arch`` (see :func:`architecture_figure`) into the PNG file ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    architecture_figure(arch, name=name).savefig(path, format="png")
    return path
