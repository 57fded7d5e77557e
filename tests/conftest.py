"""Shared fixtures: a hermetic raynas cache, tiny synthetic MSD folders, an MSD folder writer.

Fixtures:
    raynas_cache_dir (session, autouse): ``RAYNAS_CACHE_DIR`` points into a temporary folder, so
        no test writes to ``~/.cache/raynas``.
    raynas_secret_file (session, autouse): ``RAYNAS_SECRET_FILE`` likewise (no test writes
        ``~/.config/raynas/secret``).
    synthetic_root / synthetic2d_root (session): MSD folders written by the synthetic generator
        (6 cases of 32x32x16, resp. 64x64x8 voxels at 1x1x2.5 mm); open them with
        ``open_dataset("synthetic", synthetic_root)``.
    synthetic_dataset / synthetic2d_dataset (session): those folders opened as MSDDatasets.
    make_msd (function): ``make_msd(root, **options) -> Path`` writes a small MSD task folder
        the way the Decathlon ships it (see :func:`write_msd`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# Test helper modules beside this file (``procs``: find and stop the processes a test started).
sys.path.insert(0, str(Path(__file__).parent))

from msd_writer import write_msd  # noqa: E402  (beside this file)

ROOT = Path(__file__).resolve().parents[1]


def pytest_sessionstart(session: pytest.Session) -> None:
    """The suite tests this checkout: provenance stamps, benchmark scripts and generated pages
    hash and read the files here, so ``raynas`` must be imported from here (an editable
    install), not from a copy in site-packages, which would make every stamp's commit null."""
    import importlib.util

    spec = importlib.util.find_spec("raynas")
    origin = Path(spec.origin).resolve() if spec and spec.origin else None
    if origin is None or not origin.is_relative_to(ROOT):
        pytest.exit(
            f"raynas is imported from {origin}, not from this checkout ({ROOT}): "
            'install it editable for the tests, pip install -e ".[dev]"',
            returncode=4,
        )


@pytest.fixture(scope="session", autouse=True)
def raynas_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Points ``RAYNAS_CACHE_DIR`` at a temporary folder for the whole session."""
    path = tmp_path_factory.mktemp("raynas-cache")
    old = os.environ.get("RAYNAS_CACHE_DIR")
    os.environ["RAYNAS_CACHE_DIR"] = str(path)
    yield path
    if old is None:
        os.environ.pop("RAYNAS_CACHE_DIR", None)
    else:
        os.environ["RAYNAS_CACHE_DIR"] = old


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 6-case ``synthetic`` MSD folder of 32x32x16 volumes (seed 0)."""
    from raynas.data.synthetic import write_synthetic

    out = tmp_path_factory.mktemp("synthetic-data") / "synthetic"
    return write_synthetic(out, name="synthetic", cases=6, seed=0, shape=(32, 32, 16))


@pytest.fixture(scope="session")
def synthetic2d_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 6-case ``synthetic2d`` MSD folder of 64x64x8 volumes (seed 0)."""
    from raynas.data.synthetic import write_synthetic

    out = tmp_path_factory.mktemp("synthetic2d-data") / "synthetic2d"
    return write_synthetic(out, name="synthetic2d", cases=6, seed=0, shape=(64, 64, 8))


@pytest.fixture(scope="session")
def synthetic_dataset(synthetic_root: Path) -> Any:
    from raynas.data import open_dataset

    return open_dataset("synthetic", synthetic_root)


@pytest.fixture(scope="session")
def synthetic2d_dataset(synthetic2d_root: Path) -> Any:
    from raynas.data import open_dataset

    return open_dataset("synthetic2d", synthetic2d_root)


@pytest.fixture
def make_msd() -> Callable[..., Path]:
    """The :func:`write_msd` helper, as a fixture: ``make_msd(tmp_path / "Task", cases=4)``."""
    return write_msd


@pytest.fixture(scope="session", autouse=True)
def raynas_secret_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Points ``RAYNAS_SECRET_FILE`` (the key of the digests of Ray's pickles) at a temporary
    folder for the whole session, so no test writes ``~/.config/raynas/secret``."""
    path = tmp_path_factory.mktemp("raynas-secret") / "secret"
    old = os.environ.get("RAYNAS_SECRET_FILE")
    os.environ["RAYNAS_SECRET_FILE"] = str(path)
    yield path
    if old is None:
        os.environ.pop("RAYNAS_SECRET_FILE", None)
    else:
        os.environ["RAYNAS_SECRET_FILE"] = old
