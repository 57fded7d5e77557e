"""The explicit package list in pyproject.toml names every sub-package, and the built-in YAML
folders ship inside the package."""

from __future__ import annotations

from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]


def test_every_subpackage_is_listed() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    on_disk = {
        ".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "raynas").rglob("__init__.py")
    }
    assert on_disk <= listed, f"missing from pyproject.toml: {sorted(on_disk - listed)}"
    assert config["package-dir"]["raynas.search_spaces"] == "search_spaces"
    assert config["package-dir"]["raynas.tune_configs"] == "tune_configs"


def test_builtin_yaml_is_found() -> None:
    from raynas.config import builtin_names

    spaces = {"c2f", "c2f_small", "thrifty", "thrifty3d", "thrifty_small"}
    assert spaces <= set(builtin_names("search_spaces"))
    assert {"smoke", "default", "msd_task02_8gpu"} <= set(builtin_names("tune_configs"))
