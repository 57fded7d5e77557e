"""YAML loading for presets and spaces: bounded safe loading, ``inherits:``, ``--set`` overrides,
and pydantic validation errors turned into one line naming the file, the key and the allowed values.

YAML is read with a :class:`yaml.SafeLoader` that refuses aliases and anchors (an "alias bomb"
of a few hundred bytes expands to gigabytes) and caps the document size, node count and nesting
depth; floats such as ``1e-3`` are floats (YAML 1.2), not strings.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from raynas.errors import ConfigError

__all__ = [
    "MAX_YAML_BYTES",
    "MAX_YAML_DEPTH",
    "MAX_YAML_NODES",
    "blame",
    "load_yaml_text",
    "read_yaml",
    "deep_merge",
    "apply_overrides",
    "parse_override",
    "validate_model",
    "format_validation_error",
]

M = TypeVar("M", bound=BaseModel)


MAX_YAML_BYTES = 1_000_000  # a preset or space is a few kB
MAX_YAML_NODES = 100_000
MAX_YAML_DEPTH = 50


class _LimitError(yaml.YAMLError):
    def __init__(self, problem: str, mark: Any) -> None:
        super().__init__(problem)
        self.problem, self.problem_mark = problem, mark


class _BoundedLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` without aliases or anchors, with a node count and a nesting depth cap."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._nodes = 0
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            raise _LimitError(f"aliases (*{event.anchor}) are not allowed", event.start_mark)
        if getattr(event, "anchor", None) is not None:
            raise _LimitError(f"anchors (&{event.anchor}) are not allowed", event.start_mark)
        self._nodes += 1
        if self._nodes > MAX_YAML_NODES:
            raise _LimitError(f"more than {MAX_YAML_NODES} nodes", event.start_mark)
        self._depth += 1
        if self._depth > MAX_YAML_DEPTH:
            raise _LimitError(f"nested deeper than {MAX_YAML_DEPTH} levels", event.start_mark)
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


# YAML 1.2 floats: PyYAML (YAML 1.1) reads ``1e-3`` (no dot) as a string.
_BoundedLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def load_yaml_text(text: str, *, source: str) -> Any:
    """Parses YAML ``text`` (inert data: no tags, no aliases, bounded); errors name ``source``."""
    if len(text) > MAX_YAML_BYTES:
        raise ConfigError(f"{source}: not valid YAML: larger than {MAX_YAML_BYTES} bytes")
    loader = _BoundedLoader(text)
    try:
        return loader.get_single_data()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{source}{where}: not valid YAML: {problem}") from None
    except RecursionError:
        raise ConfigError(f"{source}: not valid YAML: nested too deeply") from None
    finally:
        loader.dispose()


def read_yaml(path: Path) -> dict[str, Any]:
    """Reads one YAML mapping with :func:`load_yaml_text` (inert data: no tags, no code)."""
    if not path.is_file():
        raise ConfigError(f"{path}: file not found")
    try:
        size = path.stat().st_size
        if size > MAX_YAML_BYTES:
            raise ConfigError(f"{path}: not valid YAML: larger than {MAX_YAML_BYTES} bytes")
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not valid YAML: not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror or exc})") from None
    data = load_yaml_text(text, source=str(path))
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def deep_merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """Returns ``base`` updated by ``top``; nested mappings merge, everything else replaces."""
    out = copy.deepcopy(dict(base))
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_override(text: str) -> tuple[list[str], Any]:
    """Parses ``a.b.c=value``; the value is read as YAML (``3``, ``1e-3``, ``[1, 2]``, ``true``)."""
    key, sep, raw = text.partition("=")
    path = key.strip().split(".")
    if not sep or not all(path):
        raise ConfigError(f"--set {text!r}: expected key.path=value, e.g. --set coarse.epochs=3")
    value = load_yaml_text(raw, source=f"--set {text!r}: the value") if raw.strip() else ""
    return path, value


def apply_overrides(data: Mapping[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Applies ``--set key.path=value`` strings in order."""
    out = copy.deepcopy(dict(data))
    for text in overrides:
        path, value = parse_override(text)
        node = out
        for i, part in enumerate(path[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                where = ".".join(path[: i + 1])
                raise ConfigError(f"--set {text!r}: {where} is a value, not a section")
            node = child
        node[path[-1]] = value
    return out


def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The field names of the (sub-)model at ``loc``, for 'unknown key' errors."""
    current: Any = model
    for part in loc:
        fields = getattr(current, "model_fields", None)
        if fields is None or part not in fields:
            break
        annotation = fields[part].annotation
        args = getattr(annotation, "__args__", ()) or (annotation,)
        current = next((a for a in args if isinstance(a, type) and issubclass(a, BaseModel)), None)
        if current is None:
            return []
    fields = getattr(current, "model_fields", None)
    return sorted(fields) if fields else []


def blame(
    keys: Iterable[str],
    overrides: Iterable[str],
    default: str,
    labels: Mapping[str, str] | None = None,
) -> str:
    """Who set one of ``keys`` (dotted paths) last: the ``--set`` option that did (or the flag
    ``labels`` names for that override, e.g. ``--seed 3`` for ``seed=3``), else ``default``.

    Example:
        >>> blame(["data.fold"], ["data.fold=1", "data.fold=9"], "smoke.yaml")
        '--set data.fold=9'
    """
    keys = list(keys)
    for text in reversed(list(overrides)):
        key = text.partition("=")[0].strip()
        if any(k == key or k.startswith(key + ".") for k in keys):
            return (labels or {}).get(text, f"--set {text}")
    return default


def format_validation_error(
    source: str,
    exc: ValidationError,
    model: type[BaseModel],
    overrides: Iterable[str] = (),
    labels: Mapping[str, str] | None = None,
) -> str:
    """One line: ``SOURCE: key.path: message; allowed ...`` for the first error.

    ``SOURCE`` is the last ``--set`` that set the key (for an error of a whole section, one that
    set a key the message names, e.g. ``fold`` in "fold must be < folds"), else ``source``."""
    err = exc.errors()[0]
    loc = tuple(err["loc"])
    dotted = ".".join(str(p) for p in loc) or "(top level)"
    keys = [dotted]
    if err["type"] not in ("extra_forbidden", "missing"):  # a section's cross-field check
        keys += [f"{dotted}.{word}" for word in re.findall(r"[A-Za-z_]\w*", err["msg"])]
    source = blame(keys, overrides, source, labels)
    if err["type"] == "extra_forbidden":
        allowed = _allowed_keys(model, loc[:-1])
        msg = f"unknown key {str(loc[-1])!r}"
        if allowed:
            msg += f"; allowed keys: {', '.join(allowed)}"
    elif err["type"] == "missing":
        msg = "required key is missing"
    else:
        msg = err["msg"]
        if "input" in err and not isinstance(err["input"], dict | list):
            msg += f" (got {err['input']!r})"
    more = len(exc.errors()) - 1
    tail = f" (+{more} more)" if more > 0 else ""
    return f"{source}: {dotted}: {msg}{tail}"


def validate_model(
    model: type[M],
    data: Mapping[str, Any],
    *,
    source: str,
    overrides: Iterable[str] = (),
    labels: Mapping[str, str] | None = None,
) -> M:
    """Validates ``data`` against ``model``; raises :class:`ConfigError` with one line."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        line = format_validation_error(source, exc, model, list(overrides), labels)
        raise ConfigError(line) from None
