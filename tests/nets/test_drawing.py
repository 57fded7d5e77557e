"""Architecture pictures, drawn from the JSON alone: every cell and operation is on them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from raynas.nets.baselines import unet_architecture
from raynas.nets.c2f_topology import decoder_skips
from raynas.nets.drawing import architecture_figure, save_architecture_png
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


def _texts(fig) -> str:
    return "\n".join(t.get_text() for ax in fig.axes for t in ax.texts) + "\n".join(
        t.get_text() for t in fig.texts
    )


def test_c2f_cells_ops_levels_and_skips() -> None:
    fig = architecture_figure(C2F, name="searched#0")
    text = _texts(fig)
    for i, row in enumerate(C2F["ops"]):
        assert f"{i}: {row[0]}" in text and all(op in text for op in row)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["1/2  C=4", "1/4  C=8", "1/8  C=16"]
    skips = [ln for ln in ax.get_lines() if ln.get_linestyle() == "--"]
    assert len(skips) == len(decoder_skips((0, 1, 2, 1, 0))) == 2
    assert "searched#0" in ax.get_title() and "0-1-2-1-0" in ax.get_title()


def test_thrifty_grid_edges_and_genotypes() -> None:
    fig = architecture_figure(json.dumps(THRIFTY))
    text = _texts(fig)
    assert all(name in text for name in cell_names(3))
    for cell in (THRIFTY["dn"], THRIFTY["up"]):
        assert all(op in text for edges in cell for _, op in edges)
    assert "node1 = sep_conv3(in_1) + dil_conv3(node0)" in text
    # one solid in_1 edge per cell, plus the head, plus the dense in_0 skips
    assert len(fig.axes[0].patches) > 2 * len(cell_names(3))


@pytest.mark.parametrize(
    "arch", [C2F, THRIFTY, unet_architecture(spatial_dims=3, in_channels=1, out_channels=2,
                                              width=8)],
    ids=["c2f", "thrifty", "unet"],
)  # fmt: skip
def test_png_written(tmp_path: Path, arch) -> None:
    path = save_architecture_png(arch, tmp_path / "sub" / "a.png", name="net")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
