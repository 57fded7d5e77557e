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

import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

# Test helper modules beside this file (``procs``: find and stop the processes a test started).
sys.path.insert(0, str(Path(__file__).parent))


def write_msd(
    root: Path,
    *,
    cases: int = 3,
    shape: tuple[int, int, int] = (16, 16, 8),
    channels: tuple[str, ...] = ("MRI",),
    labels: tuple[str, ...] = ("background", "organ"),
    spacing: tuple[float, float, float] = (1.0, 1.0, 2.0),
    prefix: str = "case",
    junk: bool = True,
    seed: int = 0,
    ct: bool = False,
) -> Path:
    """Writes an MSD-style task folder; multi-channel images are 4D ``(X, Y, Z, C)``.

    With ``junk``, the folder also holds AppleDouble ``._*`` files, a ``.DS_Store`` and an
    unlisted NIfTI in ``imagesTr/``: none of them may become a case.
    """
    import nibabel as nib

    rng = np.random.default_rng(seed)
    (root / "imagesTr").mkdir(parents=True, exist_ok=True)
    (root / "labelsTr").mkdir(exist_ok=True)
    (root / "imagesTs").mkdir(exist_ok=True)
    affine = np.diag([-spacing[0], -spacing[1], spacing[2], 1.0])  # LPS-like, as MSD often is
    training = []
    for i in range(cases):
        fname = f"{prefix}_{i:03d}.nii.gz"
        img_shape = shape if len(channels) == 1 else (*shape, len(channels))
        if ct:
            img = rng.normal(40.0, 200.0, img_shape).astype(np.int16)
        else:
            img = rng.normal(100.0, 20.0, img_shape).astype(np.float32)
        lab = np.zeros(shape, np.uint8)
        x, y, z = (s // 4 for s in shape)
        for k in range(1, len(labels)):
            lab[x * k - x // 2 : x * k + x, y : 3 * y, z : 3 * z] = k
        nib.save(nib.Nifti1Image(img, affine), str(root / "imagesTr" / fname))
        nib.save(nib.Nifti1Image(lab, affine), str(root / "labelsTr" / fname))
        training.append({"image": f"./imagesTr/{fname}", "label": f"./labelsTr/{fname}"})
    meta = {
        "name": "TestTask",
        "description": "written by tests/conftest.py",
        "tensorImageSize": "3D" if len(channels) == 1 else "4D",
        "modality": {str(i): c for i, c in enumerate(channels)},
        "labels": {str(i): n for i, n in enumerate(labels)},
        "numTraining": cases,
        "numTest": 0,
        "training": training,
        "test": [],
    }
    (root / "dataset.json").write_text(json.dumps(meta, indent=1))
    if junk:
        for sub in ("imagesTr", "labelsTr"):
            for i in range(cases):
                (root / sub / f"._{prefix}_{i:03d}.nii.gz").write_bytes(b"\x00\x05\x16\x07junk")
        (root / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
        (root / "._dataset.json").write_bytes(b"\x00\x05\x16\x07")
        stray = rng.normal(size=shape).astype(np.float32)
        nib.save(nib.Nifti1Image(stray, affine), str(root / "imagesTr" / "unlisted_999.nii.gz"))
    return root


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
