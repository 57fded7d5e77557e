"""Preprocess once: a disk cache of resampled, normalised volumes that all trials share.

:func:`preprocess_dataset` runs the deterministic transforms (load, channel first, RAS,
resampling to the target spacing, intensity normalisation; see :mod:`raynas.data.transforms`)
once per case and writes each case as ``<name>.pt`` (plain tensors, read with
``weights_only=True``) plus a ``manifest.json``, into ``<root>/<dataset>-<digest>/``. The
digest covers the case files' contents and every preprocessing setting (modality, spacing, HU
window, format version), so a changed setting or a changed file gives a new folder and a stale
cache is never read. Files are written to a temporary name and renamed; a file lock next to the
folder makes concurrent builders (two drivers, or trials on a cluster) wait for the first one
and then read its result. ``raynas search`` builds it in the driver before any trial starts,
under ``<storage>/cache/`` (on a cluster: the shared storage), and trials read it through the
trial spec (:class:`raynas.stages.TrialSpec` ``preprocessed``).

Clearing it is deleting the folder (``rm -r <storage>/cache``); the next search rebuilds it.

Example:
    >>> folder = preprocess_dataset(ds, spacing=(1.25, 1.25, 1.37), root=tmp)  # doctest: +SKIP
    >>> read_manifest(folder)["cases"]["la_003"]  # doctest: +SKIP
    {'file': 'la_003.pt', 'shape': [1, 320, 320, 110]}
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from raynas.data.cases import MSDDataset

__all__ = ["FORMAT", "cache_digest", "preprocess_dataset", "read_manifest"]

FORMAT = 1  # bump when the stored layout or the deterministic transforms change
MANIFEST = "manifest.json"


def _file_digest(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def settings_of(ds: MSDDataset, spacing: Sequence[float]) -> dict[str, Any]:
    """Every setting that changes a preprocessed volume."""
    hu = ds.info.hu_window
    return {
        "format": FORMAT,
        "modality": ds.modality,
        "spacing": [float(s) for s in spacing],
        "hu_window": [float(v) for v in hu] if hu is not None else None,
        # a planned CT dataset's z-score (only then, so other caches keep their digests)
        **({"ct_zscore": list(ds.info.ct_zscore)} if ds.info.ct_zscore is not None else {}),
        "channels": list(ds.channels),
    }


def cache_digest(ds: MSDDataset, spacing: Sequence[float]) -> str:
    """A digest of the case files' contents (names, images, labels) and the settings."""
    h = hashlib.sha256(json.dumps(settings_of(ds, spacing), sort_keys=True).encode())
    for case in sorted(ds.cases, key=lambda c: c.name):
        images = ",".join(_file_digest(p) for p in case.images)  # one file per channel too
        h.update(f"{case.name}:{images}:{_file_digest(case.label)};".encode())
    return h.hexdigest()[:16]


def read_manifest(folder: Path | str) -> dict[str, Any]:
    """The manifest of a complete cache folder (``{"cases": {name: {"file", "shape"}}, ...}``)."""
    return json.loads((Path(folder) / MANIFEST).read_text())


def _complete(folder: Path, names: set[str]) -> bool:
    try:
        manifest = read_manifest(folder)
    except (OSError, ValueError):
        return False
    cases = manifest.get("cases", {})
    return names <= set(cases) and all((folder / cases[n]["file"]).is_file() for n in names)


def _plain(value: Any, torch: Any) -> Any:
    value = value.as_tensor() if hasattr(value, "as_tensor") else torch.as_tensor(value)
    return value.detach().clone().contiguous()


def _atomic_write(path: Path, write: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def preprocess_dataset(
    ds: MSDDataset, *, spacing: Sequence[float], root: Path | str, digest: str | None = None
) -> Path:
    """Writes (once) the preprocessed cases of ``ds`` under ``root``; returns the cache folder.

    A complete folder for the same digest is reused as is (nothing is read but the manifest and
    the case files' digest). ``digest``: a precomputed :func:`cache_digest`.
    """
    import fcntl

    import torch

    from raynas.data.transforms import base_transforms

    spacing = tuple(float(s) for s in spacing)
    digest = digest or cache_digest(ds, spacing)
    root = Path(root)
    folder = root / f"{ds.name}-{digest}"
    names = {c.name for c in ds.cases}
    if _complete(folder, names):
        return folder
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f".{folder.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if _complete(folder, names):  # another builder finished while we waited
            return folder
        folder.mkdir(exist_ok=True)
        from monai.transforms import Compose

        load = Compose(
            base_transforms(
                modality=ds.modality, spacing=spacing, hu_window=ds.info.hu_window,
                ct_zscore=ds.info.ct_zscore,
            )
        )
        cases: dict[str, Any] = {}
        for case in ds.cases:
            item = load(case.as_dict())
            # plain tensors (no MetaTensor metadata), so weights_only loading accepts them
            image, label = (_plain(item[k], torch) for k in ("image", "label"))
            data = {"image": image, "label": label}
            file = f"{case.name}.pt"
            _atomic_write(folder / file, lambda p, d=data: torch.save(d, p))
            cases[case.name] = {"file": file, "shape": list(image.shape)}
        manifest = {
            "dataset": ds.name,
            "digest": digest,
            "settings": settings_of(ds, spacing),
            "cases": cases,
        }
        _atomic_write(
            folder / MANIFEST, lambda p: p.write_text(json.dumps(manifest, indent=1) + "\n")
        )
    return folder
