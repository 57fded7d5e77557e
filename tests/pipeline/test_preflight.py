"""The preflight checks as plain functions (fast; the CLI corpus runs them end to end)."""

from __future__ import annotations

from pathlib import Path

import pytest

from raynas.errors import UserError
from raynas.pipeline.preflight import Blame, check_patch, check_storage, space_strides


def test_blame_names_the_last_override_else_the_file() -> None:
    who = Blame(source="p.yaml", overrides=["data.fold=1", "seed=3", "data={fold: 2}"],
                labels={"seed=3": "--seed 3"})  # fmt: skip
    assert who("data.fold") == "--set data={fold: 2}"
    assert who("seed") == "--seed 3"
    assert who("coarse.epochs") == "p.yaml"


def test_storage_probe_leaves_nothing(tmp_path: Path) -> None:
    check_storage(tmp_path / "a" / "b")
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="is not a folder"):
        check_storage(tmp_path / "file" / "runs")
    with pytest.raises(UserError, match=r"^--storage-path /proc/raynas: cannot write in /proc"):
        check_storage(Path("/proc/raynas"))


@pytest.mark.parametrize(
    ("space", "patch", "error"),
    [
        ("c2f", [32, 32, 16], None),
        ("c2f", [96, 96, 96], None),
        ("c2f", [40, 40, 40], "divisible by 16"),
        ("c2f", [16, 16, 16], "too small"),
        ("c2f", [32, 32], "needs 3 sizes"),
        ("c2f_small", [16, 16, 8], None),  # 3 levels: stride 8, deepest map 2x2x1
        ("c2f_small", [8, 8, 8], "too small"),
        ("thrifty", [64, 64], None),
        ("thrifty", [40, 36, 1], None),  # 2D: a third size is ignored; ceil down-sampling
        ("thrifty", [8, 8], "depth 3"),
        ("thrifty", [16, 16], "depth 4"),
        ("thrifty", [64], "2 sizes"),
    ],
)
def test_patch_against_space(space: str, patch: list[int], error: str | None) -> None:
    from raynas.spaces import load_space

    s = load_space(space)
    kwargs = {"spatial_dims": s.config.spatial_dims, "strides": space_strides(s), "culprit": "X"}
    if error is None:
        check_patch(patch, **kwargs)
    else:
        with pytest.raises(UserError, match=error):
            check_patch(patch, **kwargs)


@pytest.mark.parametrize(("space", "patch"), [("c2f_small", (16, 16, 8)), ("thrifty", (40, 36))])
def test_accepted_patches_really_run(space: str, patch: tuple[int, ...]) -> None:
    """What the check accepts, the deepest candidate's network trains on (one step)."""
    import torch

    from raynas.spaces import load_space

    torch.manual_seed(0)
    s = load_space(space)
    if space == "thrifty":
        choice = {"depth": max(s.config.candidates_depth), "width": 4}
    else:
        from raynas.nets.c2f_topology import format_topology

        deep = max(max(t) for t in s.topologies)
        choice = {"topology": format_topology(next(t for t in s.topologies if max(t) == deep))}
    net = s.build_fine_supernet(choice, in_channels=1, out_channels=2, width=4).train()
    out = net(torch.randn(2, 1, *patch))
    out.mean().backward()
    assert tuple(out.shape[2:]) == patch
