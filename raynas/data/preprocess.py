"""Preprocess once: a disk cache of resampled, normalised volumes that all trials share.

:func:`preprocess_dataset` runs the deterministic transforms (load, channel first, RAS,
resampling to the target spacing, intensity normalisation; see :mod:`raynas.data.transforms`)
once per case and writes each case as ``<name>.pt`` (plain tensors, read with
``weights_only=True``) plus a ``manifest.json``, into ``<root>/<dataset>-<digest>/``. The
digest covers the case files' contents and every preprocessing setting (modality, spacing, HU
window, format version), so a changed setting or a changed file gives a new folder and a stale
cache is never read. ``raynas search`` builds it in the driver before any trial starts, under
``<storage>/cache/`` (on a cluster: the shared storage), and trials read it through the trial
spec (:class:`raynas.stages.TrialSpec` ``preprocessed``).

**Verified before use.** The manifest holds each file's size and SHA-256. Every call of
:func:`preprocess_dataset` (the driver, once per search, before Ray) checks every file against
it; a missing, truncated or replaced file is rebuilt from its case, with one ``warning:`` line
naming it. The trials trust the driver's check. The bytes of a case file are deterministic
(the same case gives the same file), so a rebuilt cache has the same digests as the first
build, and :func:`cache_files_digest` (part of the search's fingerprint) names the data the
trials read.

**The source files are hashed once.** ``<root>/index.json`` keeps each source file's SHA-256
with its size, ``mtime_ns``, ``ctime_ns`` and inode; a file whose four values are unchanged is
not read again (:func:`file_digests`). A file edited in place changes its mtime and ctime (the
ctime cannot be set back by a user), a copied or moved-in file has another inode.

**Concurrent builders.** A ``flock`` on ``<root>/.<folder>.lock`` makes concurrent builders
on one machine (two drivers) wait for the first and then read its result. Its limit:
``flock`` is advisory and node-local on some network file systems (NFS without lock support,
some FUSE mounts), where it silently does not exclude a builder on another node. That is safe,
only slower: every file is written to a temporary name and renamed into place, the bytes of a
case's file do not depend on who writes it, and the manifest is written last; two builders
racing without a lock write the same files, and each driver verifies the result before Ray.

Clearing it is deleting the folder (``rm -r <storage>/cache``); the next search rebuilds it.

Example:
    >>> folder = preprocess_dataset(ds, spacing=(1.25, 1.25, 1.37), root=tmp)  # doctest: +SKIP
    >>> read_manifest(folder)["cases"]["la_003"]["shape"]  # doctest: +SKIP
    [1, 320, 320, 110]
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from raynas.data.cases import MSDDataset

__all__ = [
    "FORMAT",
    "cache_digest",
    "cache_files_digest",
    "cache_visible",
    "check_cache_files",
    "file_digests",
    "preprocess_dataset",
    "read_manifest",
]

FORMAT = 2  # bump when the stored layout or the deterministic transforms change
MANIFEST = "manifest.json"
INDEX = "index.json"

logger = logging.getLogger("raynas.data")


def _file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes (the only place that reads a whole file to hash it)."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _stat_key(path: Path) -> list[int]:
    st = os.stat(path)
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def file_digests(paths: Iterable[Path | str], *, index: Path | None = None) -> list[str]:
    """SHA-256 of each file; with ``index`` (a JSON file), a file whose size, mtime, ctime and
    inode are those recorded there is not read again, and new digests are recorded.

    The index is a cache of digests, never trusted beyond its keys: an unreadable index is
    ignored, and one that cannot be written only costs the next call its hashing.
    """
    table: dict[str, Any] = {}
    if index is not None:
        try:
            loaded = json.loads(Path(index).read_text())
            table = loaded if isinstance(loaded, dict) else {}
        except (OSError, ValueError):
            table = {}
    out, changed = [], False
    for path in paths:
        name = str(Path(path).absolute())
        key = _stat_key(Path(name))
        entry = table.get(name)
        if isinstance(entry, dict) and entry.get("stat") == key and entry.get("sha256"):
            out.append(str(entry["sha256"]))
            continue
        digest = _file_digest(Path(name))
        if _stat_key(Path(name)) == key:  # not written while it was read
            table[name] = {"stat": key, "sha256": digest}
            changed = True
        out.append(digest)
    if index is not None and changed:
        try:
            Path(index).parent.mkdir(parents=True, exist_ok=True)
            _atomic_write(Path(index), lambda p: p.write_text(json.dumps(table, indent=0)))
        except OSError as exc:
            logger.info("could not write the digest index %s (%s)", index, exc)
    return out


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


def cache_digest(
    ds: MSDDataset, spacing: Sequence[float], *, index: Path | None = None
) -> str:
    """A digest of the case files' contents (names, images, labels) and the settings;
    ``index``: see :func:`file_digests`."""
    h = hashlib.sha256(json.dumps(settings_of(ds, spacing), sort_keys=True).encode())
    cases = sorted(ds.cases, key=lambda c: c.name)
    paths = [[*c.images, c.label] for c in cases]  # one image file per channel too
    digests = iter(file_digests([p for files in paths for p in files], index=index))
    for case, files in zip(cases, paths, strict=True):
        images = ",".join(next(digests) for _ in files[:-1])
        h.update(f"{case.name}:{images}:{next(digests)};".encode())
    return h.hexdigest()[:16]


def read_manifest(folder: Path | str) -> dict[str, Any]:
    """The manifest of a cache folder (``{"cases": {name: {"file", "shape", "bytes",
    "sha256"}}, ...}``)."""
    return json.loads((Path(folder) / MANIFEST).read_text())


def _manifest_cases(folder: Path) -> dict[str, Any] | None:
    try:
        cases = read_manifest(folder).get("cases")
    except (OSError, ValueError, AttributeError):
        return None
    return cases if isinstance(cases, dict) else None


def _problem(folder: Path, entry: Any) -> str | None:
    """Why a manifest entry's file cannot be used (None: it matches its size and SHA-256)."""
    if not isinstance(entry, dict) or not {"file", "bytes", "sha256"} <= set(entry):
        return "no size and digest in the manifest"
    path = folder / str(entry["file"])
    try:
        size = path.stat().st_size
    except OSError:
        return "missing"
    if size != entry["bytes"]:
        return f"{size} bytes, the manifest says {entry['bytes']}"
    if _file_digest(path) != entry["sha256"]:
        return "its content differs from the manifest's SHA-256"
    return None


