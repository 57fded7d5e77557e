"""The fingerprint of a search's configuration, kept in ``state.json`` so that ``--resume``
never mixes two configurations.

A fingerprint has one readable part per source (``preset``: the resolved preset less what only
places trials; ``space``: the resolved space; ``dataset``: name, root, case names and a digest of
the case files and, for a search, ``cache``: one digest of the verified preprocess cache's files,
the data the trials read; ``split``: the folds and the cases of each side), a SHA-256 of each part
and one of the whole. :func:`fingerprint_differences` names what differs, down to the preset keys.

Example:
    >>> a = make_fingerprint({"preset": {"seed": 0, "coarse": {"epochs": 3}}})
    >>> b = make_fingerprint({"preset": {"seed": 0, "coarse": {"epochs": 5}}})
    >>> fingerprint_differences(a, b)
    ['preset coarse.epochs (3 -> 5)']
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

__all__ = [
    "FINGERPRINT_VERSION",
    "search_fingerprint",
    "make_fingerprint",
    "fingerprint_differences",
    "resume_mismatch",
]

FINGERPRINT_VERSION = 1
# Preset sections that place or label trials but do not change what a search computes; a resumed
# search may run on other resources (see README, "--resume").
_UNFINGERPRINTED = ("name", "description", "resources", "tracking")


def _digest(data: Any) -> str:
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def make_fingerprint(parts: dict[str, Any]) -> dict[str, Any]:
    """Readable ``parts`` with a hash of each and of the whole (JSON-able)."""
    hashes = {name: _digest(value) for name, value in parts.items()}
    return {
        "version": FINGERPRINT_VERSION,
        "hash": _digest(hashes),
        "hashes": hashes,
        "parts": parts,
    }


def _case_files(case: Any, root: Path) -> dict[str, Any]:
    out: dict[str, Any] = {"name": case.name}
    for what in ("image", "label"):
        value = getattr(case, what)
        rels, sizes = [], []
        for path in map(Path, value if isinstance(value, tuple) else (value,)):  # per channel
            try:
                rels.append(str(path.relative_to(root)))
            except ValueError:
                rels.append(str(path))
            sizes.append(path.stat().st_size if path.is_file() else None)
        out[what] = rels[0] if len(rels) == 1 else rels
        out[f"{what}_bytes"] = sizes[0] if len(sizes) == 1 else sizes
    return out


def _cache_digest(folder: Path | str) -> str:
    from raynas.data.preprocess import cache_files_digest

    return cache_files_digest(folder)


def _split(preset: Any, dataset: Any) -> dict[str, Any]:
    """The cases of each side of the split every trial uses: held-out test, train, validation
    (:func:`raynas.pipeline.split.run_split`, the split written to ``split.json``)."""
    from raynas.pipeline.split import run_split

    return run_split(dataset, preset)


def search_fingerprint(
    *, preset: Any, space: Any, dataset: Any, cache: Path | str | None = None
) -> dict[str, Any]:
    """The fingerprint of a search: resolved preset, space, dataset and split; ``cache``: the
    preprocess cache folder (verified by :func:`raynas.data.preprocess.preprocess_dataset`),
    whose files' digests the dataset part then covers."""
    info = dataset.info
    root = Path(dataset.root)
    cases = [_case_files(c, root) for c in dataset.cases]
    preset_part = {
        k: v for k, v in preset.model_dump(mode="json").items() if k not in _UNFINGERPRINTED
    }
    return make_fingerprint({
        "preset": preset_part,
        "space": space.config.model_dump(mode="json"),
        "dataset": {
            "name": info.name,
            # synthetic data is regenerated identically from its seed, wherever its cache is
            "root": None if info.synthetic else str(root),
            "cases": [c["name"] for c in cases],
            "digest": _digest(cases),
            **({"cache": _cache_digest(cache)} if cache is not None else {}),
        },
        "split": _split(preset, dataset),
    })


def _short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


def _leaf_differences(old: Any, new: Any, path: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in sorted(set(old) | set(new), key=str):
            sub = f"{path}.{key}" if path else str(key)
            if key not in old:
                out.append(f"{sub} (new)")
            elif key not in new:
                out.append(f"{sub} (gone)")
            else:
                out.extend(_leaf_differences(old[key], new[key], sub))
        return out
    if old == new:
        return []
    if isinstance(old, list) and isinstance(new, list) and len(old) != len(new):
        return [f"{path} ({len(old)} -> {len(new)} items)"]
    if isinstance(old, list) and isinstance(new, list):
        return [f"{path} (changed)"]
    return [f"{path} ({_short(old)} -> {_short(new)})"]


def fingerprint_differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What differs between two fingerprints, as ``"<part> <key> (old -> new)"`` strings."""
    out: list[str] = []
    old_parts, new_parts = old.get("parts", {}), new.get("parts", {})
    old_hashes, new_hashes = old.get("hashes", {}), new.get("hashes", {})
    for part in sorted(set(old_parts) | set(new_parts)):
        if old_hashes.get(part) == new_hashes.get(part) and part in old_hashes:
            continue
        leaves = _leaf_differences(old_parts.get(part), new_parts.get(part))
        out.extend(f"{part} {leaf}" for leaf in leaves or ["(changed)"])
    return out


def resume_mismatch(saved: dict[str, Any] | None, current: dict[str, Any]) -> str | None:
    """One line naming what differs between the ``saved`` fingerprint and ``current`` (at most
    four differences, then a count); None when they match or nothing was saved (a search from
    before fingerprints)."""
    if not saved or saved.get("hash") == current["hash"]:
        return None
    diffs = fingerprint_differences(saved, current) or ["(changed)"]
    more = f", and {len(diffs) - 4} more" if len(diffs) > 4 else ""
    return "; ".join(diffs[:4]) + more
