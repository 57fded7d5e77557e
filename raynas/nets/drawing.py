"""Pictures of architectures, drawn from the Architecture data alone (pure matplotlib).

- C2F: the stem, the path of cells over the resolution levels (level 0 = 1/2 at the top, deeper
  levels below, the channel width of each level on the left), each cell's operation(s) in its
  box, the U-Net skips of the decoder cells as dashed arcs, and the head.
- U-Net and DynUNet (baselines): the same picture, their encoder and decoder blocks as the cells
  of a path over their levels, so a baseline reads like a searched network.
- Thrifty and UNet++: the grid of cells ``X[k][j]`` (the down path on the left diagonal, nested
  up cells to the right), its edges (``in_1`` solid, the dense ``in_0`` skips dashed); Thrifty
  also shows its DN and UP genotypes in a panel beside the grid.

Every picture has a legend naming each operation it shows (from the operation registry) and each
kind of edge; operation labels fit inside their boxes (the font shrinks until they do); the
picture is at most :data:`MAX_WIDTH_PX` pixels wide, so a viewer that scales it to its column
(MLflow's artifact preview is ~600 px) shrinks it by at most half.

Uses the object API with the Agg canvas (no ``pyplot``, no display), so it runs headless.

Example:
    >>> from raynas.nets import load_architecture          # doctest: +SKIP
    >>> save_architecture_png(load_architecture("a.json"), "a.png")  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyBboxPatch
    from matplotlib.text import Text

__all__ = ["MAX_WIDTH_PX", "architecture_figure", "op_label", "save_architecture_png"]

MAX_WIDTH_PX = 1200
_DPI = 100
_FONT = 9.0  # points; shrunk per box until the label fits
_MIN_FONT = 5.0

# short labels drawn in the boxes; the legend spells each one out
_LABELS = {
    "conv3": "3D", "conv2d_in_3d": "2D", "p3d": "P3D", "skip": "id", "dil_conv3": "dil",
    "sep_conv3": "sep", "none": "none", "max_pool3": "max", "avg_pool3": "avg",
}  # fmt: skip
_COLORS = {
    "conv3": "#c6dbef", "conv2d_in_3d": "#c7e9c0", "p3d": "#fdd0a2", "skip": "#eeeeee",
    "dil_conv3": "#dadaeb", "sep_conv3": "#fcbba1", "max_pool3": "#d9d9d9",
    "avg_pool3": "#d9d9d9", "none": "#ffffff",
}  # fmt: skip
_FIXED = "#dddddd"  # stem, head: fixed parts of every network
_SKIP_EDGE = "tab:green"
_DN, _UP = "#9ecae1", "#fdae6b"  # Thrifty's down and up cells


def op_label(op: str, spatial_dims: int = 3) -> str:
    """The short label of an operation in a picture (``conv3`` -> ``3D``; in 2D ``3x3``)."""
    if spatial_dims == 2 and op == "conv3":
        return "3x3"
    return _LABELS.get(op, op)


def _describe(op: str) -> str:
    from raynas.nets.ops import OPS

    return OPS.get(op).description if op in OPS else op


def _data(arch: Any) -> dict[str, Any]:
    if isinstance(arch, Mapping):
        return dict(arch)
    if hasattr(arch, "to_dict"):
        return arch.to_dict()
    from raynas.nets.architecture import load_architecture

    return load_architecture(arch).to_dict()


class _Canvas:
    """One figure: its axes, the (box, label) pairs to fit, the legend entries to show."""

    def __init__(self, width_in: float, height_in: float, axes: Sequence[float]) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        width_in = min(width_in, MAX_WIDTH_PX / _DPI)
        self.fig = Figure(figsize=(width_in, height_in), dpi=_DPI)
        FigureCanvasAgg(self.fig)
        self.ax: Axes = self.fig.add_axes(tuple(axes))  # type: ignore[arg-type]
        self.boxes: list[tuple[FancyBboxPatch, Text]] = []
        self.ops: list[str] = []
        self.edges: dict[str, str] = {}
        self.kinds: dict[str, str] = {}  # legend text -> colour of a kind of cell

    def box(self, x: float, y: float, text: str, *, color: str, w: float, h: float) -> None:
        from matplotlib.patches import FancyBboxPatch

        patch = FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.02",
                               facecolor=color, edgecolor="#444444", linewidth=0.8, zorder=3)
        self.ax.add_patch(patch)
        label = self.ax.text(x, y, text, ha="center", va="center", fontsize=_FONT, zorder=4)
        self.boxes.append((patch, label))

    def arrow(self, a: tuple[float, float], b: tuple[float, float], **style: Any) -> None:
        from matplotlib.patches import FancyArrowPatch

        style = {"shrinkA": 0, "shrinkB": 0, **style}
        self.ax.add_patch(FancyArrowPatch(a, b, arrowstyle="-|>", mutation_scale=9, zorder=2,
                                          **style))

    def use(self, op: str) -> str:
        if op not in self.ops:
            self.ops.append(op)
        return _COLORS.get(op, "#f0f0d0")

    def finish(self, spatial_dims: int) -> Figure:
        """Fits every label inside its box, then draws the legend under the axes."""
        from matplotlib.lines import Line2D
        from matplotlib.patches import Patch

        renderer = self.fig.canvas.get_renderer()  # type: ignore[attr-defined]
        for patch, label in self.boxes:
            inner = patch.get_window_extent(renderer).padded(-3)
            size = _FONT
            while size > _MIN_FONT:
                extent = label.get_window_extent(renderer)
                if extent.width <= inner.width and extent.height <= inner.height:
                    break
                size -= 0.5
                label.set_fontsize(size)
        handles: list[Any] = [
            Patch(facecolor=_COLORS.get(op, "#f0f0d0"), edgecolor="#444444",
                  label=f"{op_label(op, spatial_dims)} = {op}: {_describe(op)}")
            for op in self.ops
        ]
        handles += [Patch(facecolor=color, edgecolor="#444444", label=text)
                    for text, color in self.kinds.items()]
        handles += [Line2D([], [], color=color, linestyle="--" if color == _SKIP_EDGE else "-",
                           label=text) for text, color in self.edges.items()]
        self.fig.legend(handles=handles, loc="lower left", ncol=2 if len(handles) > 3 else 1,
                        fontsize=8, frameon=False, bbox_to_anchor=(0.01, 0.0))
        return self.fig


def _right(p: tuple[float, float], w: float) -> tuple[float, float]:
    return (p[0] + w / 2, p[1])


def _left(p: tuple[float, float], w: float) -> tuple[float, float]:
    return (p[0] - w / 2, p[1])


def _path_picture(
    *,
    title: str,
    levels_of_cells: Sequence[int],
    cell_ops: Sequence[Sequence[str]],
    skips: Mapping[int, int],
    level_names: Sequence[str],
    spatial_dims: int,
    stem: str | None,
    head: str,
    block: str = "",
) -> Figure:
    """Cells on a path over resolution levels; ``cell_ops[i]`` = operation of the path edge,
    then of the skip edge (decoder cells); ``skips[i]`` = the cell (or -1, the stem) whose
    output cell ``i`` also receives."""
    n = len(levels_of_cells)
    levels = len(level_names)
    legend_rows = 3
    width = 0.85 * (n + 2) + 1.6
    height = 1.2 + 0.85 * levels + 0.22 * legend_rows
    legend_share = 0.22 * legend_rows / height + 0.04
    c = _Canvas(width, height, (0.11, legend_share + 0.02, 0.87, 0.86 - legend_share))
    ax = c.ax
    bw, bh = 0.8, 0.6
    pos = {i: (float(i + 1), -float(lv)) for i, lv in enumerate(levels_of_cells)}
    if stem is not None:
        pos[-1] = (0.0, 0.0)
        c.box(*pos[-1], stem, color=_FIXED, w=bw, h=bh)
    for i in range(n):
        ops = list(cell_ops[i]) or ["?"]
        color = c.use(ops[0])
        text = block + op_label(ops[0], spatial_dims)
        for op in ops[1:]:
            c.use(op)
            text += f"\n+{op_label(op, spatial_dims)}"
        c.box(*pos[i], text, color=color, w=bw, h=bh)
        if i or stem is not None:
            c.arrow(_right(pos[i - 1], bw), _left(pos[i], bw), color="#333333", linewidth=1.0)
    head_at = (float(n + 1), -float(levels_of_cells[-1]))
    c.box(*head_at, head, color=_FIXED, w=bw, h=bh)
    c.arrow(_right(pos[n - 1], bw), _left(head_at, bw), color="#333333", linewidth=1.0)
    lanes: dict[int, int] = {}
    for cell, src in sorted(skips.items(), key=lambda kv: kv[0] - kv[1]):
        # a skip runs in a lane just above its level's row: up, across, down into the cell
        (xa, y), (xb, _) = pos[src], pos[cell]
        lane = lanes.get(int(y), 0)
        lanes[int(y)] = lane + 1
        top = y + bh / 2 + 0.07 * (lane + 1)
        ax.plot([xa + 0.15, xa + 0.15, xb - 0.15], [y + bh / 2, top, top], color=_SKIP_EDGE,
                linewidth=0.9, linestyle="--", zorder=1)
        c.arrow((xb - 0.15, top), (xb - 0.15, y + bh / 2), color=_SKIP_EDGE, linewidth=0.9,
                shrinkA=0, shrinkB=0)
    c.edges["path (the previous cell's output)"] = "#333333"
    if skips:
        c.edges["U-Net skip (+X: operation X on this edge)"] = _SKIP_EDGE
    ax.set_xlim(-0.6 if stem is not None else 0.4, n + 1.6)
    ax.set_ylim(-(levels - 1) - 0.5, bh / 2 + 0.07 * (lanes.get(0, 0) + 1) + 0.08)
    ax.set_yticks([-lv for lv in range(levels)])
    ax.set_yticklabels(list(level_names), fontsize=8)
    ax.set_xticks([])
    for side in ("top", "right", "bottom"):
        ax.spines[side].set_visible(False)
    ax.grid(True, axis="y", alpha=0.25)
    ax.set_title(title, fontsize=9.5, loc="left")
    return c.finish(spatial_dims)


def _c2f(data: dict[str, Any], title: str) -> Figure:
    from raynas.nets.c2f_topology import STEM, decoder_skips, parse_topology

    topology = parse_topology(data["topology"])
    levels = int(data.get("levels", max(topology) + 1))
    width = int(data["width"])
    dims = int(data.get("spatial_dims", 3))
    skips = {cell: (-1 if src == STEM else src) for cell, src in decoder_skips(topology).items()}
    return _path_picture(
        title=f"{title}C2F, {dims}D, width {width}, topology {data['topology']}",
        levels_of_cells=topology, cell_ops=data["ops"], skips=skips,
        level_names=[f"1/{2 ** (lv + 1)}  C={width * 2**lv}" for lv in range(levels)],
        spatial_dims=dims, stem="stem\n/2", head="head\nx2, 1x1",
    )  # fmt: skip


def _unet_like(data: dict[str, Any], title: str) -> Figure:
    """U-Net and DynUNet: encoder blocks down the levels, decoder blocks up, U-Net skips."""
    filters = [int(f) for f in data["filters"]]
    levels = len(filters)
    dims = int(data.get("spatial_dims", 3))
    path = list(range(levels)) + list(range(levels - 2, -1, -1))
    kernels = data.get("kernels")
    ops = []
    for lv in path:
        kernel = kernels[lv] if kernels else [3] * dims
        ops.append(["conv2d_in_3d" if dims == 3 and 1 in kernel else "conv3"])
    skips = {levels + i: levels - 2 - i for i in range(levels - 1)}
    name = {"unet": "U-Net", "dynunet": "DynUNet"}.get(str(data.get("space")), data.get("space"))
    strides = data.get("strides")
    names = []
    for lv, f in enumerate(filters):
        scale = 1
        for row in (strides or [])[: lv + 1]:
            scale *= max(row)
        names.append(f"1/{scale if strides else 2**lv}  C={f}")
    return _path_picture(
        title=f"{title}{name} (baseline), {dims}D, {levels} levels, filters "
              f"{'-'.join(map(str, filters))}",
        levels_of_cells=path, cell_ops=ops, skips=skips, level_names=names, spatial_dims=dims,
        stem=None, head="head\n1x1", block="2× ",
    )  # fmt: skip


def _genotype_lines(name: str, cell: list[list[Any]]) -> list[str]:
    names = {0: "in_0", 1: "in_1"}
    lines = [f"{name} cell"]
    for i, edges in enumerate(cell):
        terms = [f"{op}({names.get(int(s), f'node{int(s) - 2}')})" for s, op in edges]
        lines.append(f"  node{i} = " + " + ".join(terms))
    lines.append(f"  out = 1x1 conv(concat node0..node{len(cell) - 1})")
    return lines


def _grid(data: dict[str, Any], title: str) -> Figure:
    """Thrifty (DN/UP cells, two inputs each) and UNet++ (the same nested grid, conv blocks)."""
    from raynas.nets.thrifty import cell_names, grid_wiring

    thrifty = data.get("space") == "thrifty"
    dims = int(data.get("spatial_dims", 2))
    depth = int(data["depth"]) if thrifty else len(data["filters"])
    wiring = grid_wiring(depth)

    def at(name: str) -> tuple[float, float]:
        if name == "stem":
            return (-1.0, 0.8)
        k, j = (int(v) for v in name[2:-1].split("]["))
        return (float(j + 2 * k), -float(j))

    legend_rows = 3
    height = 1.8 + 0.95 * depth + 0.22 * legend_rows
    legend_share = 0.22 * legend_rows / height + 0.04
    grid_w = 1.0 * depth * 2 + 2.5
    panel = 4.2 if thrifty else 0.0
    width = grid_w + panel
    c = _Canvas(width, height, (0.02, legend_share + 0.02, grid_w / width * 0.96,
                                0.84 - legend_share))
    if thrifty:
        c.box(*at("stem"), "stem", color=_FIXED, w=0.8, h=0.5)
    conv = c.use("conv3") if not thrifty else ""
    for name in cell_names(depth):
        k, j = (int(v) for v in name[2:-1].split("]["))
        if thrifty:
            kind = "DN" if k == 0 else "UP"
            c.box(*at(name), f"{name}\n{kind}", color=_DN if kind == "DN" else _UP,
                  w=0.95, h=0.55)  # fmt: skip
        else:
            block = f"2× {op_label('conv3', dims)}, C={data['filters'][j]}"
            c.box(*at(name), f"X[{k}][{j}]\n{block}", color=conv, w=0.95, h=0.55)
        in0, in1 = wiring[name]
        if not thrifty and k == 0:
            if j:
                c.arrow(at(f"X[0][{j - 1}]"), at(name), color="#333333", linewidth=1.0,
                        shrinkA=16, shrinkB=16)
            continue
        c.arrow(at(in1), at(name), color="#333333", linewidth=1.0, shrinkA=16, shrinkB=16)
        for src in in0.split("+"):
            if src != in1:
                c.arrow(at(src), at(name), color=_SKIP_EDGE, linewidth=0.8, linestyle="--",
                        connectionstyle="arc3,rad=0.2", shrinkA=16, shrinkB=16)
    out = at(f"X[{depth - 1}][0]")
    c.box(out[0] + 1.3, out[1], "head\n1x1", color=_FIXED, w=0.8, h=0.5)
    c.arrow(out, (out[0] + 1.3, out[1]), color="#333333", linewidth=1.0, shrinkA=16, shrinkB=16)
    c.edges["in_1: from below (upsampled) or the previous cell"] = "#333333"
    c.edges["in_0: dense skips at the same depth, concatenated"] = _SKIP_EDGE
    c.ax.set_xlim(-1.7, 2 * (depth - 1) + 2.0)
    c.ax.set_ylim(-(depth - 1) - 0.6, 1.3)
    c.ax.axis("off")
    if thrifty:
        c.kinds["DN cell: the DN genotype, output at half the resolution of in_1"] = _DN
        c.kinds["UP cell: the UP genotype, output at the resolution of its depth"] = _UP
        c.ax.set_title(f"{title}Thrifty, {dims}D, depth {depth}, C={data['width']} in every "
                       "cell", fontsize=9.5, loc="left")  # fmt: skip
        for cell in (data["dn"], data["up"]):
            for edges in cell:
                for _, op in edges:
                    c.use(op)
        text = _genotype_lines("DN", data["dn"]) + [""] + _genotype_lines("UP", data["up"])
        c.fig.text(grid_w / width + 0.01, 0.9, "\n".join(text), va="top", ha="left",
                   fontsize=8, family="monospace")
    else:
        c.ax.set_title(f"{title}UNet++ (baseline), {dims}D, filters "
                       f"{'-'.join(map(str, data['filters']))}", fontsize=9.5, loc="left")
    return c.finish(dims)


def _generic(data: dict[str, Any], title: str) -> Figure:
    c = _Canvas(6.0, 3.0, (0.02, 0.02, 0.96, 0.86))
    c.ax.axis("off")
    lines = [f"{k}: {v}" for k, v in data.items() if not isinstance(v, list | dict)]
    c.ax.text(0.02, 0.98, "\n".join(lines), va="top", fontsize=8, family="monospace")
    c.ax.set_title(f"{title}{data.get('space')} network", fontsize=9)
    return c.fig


def architecture_figure(arch: Any, *, name: str | None = None) -> Figure:
    """The picture of an Architecture (object, dict, JSON string or path) as a ``Figure``."""
    data = _data(arch)
    title = f"{name}: " if name else ""
    space = data.get("space")
    if space == "c2f":
        return _c2f(data, title)
    if space in ("unet", "dynunet"):
        return _unet_like(data, title)
    if space in ("thrifty", "unetpp"):
        return _grid(data, title)
    return _generic(data, title)


def save_architecture_png(arch: Any, path: str | Path, *, name: str | None = None) -> Path:
    """Draws ``arch`` (see :func:`architecture_figure`) into the PNG file ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    architecture_figure(arch, name=name).savefig(path, format="png")
    return path