def check_cache_files(folder: Path | str, names: Iterable[str]) -> dict[str, str] | None:
    """Checks each case of ``names`` in the cache ``folder`` against the manifest (size and
    SHA-256): ``{case: problem}`` for the bad ones (empty: all good), None when there is no
    readable manifest."""
    folder = Path(folder)
    cases = _manifest_cases(folder)
    if cases is None:
        return None
    out: dict[str, str] = {}
    for name in sorted(names):
        problem = "not in the manifest" if name not in cases else _problem(folder, cases[name])
        if problem is not None:
            out[name] = problem
    return out


def cache_files_digest(folder: Path | str) -> str:
    """One digest of the cache's files (each case's name and SHA-256, from the manifest that
    :func:`preprocess_dataset` verified): the data every trial reads."""
    cases = read_manifest(folder)["cases"]
    listing = sorted((name, str(entry.get("sha256"))) for name, entry in cases.items())
    return hashlib.sha256(json.dumps(listing).encode()).hexdigest()


def cache_visible(folder: Path | str) -> str | None:
    """What a process (a Ray worker on another node) cannot see of the cache ``folder``: its
    manifest, or a listed file of the listed size (None: all there; nothing is hashed)."""
    folder = Path(folder)
    if not folder.is_dir():
        return f"{folder}: not found"
    cases = _manifest_cases(folder)
    if cases is None:
        return f"{folder / MANIFEST}: missing or unreadable"
    for entry in cases.values():
        path = folder / str(entry.get("file"))
        try:
            size = path.stat().st_size
        except OSError:
            return f"{path}: not found"
        if size != entry.get("bytes"):
            return f"{path}: {size} bytes, the manifest says {entry.get('bytes')}"
    return None


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


def _case_bytes(item: dict[str, Any], torch: Any) -> tuple[bytes, list[int]]:
    """A case's file: plain tensors (no MetaTensor metadata, so ``weights_only`` loading accepts
    them), saved to memory so the bytes do not depend on the file's name."""
    image, label = (_plain(item[k], torch) for k in ("image", "label"))
    buffer = io.BytesIO()
    torch.save({"image": image, "label": label}, buffer)
    return buffer.getvalue(), list(image.shape)


def _build(
    ds: MSDDataset, folder: Path, spacing: tuple[float, ...], digest: str, todo: set[str]
) -> None:
    """Writes the files of the cases ``todo`` (the others are kept), then the manifest."""
    import torch
    from monai.transforms import Compose

    from raynas.data.transforms import base_transforms

    folder.mkdir(exist_ok=True)
    load = Compose(
        base_transforms(
            modality=ds.modality, spacing=spacing, hu_window=ds.info.hu_window,
            ct_zscore=ds.info.ct_zscore,
        )
    )
    cases = _manifest_cases(folder) or {}
    for case in ds.cases:
        if case.name not in todo:
            continue
        data, shape = _case_bytes(load(case.as_dict()), torch)
        file = f"{case.name}.pt"
        _atomic_write(folder / file, lambda p, d=data: p.write_bytes(d))
        cases[case.name] = {
            "file": file,
            "shape": shape,
            "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
        }
    manifest = {
        "dataset": ds.name,
        "digest": digest,
        "settings": settings_of(ds, spacing),
        "cases": {name: cases[name] for name in sorted(cases)},
    }
    _atomic_write(
        folder / MANIFEST, lambda p: p.write_text(json.dumps(manifest, indent=1) + "\n")
    )


def preprocess_dataset(
    ds: MSDDataset, *, spacing: Sequence[float], root: Path | str, digest: str | None = None
) -> Path:
    """Writes (once) the preprocessed cases of ``ds`` under ``root`` and verifies them; returns
    the cache folder.

    A folder for the same digest is reused once every file matches its size and SHA-256 in the
    manifest; a file that does not is rebuilt from its case, with one ``warning:`` line naming
    it. ``digest``: a precomputed :func:`cache_digest`.
    """
    import fcntl

    spacing = tuple(float(s) for s in spacing)
    root = Path(root)
    digest = digest or cache_digest(ds, spacing, index=root / INDEX)
    folder = root / f"{ds.name}-{digest}"
    names = {c.name for c in ds.cases}
    if check_cache_files(folder, names) == {}:
        return folder
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f".{folder.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes (see the module doc)
        bad = check_cache_files(folder, names)  # again: another builder may have fixed it
        if bad == {}:
            return folder
        manifest = _manifest_cases(folder) or {}
        if bad is None and (folder / MANIFEST).exists():
            logger.warning(
                "preprocess cache: %s: unreadable; every case rebuilt", folder / MANIFEST
            )
        for name, problem in (bad or {}).items():
            if name in manifest:
                logger.warning(
                    "preprocess cache: %s: %s; rebuilt from the dataset",
                    folder / str(manifest[name].get("file", f"{name}.pt")),
                    problem,
                )
        _build(ds, folder, spacing, digest, names if bad is None else set(bad))
    return folder
