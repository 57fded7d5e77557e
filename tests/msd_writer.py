"""Writes a small MSD task folder the way the Decathlon ships it (``make_msd`` in conftest.py).

A module of its own (not ``conftest``): test modules import it by name, and ``conftest`` may name
another package's conftest by the time a module is imported.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

__all__ = ["write_msd"]


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
