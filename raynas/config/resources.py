"""Where the built-in YAML lives: inside the installed package (``raynas.search_spaces``,
``raynas.tune_configs``), mapped from the repository's top-level folders at install time; in an
editable install or a source checkout, the top-level folders themselves."""

from __future__ import annotations

from pathlib import Path

__all__ = ["builtin_dir", "builtin_names", "builtin_file"]


def builtin_dir(kind: str) -> Path:
    """``kind`` is ``"search_spaces"`` or ``"tune_configs"``."""
    if kind not in ("search_spaces", "tune_configs"):
        raise ValueError(f"kind must be search_spaces or tune_configs, got {kind!r}")
    package = Path(__file__).resolve().parents[1]
    installed = package / kind  # raynas/search_spaces in an installed package
    if installed.is_dir():
        return installed
    # Editable installs and source checkouts: the folder sits beside the package.
    return package.parent / kind


def builtin_names(kind: str) -> list[str]:
    return sorted(p.stem for p in builtin_dir(kind).glob("*.yaml"))


def builtin_file(kind: str, name: str) -> Path | None:
    path = builtin_dir(kind) / f"{name}.yaml"
    return path if path.is_file() else None
