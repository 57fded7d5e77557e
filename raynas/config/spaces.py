"""Search-space definitions (``search_spaces/*.yaml``): pydantic models and the loader.

The ``type`` key picks the model (``c2f`` or ``thrifty``). Operation names are checked against
the operation registry by :func:`raynas.spaces.load_space`, which sits a layer above this one.

Example:
    >>> space = load_space_config("c2f_small")
    >>> space.type, space.cells
    ('c2f', 6)
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, PositiveInt, TypeAdapter, ValidationError, model_validator

from raynas.config.loader import format_validation_error, read_yaml
from raynas.config.presets import Strict
from raynas.config.resources import builtin_file, builtin_names
from raynas.errors import ConfigError

__all__ = [
    "ClusterRule",
    "C2FSpaceConfig",
    "ThriftySpaceConfig",
    "SpaceConfig",
    "load_space_config",
]


class ClusterRule(Strict):
    """How topologies are grouped: ``rule`` names a registered rule; ``count`` clusters."""

    rule: Literal["depth_profile", "canonical_order"] = "depth_profile"
    """How topologies are ordered before they are cut into ``count`` contiguous groups:
    ``depth_profile`` by deepest level, then cells per level; ``canonical_order`` by their
    string."""
    count: PositiveInt = 8
    """Number of clusters: one coarse trial each (``coarse.clusters`` in a preset overrides it)."""


class _SpaceBase(Strict):
    name: str
    """The space's name (a built-in is called by it)."""
    description: str = ""
    """One line shown by ``raynas spaces``."""
    spatial_dims: Literal[2, 3] = 3
    """2 (slices) or 3 (volumes)."""
    ops: list[str] = Field(min_length=1)
    """The candidate operations of the fine (PC-DARTS) search, by registered name (see
    Operations below); each listed once."""
    pc_k: PositiveInt = 4
    """PC-DARTS partial-channel factor: 1/K of the channels go through the mixed operation."""

    @model_validator(mode="after")
    def _unique_ops(self) -> _SpaceBase:
        if len(set(self.ops)) != len(self.ops):
            raise ValueError("ops: each operation may be listed once")
        return self


class C2FSpaceConfig(_SpaceBase):
    """C2FNAS macro space: a U-shaped path of ``cells`` cells over ``levels`` resolutions."""

    type: Literal["c2f"]
    """``c2f``: a C2FNAS U-shaped macro space."""
    cells: int = Field(default=12, ge=2, le=64)
    """Cells on the path (the topology's length)."""
    levels: int = Field(default=4, ge=2, le=8)
    """Resolution levels: level d works at 1/2**(d+1) of the input, width C * 2**d."""
    min_depth: int = Field(default=1, ge=0)
    """The path must reach at least this level."""
    coarse_op: str = "conv3"
    """The fixed operation of every cell in the coarse supernet."""
    clusters: ClusterRule = Field(default_factory=ClusterRule)

    @model_validator(mode="after")
    def _check(self) -> C2FSpaceConfig:
        if self.min_depth > self.levels - 1:
            raise ValueError(f"min_depth must be <= levels - 1 ({self.levels - 1})")
        if 2 * self.min_depth > self.cells:
            raise ValueError("min_depth too large for the number of cells")
        return self


class ThriftySpaceConfig(_SpaceBase):
    """Thrifty NAS: UNet++-like grid of DN/UP cells of ``nodes`` nodes, width ``width``."""

    type: Literal["thrifty"]
    """``thrifty``: a Thrifty NAS dense grid of DN/UP cells."""
    spatial_dims: Literal[2, 3] = 2
    """2 (slices, the paper's setting) or 3 (volumes)."""
    depth: int = Field(default=4, ge=1, le=6)
    """Number of DN cells ``X[0][0..depth-1]`` (the fine stage's grid when no coarse pick)."""
    width: PositiveInt = 32
    """C, the same in every cell."""
    nodes: PositiveInt = 2
    """Nodes per cell; their outputs are concatenated and filtered back to C by a 1x1 conv."""
    keep_edges: PositiveInt = 2
    """Strongest input edges kept per node at derivation (1 or 2)."""
    candidates_depth: list[Annotated[int, Field(ge=1, le=6)]] = [3, 4]
    """Grid depths the coarse stage tries (one trial per depth x width)."""
    candidates_width: list[PositiveInt] = [16, 32]
    """Widths C the coarse stage tries."""

    @model_validator(mode="after")
    def _check(self) -> ThriftySpaceConfig:
        if self.keep_edges > 2:
            raise ValueError("keep_edges must be 1 or 2")
        for w in sorted({self.width, *self.candidates_width}):
            if w % self.pc_k:  # PC-DARTS sends 1/pc_k of the channels through the mixed op
                raise ValueError(f"width {w} (width, candidates_width) must be divisible by "
                                 f"pc_k ({self.pc_k})")
        return self


SpaceConfig = Annotated[C2FSpaceConfig | ThriftySpaceConfig, Field(discriminator="type")]
_ADAPTER: TypeAdapter[C2FSpaceConfig | ThriftySpaceConfig] = TypeAdapter(SpaceConfig)


def load_space_config(ref: str | Path) -> C2FSpaceConfig | ThriftySpaceConfig:
    """Loads a built-in space by name or a YAML file by path and validates it (no op check)."""
    ref_str = str(ref)
    if ref_str.endswith((".yaml", ".yml")) or "/" in ref_str:
        path = Path(ref_str)
    else:
        found = builtin_file("search_spaces", ref_str)
        if found is None:
            raise ConfigError(
                f"--space: unknown space {ref_str!r}; valid: "
                f"{', '.join(builtin_names('search_spaces'))} or a path to a .yaml file"
            )
        path = found
    data = read_yaml(path)
    data.setdefault("name", path.stem)
    if data.get("type") not in ("c2f", "thrifty"):
        raise ConfigError(f"{path}: type: must be one of c2f, thrifty (got {data.get('type')!r})")
    model = C2FSpaceConfig if data["type"] == "c2f" else ThriftySpaceConfig
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as exc:
        msg = format_validation_error(str(path), exc, model)
        # pydantic prefixes union errors with the tag ("c2f.cells"); drop it.
        raise ConfigError(msg.replace(f": {data['type']}.", ": ", 1)) from None
