"""Space definitions: built-ins validate; bad files give one line naming file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from raynas.config import C2FSpaceConfig, ThriftySpaceConfig, builtin_names, load_space_config
from raynas.errors import ConfigError


@pytest.mark.parametrize("name", builtin_names("search_spaces"))
def test_builtin_spaces_validate(name: str) -> None:
    space = load_space_config(name)
    assert isinstance(space, C2FSpaceConfig | ThriftySpaceConfig)
    assert space.name == name


def test_c2f_defaults_match_design() -> None:
    space = load_space_config("c2f")
    assert (space.cells, space.levels, space.pc_k, space.clusters.count) == (12, 4, 4, 8)
    assert space.ops == ["conv2d_in_3d", "conv3", "p3d", "skip"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("type: c2f\nops: [conv3]\ncells: 1\n", "cells"),
        ("type: c2f\nops: [conv3]\nlevels: 4\nmin_depth: 4\n", "min_depth must be <= levels - 1"),
        ("type: c2f\nops: []\n", "ops"),
        ("type: c2f\nops: [conv3, conv3]\n", "each operation may be listed once"),
        ("type: c2f\nops: [conv3]\nbogus: 1\n", "unknown key 'bogus'"),
        ("type: resnet\nops: [conv3]\n", "type: must be one of c2f, thrifty"),
        ("type: thrifty\nops: [conv3]\nspatial_dims: 4\n", "spatial_dims"),
        ("type: thrifty\nops: [conv3]\nkeep_edges: 3\n", "keep_edges must be 1 or 2"),
        ("type: c2f\nops: [conv3]\nclusters: {rule: kmeans}\n", "clusters.rule"),
    ],
)
def test_bad_space_files(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "space.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_space_config(path)
    message = str(info.value)
    assert message.startswith(str(path)) and expected in message and "\n" not in message


def test_unknown_space_name_lists_valid() -> None:
    with pytest.raises(ConfigError, match="valid: .*c2f.*thrifty"):
        load_space_config("nope")
