"""Writers of a user's own data in each layout raynas reads (``--dataset PATH``): an nnU-Net v2
raw folder (``.nii.gz`` or ``.nrrd``, one file per channel) and a MONAI datalist. MSD folders
come from ``conftest.write_msd``.

Every case holds each class as a box (so class frequencies are known exactly) and an image whose
foreground is brighter than its background.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

__all__ = ["write_image", "write_nnunet", "write_datalist", "case_arrays"]


def write_image(path: Path, data: np.ndarray, spacing: tuple[float, float, float]) -> None:
    """``data`` (X, Y, Z) as NIfTI, NRRD or MHA (by the path's ending; MHA needs ITK),
    axis-aligned at ``spacing``."""
    if path.name.endswith(".mha"):
        import itk

        img = itk.image_from_array(np.ascontiguousarray(np.transpose(data, (2, 1, 0))))
        img.SetSpacing([float(s) for s in spacing])
        itk.imwrite(img, str(path))
        return
    if path.name.endswith(".nrrd"):
        import nrrd

        header = {
            "space": "left-posterior-superior",
            "space directions": np.diag(spacing),
            "space origin": [0.0, 0.0, 0.0],
        }
        nrrd.write(str(path), data, header, index_order="F")
        return
    import nibabel as nib

    nib.save(nib.Nifti1Image(data, np.diag([*spacing, 1.0])), str(path))


def case_arrays(
    shape: tuple[int, int, int], classes: int, channels: int, seed: int, ct: bool = False
) -> tuple[list[np.ndarray], np.ndarray]:
    """Images (one per channel) and a label with one box per foreground class."""
    rng = np.random.default_rng(seed)
    label = np.zeros(shape, np.uint8)
    x, y, z = (max(1, s // 4) for s in shape)
    for k in range(1, classes):
        label[x * k - x // 2 : x * k + x, y : 3 * y, z : 3 * z] = k
    images = []
    for c in range(channels):
        base = rng.normal(-500.0 if ct else 100.0, 30.0, shape)
        img = base + (label > 0) * (400.0 if ct else 50.0 + 10 * c)
        images.append(img.astype(np.int16 if ct else np.float32))
    return images, label


def write_nnunet(
    root: Path,
    *,
    cases: int = 4,
    shape: tuple[int, int, int] = (24, 24, 12),
    channels: tuple[str, ...] = ("T2", "ADC"),
    labels: tuple[str, ...] = ("background", "zone a", "zone b"),
    ending: str = ".nii.gz",
    spacing: tuple[float, float, float] = (1.0, 1.0, 2.0),
    spacings: list[tuple[float, float, float]] | None = None,
    ct: bool = False,
    test_images: bool = True,
) -> Path:
    """An nnU-Net v2 raw folder: ``imagesTr/<case>_<XXXX><ending>``, ``labelsTr/``, optional
    ``imagesTs/``, ``dataset.json`` (``channel_names``, ``labels`` name -> value, ...)."""
    for sub in ("imagesTr", "labelsTr", *(("imagesTs",) if test_images else ())):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for i in range(cases):
        name = f"case_{i:03d}"
        sp = spacings[i] if spacings else spacing
        images, label = case_arrays(shape, len(labels), len(channels), seed=i, ct=ct)
        for c, img in enumerate(images):
            write_image(root / "imagesTr" / f"{name}_{c:04d}{ending}", img, sp)
        write_image(root / "labelsTr" / f"{name}{ending}", label, sp)
    if test_images:
        images, _ = case_arrays(shape, len(labels), len(channels), seed=99, ct=ct)
        for c, img in enumerate(images):
            write_image(root / "imagesTs" / f"test_000_{c:04d}{ending}", img, spacing)
    (root / "imagesTr" / "._case_000_0000.nii.gz").write_bytes(b"\x00\x05\x16\x07junk")
    meta = {
        "channel_names": {str(i): c for i, c in enumerate(channels)},
        "labels": {n: i for i, n in enumerate(labels)},
        "numTraining": cases,
        "file_ending": ending,
    }
    (root / "dataset.json").write_text(json.dumps(meta, indent=1))
    return root


def write_datalist(
    folder: Path,
    *,
    cases: int = 4,
    shape: tuple[int, int, int] = (24, 24, 12),
    classes: int = 2,
    spacing: tuple[float, float, float] = (1.0, 1.0, 2.0),
    declare: bool = False,
) -> Path:
    """Images and labels under ``folder`` and ``folder/datalist.json`` (paths relative to
    ``folder``: ``--dataset folder/datalist.json --data-root folder``); ``declare`` adds
    ``labels`` and ``modality`` keys (otherwise raynas reads them from the files)."""
    (folder / "img").mkdir(parents=True, exist_ok=True)
    (folder / "seg").mkdir(exist_ok=True)
    training = []
    for i in range(cases):
        images, label = case_arrays(shape, classes, 1, seed=i)
        write_image(folder / "img" / f"pat{i}.nii.gz", images[0], spacing)
        write_image(folder / "seg" / f"pat{i}.nii.gz", label, spacing)
        entry = {"fold": i % 2, "image": f"img/pat{i}.nii.gz", "label": f"seg/pat{i}.nii.gz"}
        training.append(entry)
    data: dict = {"training": training}
    if declare:
        data["labels"] = {str(k): ("background" if k == 0 else f"c{k}") for k in range(classes)}
        data["modality"] = {"0": "MRI"}
    path = folder / "datalist.json"
    path.write_text(json.dumps(data, indent=1))
    return path
