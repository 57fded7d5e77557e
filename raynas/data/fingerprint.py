"""A dataset's fingerprint, the nnU-Net way: what the data holds, measured from its files.

Per case: spacing and shape (in RAS axis order, as training sees them after ``Orientationd``),
class voxel counts, and a sample of foreground intensities per channel (at most
``SAMPLES_PER_CASE`` voxels with label > 0, drawn with a fixed seed, as nnU-Net's
``DatasetFingerprintExtractor`` does). Over all cases: per channel the foreground mean, std,
median, min, max and 0.5 / 99.5 percentiles; per class the fraction of voxels and the number of
cases that hold it. :mod:`raynas.data.plan` turns a fingerprint into a plan.

Example:
    >>> fp = fingerprint(cases, channels=("CT",), labels={0: "bg", 1: "liver"})  # doctest: +SKIP
    >>> fp["cases"]["liver_0"]["spacing"]  # doctest: +SKIP
    [0.7, 0.7, 2.5]
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from raynas.data.readers import read_header, read_voxels

if TYPE_CHECKING:
    from raynas.data.cases import Case

__all__ = ["SAMPLES_PER_CASE", "dataset_digest", "fingerprint", "ras_geometry"]

SAMPLES_PER_CASE = 10_000  # foreground voxels per case and channel (nnU-Net's number)


def dataset_digest(cases: Sequence[Case]) -> str:
    """sha256 over the case names and the contents of every image and label file."""
    h = hashlib.sha256()
    for case in sorted(cases, key=lambda c: c.name):
        parts = []
        for path in (*case.images, case.label):
            with open(path, "rb") as fh:
                parts.append(hashlib.file_digest(fh, "sha256").hexdigest())
        h.update(f"{case.name}:{','.join(parts)};".encode())
    return h.hexdigest()[:16]


def ras_geometry(shape: Sequence[int], affine: np.ndarray) -> tuple[list[int], list[float]]:
    """Spatial shape and spacing in RAS axis order (the order training uses after
    ``Orientationd(axcodes="RAS")``), from a voxel shape and its affine."""
    from nibabel.orientations import io_orientation

    ornt = io_orientation(affine)
    zooms = np.sqrt((np.asarray(affine)[:3, :3] ** 2).sum(axis=0))
    out_shape, out_spacing = [0, 0, 0], [0.0, 0.0, 0.0]
    for axis in range(3):
        world = int(ornt[axis, 0])
        out_shape[world] = int(shape[axis])
        out_spacing[world] = round(float(zooms[axis]), 6)
    return out_shape, out_spacing


def _channels_of(case: Case, n: int) -> list[np.ndarray]:
    if len(case.images) > 1:
        return [np.asarray(read_voxels(p), dtype=np.float64) for p in case.images]
    data = np.asarray(read_voxels(case.images[0]), dtype=np.float64)
    if data.ndim == 4:
        return [data[..., c] for c in range(data.shape[3])]
    return [data]


def _stats(values: np.ndarray) -> dict[str, float | int | None]:
    if values.size == 0:
        return {"n": 0, "mean": None, "std": None, "median": None, "min": None, "max": None,
                "percentile_00_5": None, "percentile_99_5": None}  # fmt: skip
    return {
        "n": int(values.size),
        "mean": float(np.mean(values)),
        "std": float(np.std(values)),
        "median": float(np.median(values)),
        "min": float(np.min(values)),
        "max": float(np.max(values)),
        "percentile_00_5": float(np.percentile(values, 0.5)),
        "percentile_99_5": float(np.percentile(values, 99.5)),
    }


def fingerprint(
    cases: Sequence[Case],
    *,
    channels: Sequence[str],
    labels: dict[int, str],
    voxels: bool = True,
    seed: int = 1234,
) -> dict[str, Any]:
    """The fingerprint of ``cases`` (headers only with ``voxels=False``: no intensities and no
    class frequencies, which stay ``None``).

    Returns:
        ``{"cases": {name: {"shape", "spacing"[, "class_voxels"]}}, "intensity": [per channel]
        | None, "classes": {value: {...}} | None}``.
    """
    per_case: dict[str, dict[str, Any]] = {}
    samples: list[list[np.ndarray]] = [[] for _ in channels]
    class_voxels = {k: 0 for k in labels}
    cases_with = {k: 0 for k in labels}
    total = 0
    for index, case in enumerate(cases):
        header = read_header(case.images[0])
        shape, spacing = ras_geometry(header.shape[:3], header.affine)
        entry: dict[str, Any] = {"shape": shape, "spacing": spacing}
        if voxels:
            label = np.asarray(read_voxels(case.label))
            label = label.reshape(label.shape[:3])
            values, counts = np.unique(label, return_counts=True)
            found = {int(v): int(c) for v, c in zip(values, counts, strict=True)}
            entry["class_voxels"] = {str(v): c for v, c in found.items()}  # JSON keys
            for v, c in found.items():
                if v in class_voxels:
                    class_voxels[v] += c
                    cases_with[v] += 1
            total += int(label.size)
            foreground = label > 0
            rng = np.random.default_rng(seed + index)
            for c, image in enumerate(_channels_of(case, len(channels))):
                fg = image[foreground]
                if fg.size > SAMPLES_PER_CASE:
                    fg = rng.choice(fg, SAMPLES_PER_CASE, replace=False)
                samples[c].append(fg)
        per_case[case.name] = entry
    out: dict[str, Any] = {"cases": per_case, "intensity": None, "classes": None}
    if voxels:
        out["intensity"] = [
            {"channel": name, "foreground": _stats(np.concatenate(samples[c] or [np.empty(0)]))}
            for c, name in enumerate(channels)
        ]
        out["classes"] = {
            str(k): {
                "name": labels[k],
                "voxel_fraction": class_voxels[k] / total if total else None,
                "cases_with": cases_with[k],
            }
            for k in sorted(labels)
        }
    return out
