"""Search-space interface, the space-type registry and :func:`load_space`.

A space is built from its validated YAML config (:mod:`raynas.config.spaces`); ``load_space``
also checks the operation names against the operation registry for the space's dimensionality.

Example:
    >>> space = load_space("c2f_small")  # doctest: +SKIP
    >>> space.describe()["topologies"]   # doctest: +SKIP
    30
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from raynas.config import builtin_file, builtin_names, load_space_config
from raynas.config.loader import format_validation_error
from raynas.errors import ConfigError
from raynas.nets.architecture import Architecture
from raynas.nets.ops import check_op_names, op_names
from raynas.registry import Registry

__all__ = ["Candidate", "SearchSpace", "SPACE_TYPES", "register_space_type", "load_space",
           "load_stage_space", "list_spaces", "space_source"]


@dataclass(frozen=True)
class Candidate:
    """A coarse-stage candidate (one Ray trial): a key and JSON-able parameters."""

    key: str
    params: dict[str, Any] = field(default_factory=dict)


class SearchSpace(abc.ABC):
    """A search space: coarse candidates and supernets, fine supernets, random architectures."""

    type: str = ""
    #: True when the base width is part of what the space searches (Thrifty: its coarse stage
    #: chooses it), so the derived network is retrained at that width, not at ``retrain.width``.
    keeps_searched_width: bool = False

    def __init__(self, config: Any) -> None:
        self.config = config

    @property
    def name(self) -> str:
        return self.config.name

    @abc.abstractmethod
    def describe(self) -> dict[str, Any]:
        """Facts for ``raynas spaces show`` (JSON-able)."""

    @abc.abstractmethod
    def coarse_candidates(self) -> list[Candidate]:
        """The coarse-stage candidates (one Ray trial each)."""

    @abc.abstractmethod
    def build_coarse_supernet(
        self, candidate: Candidate, *, in_channels: int, out_channels: int, width: int
    ) -> Any:
        """The weight-sharing supernet of one candidate."""

    @abc.abstractmethod
    def build_fine_supernet(
        self, choice: Mapping[str, Any], *, in_channels: int, out_channels: int, width: int
    ) -> Any:
        """The PC-DARTS supernet of one coarse choice."""

    @abc.abstractmethod
    def coarse_choices(self) -> list[dict[str, Any]]:
        """Every choice of the coarse stage (C2F: each topology; Thrifty: each (depth, width)),
        JSON-able, in a fixed order: what the ``asha`` strategy samples from."""

    @abc.abstractmethod
    def coarse_architecture(
        self, choice: Mapping[str, Any], *, in_channels: int, out_channels: int, width: int
    ) -> Architecture:
        """The stand-alone network of a coarse choice, as its coarse supernet derives it (C2F:
        ``coarse_op`` on every edge at ``width``; Thrifty: uniform-weight cells at the choice's
        own depth and width)."""

    @abc.abstractmethod
    def sample_architecture(
        self, *, seed: int, in_channels: int, out_channels: int, width: int
    ) -> Architecture:
        """A uniformly random valid architecture (the random-search baseline)."""


SPACE_TYPES: Registry[type[SearchSpace]] = Registry("space type")


def register_space_type(type_name: str, cls: type[SearchSpace]) -> None:
    """Registers the class that builds spaces whose YAML says ``type: type_name``."""
    SPACE_TYPES.register(type_name, cls)


def space_source(ref: str | Path) -> str:
    """The file a space reference points to (for error messages)."""
    text = str(ref)
    if text.endswith((".yaml", ".yml")) or "/" in text:
        return text
    found = builtin_file("search_spaces", text)
    return str(found) if found is not None else text


def load_space(ref: str | Path, *, overrides: Mapping[str, Any] | None = None) -> SearchSpace:
    """Loads a built-in space by name or a YAML path; checks its ops for its dimensionality.

    Args:
        ref: ``"c2f"``, ``"thrifty"`` or a path to a ``.yaml`` file.
        overrides: top-level fields to replace (e.g. ``{"spatial_dims": 2, "ops": [...]}`` for a
            2D test of a 3D space); the result is validated again.

    Raises:
        ConfigError: unknown space, invalid YAML, or op names unknown for the dimensionality
            (names the file and the key ``ops`` and lists the valid ones).
    """
    config = load_space_config(ref)
    source = space_source(ref)
    if overrides:
        data = {**config.model_dump(), **dict(overrides)}
        try:
            config = type(config).model_validate(data)
        except ValidationError as exc:
            raise ConfigError(format_validation_error(source, exc, type(config))) from None
    bad = check_op_names(config.ops, config.spatial_dims)
    valid = ", ".join(op_names(config.spatial_dims))
    if bad:
        names = ", ".join(map(repr, bad))
        raise ConfigError(f"{source}: ops: unknown operation(s) {names} for "
                          f"{config.spatial_dims}D; valid: {valid}")
    coarse = getattr(config, "coarse_op", None)
    if coarse is not None and coarse not in op_names(config.spatial_dims):
        raise ConfigError(f"{source}: coarse_op: unknown operation {coarse!r} for "
                          f"{config.spatial_dims}D; valid: {valid}")
    if all(n == "none" for n in config.ops):
        raise ConfigError(f"{source}: ops: needs at least one operation other than 'none'")
    if config.type not in SPACE_TYPES:
        raise ConfigError(f"{source}: type: {config.type!r} has no implementation yet; "
                          f"available: {', '.join(SPACE_TYPES.list())}")
    return SPACE_TYPES.get(config.type)(config)


def load_stage_space(ref: str | Path, *, clusters: int | None = None) -> SearchSpace:
    """:func:`load_space` with a preset's ``coarse.clusters`` (``None``: the space's own)."""
    if clusters is None:
        return load_space(ref)
    config = load_space_config(ref)
    rule = getattr(config, "clusters", None)
    if rule is None:
        raise ConfigError(f"coarse.clusters: space {config.name!r} has no clusters to count")
    return load_space(ref, overrides={"clusters": {**rule.model_dump(), "count": clusters}})


def list_spaces() -> list[dict[str, Any]]:
    """The built-in spaces: name, type, dims and description (no torch needed)."""
    out = []
    for name in builtin_names("search_spaces"):
        cfg = load_space_config(name)
        out.append({"name": name, "type": cfg.type, "spatial_dims": cfg.spatial_dims,
                    "description": cfg.description})
    return out
