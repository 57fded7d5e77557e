"""Image files of any supported ending: ``.nii.gz`` / ``.nii`` (nibabel), ``.nrrd`` (pynrrd),
``.mha`` (ITK, optional): header (shape, spacing, affine) and voxels, without MONAI.

Validation and planning read headers and voxels through these two functions, so every format
is checked the same way; training reads the same files through MONAI's ``LoadImaged`` (which
picks nibabel, pynrrd or ITK by the file's ending).

Example:
    >>> split_ending("case_0000.nii.gz")
    ('case_0000', '.nii.gz')
"""

from __future__ import annotations

import gzip
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from raynas.errors import DataError

__all__ = ["FILE_ENDINGS", "ImageHeader", "read_header", "read_voxels", "split_ending"]

FILE_ENDINGS = (".nii.gz", ".nii", ".nrrd", ".mha")
_READ_ERRORS = (OSError, EOFError, ValueError, zlib.error, gzip.BadGzipFile, KeyError)


@dataclass(frozen=True)
class ImageHeader:
    """What a header says: spatial shape (+ channel count of a 4D image), spacing, affine."""

    shape: tuple[int, ...]
    spacing: tuple[float, float, float]
    affine: np.ndarray


def split_ending(name: str) -> tuple[str, str]:
    """``("case_0000", ".nii.gz")`` for ``case_0000.nii.gz``; ``(name, "")`` for others."""
    for ending in FILE_ENDINGS:
        if name.endswith(ending):
            return name[: -len(ending)], ending
    return name, ""


def _why(exc: BaseException, path: Path) -> str:
    msg = (str(exc).splitlines() or [""])[0].replace(f'"{path}"', "it").replace(str(path), "it")
    return f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__


def _nrrd_affine(header: dict[str, Any]) -> tuple[np.ndarray, tuple[float, ...]]:
    dirs = header.get("space directions")
    if dirs is None:
        spacing = tuple(float(s) for s in header.get("spacings", (1.0, 1.0, 1.0)))[:3]
        dirs = np.diag(spacing)
    dirs = np.asarray([d for d in dirs if d is not None and not np.isnan(d).any()], float)[:3]
    origin = np.asarray(header.get("space origin", np.zeros(3)), float)[:3]
    affine = np.eye(4)
    affine[:3, :3] = dirs.T
    affine[:3, 3] = origin
    return affine, tuple(float(np.linalg.norm(d)) for d in dirs)


def _itk() -> Any:
    try:
        import itk
    except ImportError:
        raise DataError(
            "reading .mha files needs ITK: pip install itk (or convert the files to .nii.gz)"
        ) from None
    return itk


def _itk_header(img: Any) -> tuple[tuple[int, ...], np.ndarray, tuple[float, ...], int]:
    size = tuple(int(s) for s in img.GetLargestPossibleRegion().GetSize())
    spacing = tuple(float(s) for s in img.GetSpacing())
    direction = np.asarray(img.GetDirection()) * np.asarray(spacing)[None, :]
    affine = np.eye(4)
    affine[:3, :3] = direction[:3, :3]
    affine[:3, 3] = np.asarray(img.GetOrigin())[:3]
    return size, affine, spacing, int(img.GetNumberOfComponentsPerPixel())


def read_header(path: Path) -> ImageHeader:
    """The header of an image file; :class:`DataError` naming the file if it is unreadable."""
    ending = split_ending(path.name)[1]
    try:
        if ending in (".nii.gz", ".nii"):
            import nibabel as nib

            img = nib.load(str(path))
            shape = tuple(int(s) for s in img.shape)
            zooms = tuple(float(z) for z in img.header.get_zooms()[:3])
            return ImageHeader(shape, zooms, np.asarray(img.affine, float))  # type: ignore[arg-type]
        if ending == ".nrrd":
            import nrrd

            header = nrrd.read_header(str(path))
            sizes = tuple(int(s) for s in header["sizes"])
            affine, spacing = _nrrd_affine(header)
            return ImageHeader(sizes, spacing, affine)  # type: ignore[arg-type]
        if ending == ".mha":
            itk = _itk()
            reader = itk.ImageFileReader.New(FileName=str(path))
            reader.UpdateOutputInformation()
            size, affine, spacing, comps = _itk_header(reader.GetOutput())
            shape = size if comps == 1 else (*size, comps)
            return ImageHeader(shape, spacing, affine)  # type: ignore[arg-type]
    except DataError:
        raise
    except Exception as exc:  # each library raises its own types for a bad header
        raise DataError(f"{path}: unreadable or truncated image ({_why(exc, path)})") from None
    raise DataError(f"{path}: unsupported file ending; supported: {', '.join(FILE_ENDINGS)}")


def read_voxels(path: Path) -> np.ndarray:
    """The voxels of an image file as an array ``(X, Y, Z[, C])``."""
    ending = split_ending(path.name)[1]
    try:
        if ending in (".nii.gz", ".nii"):
            import nibabel as nib

            return np.asanyarray(nib.load(str(path)).dataobj)
        if ending == ".nrrd":
            import nrrd

            data, _ = nrrd.read(str(path), index_order="F")
            return np.asarray(data)
        if ending == ".mha":
            itk = _itk()
            arr = itk.array_from_image(itk.imread(str(path)))  # a copy: a view dies with it
            # ITK arrays are (Z, Y, X[, C]); back to (X, Y, Z[, C])
            axes = (2, 1, 0, 3) if arr.ndim == 4 else (2, 1, 0)
            return np.transpose(np.asarray(arr), axes[: arr.ndim])
    except DataError:
        raise
    except (*_READ_ERRORS, Exception) as exc:  # noqa: B014 - any reader failure names the file
        raise DataError(f"{path}: unreadable or truncated image ({_why(exc, path)})") from None
    raise DataError(f"{path}: unsupported file ending; supported: {', '.join(FILE_ENDINGS)}")
