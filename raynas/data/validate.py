"""Per-case checks of an MSD dataset: headers first (cheap), then voxels.

Every problem becomes a :class:`raynas.errors.DataError` naming the file, so bad input is
reported before any training starts.

Example:
    >>> reports = check_dataset(ds)  # doctest: +SKIP
    >>> reports[0].shape, reports[0].label_values
    ((64, 64, 32), (0, 1, 2))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from raynas.data.readers import ImageHeader, read_header, read_voxels
from raynas.errors import DataError

if TYPE_CHECKING:
    from raynas.data.cases import Case, MSDDataset

__all__ = ["CaseReport", "check_case", "check_dataset"]


@dataclass(frozen=True)
class CaseReport:
    """What :func:`check_case` found for one case (``problem`` is ``None`` when it is fine)."""

    name: str
    shape: tuple[int, ...]
    channels: int
    spacing: tuple[float, ...]
    label_values: tuple[int, ...] | None = None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


def _affine_close(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.allclose(a, b, atol=1e-3, rtol=1e-4))


def _diag(affine: np.ndarray) -> list[float]:
    return np.round(np.diag(affine)[:3], 4).tolist()


def _image_header(case: Case, channels: int) -> tuple[ImageHeader, int]:
    """The header of the case's image; one file per channel must agree on shape and affine."""
    files = case.images
    first = read_header(files[0])
    if len(files) == 1:
        ishape = first.shape
        nchan = ishape[3] if len(ishape) == 4 else 1
        if len(ishape) not in (3, 4) or (len(ishape) == 4 and channels == 1 and nchan != 1):
            raise DataError(f"{files[0]}: image shape {ishape} is not 3D (or 4D with channels)")
        return first, nchan
    for path in files[1:]:
        other = read_header(path)
        if other.shape != first.shape:
            raise DataError(
                f"{path}: channel shape {other.shape} differs from {files[0].name}'s "
                f"{first.shape} in case {case.name}"
            )
        if not _affine_close(other.affine, first.affine):
            raise DataError(
                f"{path}: channel spacing/affine differs from {files[0].name}'s in case "
                f"{case.name} (spacing {list(other.spacing)} vs {list(first.spacing)})"
            )
    if len(first.shape) != 3:
        raise DataError(f"{files[0]}: a per-channel image must be 3D, got shape {first.shape}")
    return first, len(files)


def check_case(
    case: Case, *, labels: dict[int, str], channels: int, deep: bool = True
) -> CaseReport:
    """Checks one case; raises :class:`DataError` naming the file at the first problem.

    Header: image is 3D (or 4D with ``channels`` on the last axis, or one 3D file per channel
    with equal shapes and affines), label is 3D with the image's spatial shape and the same
    affine. With ``deep``: no NaN/inf voxels, label values declared.
    """
    image, nchan = _image_header(case, channels)
    label = read_header(case.label)
    ishape, lshape = image.shape, label.shape
    spatial = ishape[:3]
    where = case.images[0]
    if nchan != channels:
        raise DataError(f"{where}: {nchan} channel(s) but the dataset declares {channels}")
    lspatial = lshape[:3] if len(lshape) == 4 and lshape[3] == 1 else lshape
    if lspatial != spatial:
        raise DataError(
            f"{case.label}: label shape {lshape} differs from image shape {ishape} "
            f"({where.name})"
        )
    if not _affine_close(image.affine, label.affine):
        raise DataError(
            f"{case.label}: label affine differs from the image's ({where.name}); "
            f"image diag {_diag(image.affine)}, label diag {_diag(label.affine)}"
        )
    spacing = tuple(round(float(z), 4) for z in image.spacing)
    values: tuple[int, ...] | None = None
    if deep:
        for path in case.images:
            idata = read_voxels(path)
            if not np.isfinite(idata).all():
                bad = int(np.size(idata) - np.count_nonzero(np.isfinite(idata)))
                raise DataError(f"{path}: {bad} NaN or infinite voxel(s)")
        ldata = read_voxels(case.label)
        if not np.isfinite(ldata).all():
            raise DataError(f"{case.label}: NaN or infinite label voxel(s)")
        uniq = np.unique(ldata)
        if not np.array_equal(uniq, np.round(uniq)):
            raise DataError(f"{case.label}: non-integer label values {uniq[:8].tolist()}")
        values = tuple(int(v) for v in uniq)
        undeclared = sorted(set(values) - set(labels))
        if undeclared:
            raise DataError(
                f"{case.label}: label value(s) {undeclared} not declared in dataset.json "
                f"'labels' {sorted(labels)}"
            )
    return CaseReport(case.name, spatial, nchan, spacing, values)


def check_dataset(ds: MSDDataset, *, deep: bool = True, strict: bool = True) -> list[CaseReport]:
    """Checks every case of ``ds`` (see :func:`check_case`).

    Args:
        deep: also read the voxels (NaN/inf, label values); headers only otherwise.
        strict: raise :class:`DataError` at the first bad case; otherwise record the problem in
            that case's report and go on.
    """
    reports = []
    for case in ds.cases:
        try:
            reports.append(check_case(case, labels=ds.labels, channels=ds.in_channels, deep=deep))
        except DataError as exc:
            if strict:
                raise
            reports.append(CaseReport(case.name, (), 0, (), None, str(exc)))
    return reports
