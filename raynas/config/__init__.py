"""Configuration: pydantic models for presets and spaces; YAML in, one-line errors out."""

from __future__ import annotations

from raynas.config.loader import apply_overrides, deep_merge, parse_override, read_yaml
from raynas.config.presets import (
    AshaSection,
    CoarseSection,
    DataSection,
    Distribution,
    FineSection,
    Preset,
    ResourcesSection,
    RetrainSection,
    TrackingSection,
    load_preset,
)
from raynas.config.resources import builtin_dir, builtin_file, builtin_names
from raynas.config.spaces import (
    C2FSpaceConfig,
    ClusterRule,
    SpaceConfig,
    ThriftySpaceConfig,
    load_space_config,
)

__all__ = [
    "AshaSection",
    "C2FSpaceConfig",
    "ClusterRule",
    "CoarseSection",
    "DataSection",
    "Distribution",
    "FineSection",
    "Preset",
    "ResourcesSection",
    "RetrainSection",
    "SpaceConfig",
    "ThriftySpaceConfig",
    "TrackingSection",
    "apply_overrides",
    "builtin_dir",
    "builtin_file",
    "builtin_names",
    "deep_merge",
    "load_preset",
    "load_space_config",
    "parse_override",
    "read_yaml",
]
