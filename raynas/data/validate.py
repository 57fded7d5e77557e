"""Per-case checks of an MSD dataset: headers first (cheap), then voxels.

Every problem becomes a :class:`raynas.errors.DataError` naming the file, so bad input is
reported before any training starts.

Example:
    >>> reports = check_dataset(ds)  # doctest: +SKIP
    >>> reports[0].shape, reports[0].label_values
    ((64, 64, 32), (0, 1, 2))
"""

from __future__ import annotations

import gzip
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from raynas.errors import DataError

if TYPE_CHECKING:
    from raynas.data.cases import Case, MSDDataset

__all__ = ["CaseReport", "check_case", "check_dataset"]

_READ_ERRORS = (OSError, EOFError, ValueError, zlib.error, gzip.BadGzipFile)


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


def _load(path: Path) -> Any:
    import nibabel as nib

    try:
        return nib.load(str(path))
    except Exception as exc:  # nibabel raises many types for a bad header
        raise DataError(f"{path}: unreadable or truncated NIfTI ({_why(exc, path)})") from None


def _why(exc: BaseException, path: Path) -> str:
    msg = (str(exc).splitlines() or [""])[0].replace(f'"{path}"', "it").replace(str(path), "it")
    return f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__


def _read(img: Any, path: Path) -> np.ndarray:
    try:
        return np.asanyarray(img.dataobj)
    except _READ_ERRORS as exc:
        raise DataError(f"{path}: unreadable or truncated NIfTI ({_why(exc, path)})") from None


def check_case(
    case: Case, *, labels: dict[int, str], channels: int, deep: bool = True
) -> CaseReport:
    """Checks one case; raises :class:`DataError` naming the file at the first problem.

    Header: image is 3D (or 4D with ``channels`` on the last axis), label is 3D with the image's
    spatial shape and the same affine. With ``deep``: no NaN/inf voxels, label values declared.
    """
    image, label = _load(case.image), _load(case.label)
    ishape, lshape = tuple(int(s) for s in image.shape), tuple(int(s) for s in label.shape)
    spatial = ishape[:3]
    nchan = ishape[3] if len(ishape) == 4 else 1
    if len(ishape) not in (3, 4) or (len(ishape) == 4 and channels == 1 and nchan != 1):
        raise DataError(f"{case.image}: image shape {ishape} is not 3D (or 4D with channels)")
    if nchan != channels:
        raise DataError(
            f"{case.image}: {nchan} channel(s) but dataset.json 'modality' lists {channels}"
        )
    lspatial = lshape[:3] if len(lshape) == 4 and lshape[3] == 1 else lshape
    if lspatial != spatial:
        raise DataError(
            f"{case.label}: label shape {lshape} differs from image shape {ishape} "
            f"({case.image.name})"
        )
    if not np.allclose(image.affine, label.affine, atol=1e-3, rtol=1e-4):
        raise DataError(
            f"{case.label}: label affine differs from the image's ({case.image.name}); "
            f"image diag {np.round(np.diag(image.affine)[:3], 4).tolist()}, "
            f"label diag {np.round(np.diag(label.affine)[:3], 4).tolist()}"
        )
    spacing = tuple(round(float(z), 4) for z in image.header.get_zooms()[:3])
    values: tuple[int, ...] | None = None
    if deep:
        idata = _read(image, case.image)
        if not np.isfinite(idata).all():
            bad = int(np.size(idata) - np.count_nonzero(np.isfinite(idata)))
            raise DataError(f"{case.image}: {bad} NaN or infinite voxel(s)")
        ldata = _read(label, case.label)
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
