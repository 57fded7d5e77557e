"""The output folder of a run: ``<storage>/<experiment>/<name>`` (a new one, ``<name>_2``, ...
when it exists), or on ``--resume`` the most recent search there, checked against this run's
configuration fingerprint and its MLflow parent run."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from raynas.errors import UserError
from raynas.pipeline.outputs import SearchFolder, slug

__all__ = ["check_parent_run", "check_resume_fingerprint", "find_folder", "last_active"]

logger = logging.getLogger("raynas.search")


def last_active(folder: Path) -> float:
    """When a search folder was last written: ``state.json``'s ``updated`` time (kept through a
    copy), else the file's mtime."""
    state_file = folder / "state.json"
    try:
        updated = json.loads(state_file.read_text()).get("updated")
    except (OSError, ValueError, AttributeError):
        updated = None
    if isinstance(updated, int | float) and not isinstance(updated, bool):
        return float(updated)
    return state_file.stat().st_mtime


def find_folder(storage: Path, experiment: str, name: str, *, resume: bool) -> SearchFolder:
    """The run's folder under ``storage`` (not created here): a new one, or on ``resume`` the
    most recent search of that name (UserError when there is none)."""
    base = storage / slug(experiment) / slug(name)
    existing = [base, *base.parent.glob(base.name + "_*")]
    existing = [p for p in existing if (p / "state.json").is_file()]
    if resume:
        if not existing:
            raise UserError(f"--resume: no earlier search found under {base.parent}")
        # the most recent search by time (not by folder name: _10 sorts before _2)
        return SearchFolder(max(existing, key=lambda p: (last_active(p), p.name)))
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}_{n}")
    return SearchFolder(path)


def check_resume_fingerprint(folder: SearchFolder, fingerprint: dict[str, Any]) -> None:
    """On ``--resume``: the folder's saved fingerprint must match this run's."""
    from raynas.pipeline.fingerprint import resume_mismatch

    if not folder.state:  # a new folder
        return
    saved = folder.state.get("fingerprint")
    if saved is None:
        logger.warning(
            "--resume: %s has no configuration fingerprint (a search from an older raynas); "
            "cannot check that it used the same preset, space and data",
            folder.root,
        )
        return
    diff = resume_mismatch(saved, fingerprint)
    if diff is not None:
        raise UserError(
            f"--resume: {folder.root} was searched with another configuration: {diff}; "
            "pass the same options, or leave out --resume to start a new search"
        )


def check_parent_run(target: Any, folder: SearchFolder) -> None:
    """On ``--resume``: the parent run recorded in ``state.json`` is in the store (a store that
    was deleted and recreated, or another ``--tracking-uri``, does not hold it)."""
    from raynas.tracking import has_run

    parent = folder.state["parent_run_id"]
    if not has_run(target, parent):
        raise UserError(
            f"--resume: the MLflow store {target.uri} has no run {parent} (the parent run of "
            f"{folder.root}): put back the store this search used, or give its --tracking-uri"
        )
