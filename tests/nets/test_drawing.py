"""Architecture pictures, drawn from the JSON alone: every cell and operation is on them, each
operation and edge is named in the legend, labels fit in their boxes, and the picture is narrow
enough for MLflow's artifact preview. Baselines are drawn like the searched networks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from raynas.nets.baselines import dynunet_architecture, unet_architecture, unetpp_architecture
from raynas.nets.c2f_topology import decoder_skips
from raynas.nets.drawing import MAX_WIDTH_PX, architecture_figure, op_label, save_architecture_png
from raynas.nets.ops import OPS
from raynas.nets.thrifty import cell_names

C2F = {
    "space": "c2f", "spatial_dims": 3, "in_channels": 1, "out_channels": 2, "width": 4,
    "levels": 3, "topology": "0-1-2-1-0",
    "ops": [["conv3"], ["p3d"], ["conv2d_in_3d"], ["conv3", "skip"], ["skip", "dil_conv3"]],
}  # fmt: skip
CELL = [[[0, "conv3"], [1, "skip"]], [[1, "sep_conv3"], [2, "dil_conv3"]]]
THRIFTY = {
    "space": "thrifty", "spatial_dims": 2, "in_channels": 1, "out_channels": 3, "width": 8,
    "depth": 3, "nodes": 2, "dn": CELL, "up": [[[0, "avg_pool3"], [1, "conv3"]],
                                              [[0, "max_pool3"], [2, "skip"]]],
}  # fmt: skip
BASELINES = {
    "unet": unet_architecture(spatial_dims=3, in_channels=1, out_channels=2, width=8),
    "unetpp": unetpp_architecture(spatial_dims=2, in_channels=1, out_channels=2, width=8),
    "dynunet": dynunet_architecture(spatial_dims=3, in_channels=1, out_channels=2,
                                    spacing=(1.0, 1.0, 3.0), patch_size=(96, 96, 32)),
}


def _box_labels(fig) -> list[str]:
    return [t.get_text() for t in fig.axes[0].texts]


def _legend(fig) -> str:
    return "\n".join(t.get_text() for legend in fig.legends for t in legend.get_texts())


def test_c2f_cells_ops_levels_and_skips() -> None:
    fig = architecture_figure(C2F, name="searched#0")
    labels = _box_labels(fig)[1:-1]  # stem ... head
    assert len(labels) == len(C2F["ops"])
    for label, row in zip(labels, C2F["ops"], strict=True):
        lines = label.split("\n")
        assert lines[0] == op_label(row[0])
        assert [ln.lstrip("+") for ln in lines[1:]] == [op_label(op) for op in row[1:]]
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["1/2  C=4", "1/4  C=8", "1/8  C=16"]
    skips = [ln for ln in ax.get_lines() if ln.get_linestyle() == "--"]
    assert len(skips) == len(decoder_skips((0, 1, 2, 1, 0))) == 2
    title = ax.get_title(loc="left")
    assert "searched#0" in title and "0-1-2-1-0" in title


@pytest.mark.parametrize("arch", [C2F, THRIFTY, *BASELINES.values()],
                         ids=["c2f", "thrifty", *BASELINES])
def test_legend_names_every_operation_and_edge(arch) -> None:
    data = arch if isinstance(arch, dict) else arch.to_dict()
    fig = architecture_figure(arch)
    legend = _legend(fig)
    if data["space"] == "c2f":
        shown = {op for row in data["ops"] for op in row}
    elif data["space"] == "thrifty":
        shown = {op for cell in (data["dn"], data["up"]) for edges in cell for _, op in edges}
    else:
        shown = {"conv3"}
    for op in shown:
        assert f"{op_label(op, data['spatial_dims'])} = {op}: {OPS.get(op).description}" in legend
    assert "skip" in legend.lower() and ("path" in legend or "in_1" in legend)


@pytest.mark.parametrize("arch", [C2F, THRIFTY, *BASELINES.values()],
                         ids=["c2f", "thrifty", *BASELINES])
def test_labels_inside_their_boxes_and_width_fits_a_preview(arch) -> None:
    fig = architecture_figure(arch, name="a-rather-long-trial-name#12")
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    boxes = [p for p in ax.patches if type(p).__name__ == "FancyBboxPatch"]
    assert len(boxes) == len(ax.texts) >= 3
    for patch, text in zip(boxes, ax.texts, strict=True):
        outer, inner = patch.get_window_extent(renderer), text.get_window_extent(renderer)
        assert outer.x0 <= inner.x0 and inner.x1 <= outer.x1, text.get_text()
        assert outer.y0 <= inner.y0 and inner.y1 <= outer.y1, text.get_text()
    assert fig.get_figwidth() * fig.dpi <= MAX_WIDTH_PX


def test_baselines_are_drawn_as_networks_not_text() -> None:
    unet = BASELINES["unet"].to_dict()
    fig = architecture_figure(unet)
    levels = len(unet["filters"])
    # encoder and decoder blocks (2 L - 1) and the head, U-Net skips dashed at every level
    assert len(fig.axes[0].texts) == 2 * levels
    assert len([ln for ln in fig.axes[0].get_lines() if ln.get_linestyle() == "--"]) == levels - 1
    grid = architecture_figure(BASELINES["unetpp"])
    n = len(BASELINES["unetpp"].to_dict()["filters"])
    assert len(grid.axes[0].texts) == n * (n + 1) // 2 + 1


def test_thrifty_grid_edges_and_genotypes() -> None:
    fig = architecture_figure(json.dumps(THRIFTY))
    text = "\n".join(_box_labels(fig)) + "\n".join(t.get_text() for t in fig.texts)
    assert all(name in text for name in cell_names(3))
    assert "node1 = sep_conv3(in_1) + dil_conv3(node0)" in text
    # one solid in_1 edge per cell, plus the head, plus the dense in_0 skips
    assert len(fig.axes[0].patches) > 2 * len(cell_names(3))
    assert "DN cell" in _legend(fig) and "UP cell" in _legend(fig)


@pytest.mark.parametrize("arch", [C2F, THRIFTY, *BASELINES.values()],
                         ids=["c2f", "thrifty", *BASELINES])
def test_png_written(tmp_path: Path, arch) -> None:
    path = save_architecture_png(arch, tmp_path / "sub" / "a.png", name="net")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
