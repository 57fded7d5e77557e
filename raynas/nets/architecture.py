"""Architectures as validated JSON data, and the one builder registry keyed by ``space``.

An Architecture is plain data (never pickled): ``space``, ``schema_version``, ``spatial_dims``,
``in_channels``, ``out_channels``, ``width`` (the base width the network is built, i.e. trained,
at), optionally ``search_width`` (the base width it was searched at, when it came from a search)
and the space's own fields. Each space registers a
pydantic model and a builder with :func:`register_architecture`; :func:`load_architecture`
validates a file, dict or JSON string and dispatches on ``"space"``; :func:`build_network` builds
the plain ``nn.Module``. Model names (``raynas summary unet``) resolve through
:func:`register_named_model` / :func:`named_architecture`.

Example:
    >>> from raynas.nets import load_architecture  # doctest: +SKIP
    >>> arch = load_architecture("ARCH.json")      # doctest: +SKIP
    >>> net = build_network(arch)                  # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from raynas.config.loader import format_validation_error
from raynas.errors import ConfigError, UserError
from raynas.registry import Registry

__all__ = [
    "Architecture",
    "ArchEntry",
    "SCHEMA_VERSION",
    "register_architecture",
    "load_architecture",
    "build_network",
    "architecture_spaces",
    "register_named_model",
    "named_architecture",
]

SCHEMA_VERSION = 1


class Architecture(BaseModel):
    """Fields every architecture has; a space subclasses it with its own fields.

    Example:
        >>> class Toy(Architecture):
        ...     space: Literal["toy"] = "toy"
        >>> Toy(spatial_dims=2, in_channels=1, out_channels=2, width=8).width
        8
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    space: str
    schema_version: Literal[1] = SCHEMA_VERSION
    spatial_dims: Literal[2, 3]
    in_channels: int = Field(ge=1, le=64)
    out_channels: int = Field(ge=1, le=256)
    width: int = Field(ge=1, le=1024)
    search_width: int | None = Field(default=None, ge=1, le=1024)

    def to_dict(self) -> dict[str, Any]:
        data = self.model_dump(mode="json")
        if data.get("search_width") is None:  # files without a search stay as they were
            data.pop("search_width", None)
        return data

    def to_json(self, *, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def save(self, path: str | Path) -> Path:
        """Writes the JSON file (architecture as data next to the weights)."""
        path = Path(path)
        path.write_text(self.to_json() + "\n", encoding="utf-8")
        return path


@dataclass(frozen=True)
class ArchEntry:
    """A registered space: its pydantic model and its builder (Architecture -> nn.Module)."""

    model_cls: type[Architecture]
    builder: Callable[[Any], Any]


_ARCHS: Registry[ArchEntry] = Registry("architecture space")
_NAMED: Registry[Callable[..., Architecture]] = Registry("model")


def register_architecture(
    space: str, model_cls: type[Architecture], builder: Callable[[Any], Any]
) -> None:
    """Registers the architecture model and network builder of ``space``."""
    if not (isinstance(model_cls, type) and issubclass(model_cls, Architecture)):
        raise ValueError(f"model_cls must subclass Architecture, got {model_cls!r}")
    _ARCHS.register(space, ArchEntry(model_cls, builder))


def architecture_spaces() -> list[str]:
    """The registered ``space`` values, e.g. ``['c2f', 'thrifty', 'unet', ...]``."""
    return _ARCHS.list()


def _read(source: str | Path | Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    if isinstance(source, Mapping):
        return dict(source), "<architecture>"
    text = str(source)
    if isinstance(source, Path) or not text.lstrip().startswith("{"):
        path = Path(text)
        if not path.is_file():
            raise UserError(f"{path}: architecture file not found")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}: not valid JSON: {exc.msg} (line {exc.lineno})") from None
        name = str(path)
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"<json>: not valid JSON: {exc.msg}") from None
        name = "<json>"
    if not isinstance(data, dict):
        raise ConfigError(f"{name}: expected a JSON object, got {type(data).__name__}")
    return data, name


def load_architecture(source: str | Path | Mapping[str, Any] | Architecture) -> Architecture:
    """Validates an architecture from a file path, a JSON string or a dict.

    Raises:
        ConfigError: one line naming the file and the field (unknown op, bad topology, absurd
            width, unknown space, ...).
    """
    if isinstance(source, Architecture):
        return source
    data, name = _read(source)
    space = data.get("space")
    if space not in _ARCHS:
        raise ConfigError(
            f"{name}: space: unknown {space!r}; valid: {', '.join(architecture_spaces())}"
        )
    model_cls = _ARCHS.get(space).model_cls
    try:
        return model_cls.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(name, exc, model_cls)) from None


def build_network(arch: Architecture | Mapping[str, Any] | str | Path) -> Any:
    """Builds the plain ``nn.Module`` of an architecture (no architecture parameters)."""
    arch = load_architecture(arch)
    return _ARCHS.get(arch.space).builder(arch)


def register_named_model(name: str, factory: Callable[..., Architecture]) -> None:
    """Registers a model name (``unet``) -> ``factory(*, spatial_dims, in_channels,
    out_channels, width=None) -> Architecture``, for ``raynas summary NAME`` and baselines."""
    _NAMED.register(name, factory)


def named_architecture(
    name: str, *, spatial_dims: int = 3, in_channels: int = 1, out_channels: int = 2,
    width: int | None = None,
) -> Architecture:
    """The Architecture of a registered model name; UserError listing the valid names."""
    if name not in _NAMED:
        raise UserError(f"unknown model {name!r}; valid: {', '.join(_NAMED.list())} "
                        "or a path to an ARCH.json file")
    return _NAMED.get(name)(spatial_dims=spatial_dims, in_channels=in_channels,
                            out_channels=out_channels, width=width)
