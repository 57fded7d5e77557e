"""Faults from outside the program that end a run: a full disk (any ``OSError`` while writing
outputs), a tracking store deleted mid-run. Each ends as one line (exit 1), with the running
stage marked interrupted so that ``--resume`` continues once the cause is fixed.

- :func:`run_fault` finds such a fault in an exception and its causes (Tune wraps what a
  callback raised in a ``TuneError``; SQLAlchemy wraps SQLite's "database or disk is full"):
  an ``OSError`` of a full, read-only or failing file system (ENOSPC, EDQUOT, EFBIG, EROFS,
  EIO) or a file the run may not write (EACCES, EPERM); other errors keep their traceback;
- :func:`trial_fault` finds it in the errors of a stage's failed trials (a trial whose
  checkpoint could not be written fails in its worker, not on the driver);
- :func:`stop_on_fault` does the clean-up (stage interrupted, open runs KILLED, Ray stopped),
  each step on its own, so that a step that fails too (the disk is still full) never hides the
  first error.

Example:
    >>> fault = run_fault(OSError(28, "No space left on device", "/runs/x/state.json"))
    >>> str(fault)
    'cannot write /runs/x/state.json: No space left on device (ENOSPC); the run is stopped ...'
"""

from __future__ import annotations

import errno
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from raynas.errors import RunError

__all__ = ["run_fault", "stop_on_fault", "trial_fault"]

logger = logging.getLogger("raynas.search")

# errnos of a write that failed for a reason outside the program
_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO}
_ACCESS_ERRNOS = {errno.EACCES, errno.EPERM}  # a file or folder the run may not write
_DISK_TEXT = re.compile(
    r"No space left on device|Disk quota exceeded|File too large|database or disk is full"
    r"|\[Errno (28|122|27)\]"
)
# torch.save's own C++ writer fails this way on a full disk (no OSError to name the file)
_TORCH_WRITE = re.compile(r"inline_container\.cc.*unexpected pos|iostream error|failed writing")
_FULL_BYTES = 1 << 20
_RESUME = "the run is stopped, its stage marked interrupted: {fix}, then continue with --resume"


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo = [exc]
    while todo:
        item = todo.pop(0)
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        todo += [item.__cause__, item.__context__, getattr(item, "cause", None)]
        todo += [getattr(item, "orig", None)]  # SQLAlchemy's DBAPIError


def _one_line(text: str, limit: int = 300) -> str:
    return " ".join(str(text).split())[:limit]


def _os_line(exc: OSError, storage: Path | None) -> str:
    name = errno.errorcode.get(exc.errno or 0, "")
    what = exc.strerror or type(exc).__name__
    verb = "cannot use" if exc.errno in _ACCESS_ERRNOS else "cannot write"
    if exc.filename:
        where = f"{verb} {exc.filename}"
    elif storage is not None:  # a write to an open file names none: the output folder's disk
        free = _free_bytes(Path(storage))
        where = f"{verb} in {storage}" + ("" if free is None else f" ({free} bytes free)")
    else:
        where = "a write failed"
    fix = "free space" if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG) else "fix it"
    return f"{where}: {what}" + (f" ({name})" if name else "") + "; " + _RESUME.format(fix=fix)


def _free_bytes(folder: Path) -> int | None:
    while not folder.exists() and folder.parent != folder:
        folder = folder.parent
    try:
        info = os.statvfs(folder)
    except OSError:
        return None
    return info.f_bavail * info.f_frsize


def run_fault(exc: BaseException, storage: Path | None = None) -> RunError | None:
    """The :class:`~raynas.errors.RunError` that ``exc`` (or one of its causes) amounts to: a
    ``RunError`` itself (e.g. :class:`raynas.tracking.StoreVanished`), an ``OSError`` of a file
    (a full disk, a read-only or failing file system), SQLite's "database or disk is full", or
    a ``torch.save`` that could not write while ``storage`` (the output folder) has no room
    left; ``None`` for anything else (a bug keeps its traceback)."""
    for item in _chain(exc):
        if _TORCH_WRITE.search(str(item)) and storage is not None:
            free = _free_bytes(Path(storage))
            if free is not None and free < _FULL_BYTES:
                return RunError(
                    f"cannot write in {storage}: No space left on device ({free} bytes free; "
                    f"torch.save: {_one_line(str(item), 120)}); " + _RESUME.format(fix="free space")
                )
    for item in _chain(exc):
        if isinstance(item, RunError):
            return item
        if isinstance(item, OSError) and item.errno in _WRITE_ERRNOS | _ACCESS_ERRNOS:
            if isinstance(item, ConnectionError | TimeoutError):
                continue  # the network, not a file
            if item.errno in _WRITE_ERRNOS or item.filename:
                return RunError(_os_line(item, storage))
        if "database or disk is full" in str(item):
            return RunError(
                "the MLflow store's disk is full (database or disk is full); "
                + _RESUME.format(fix="free space")
            )
    return None


def trial_fault(records: list[Any], storage: Path | None = None) -> RunError | None:
    """A :class:`~raynas.errors.RunError` when a failed trial of a stage failed because a file
    could not be written (a full disk in a worker; for ``torch.save``'s own writer, which
    names no errno, while ``storage`` has no room left), naming the trial and its error line."""
    full = storage is not None and (_free_bytes(Path(storage)) or 0) < _FULL_BYTES
    for record in records:
        error = getattr(record, "error", None) or ""
        if getattr(record, "status", "") != "failed":
            continue
        if _DISK_TEXT.search(error) or (full and _TORCH_WRITE.search(error)):
            return RunError(
                f"trial {record.trial_id} ({record.candidate}) could not write its files: "
                f"{_one_line(error)}; " + _RESUME.format(fix="free space")
            )
    return None


def stop_on_fault(setup: Any, fault: RunError) -> None:
    """Marks the running stage interrupted in ``state.json``, the parent run and its open runs
    KILLED, and stops the Ray this run started: each step on its own, its failure (the same
    full disk) logged, never raised."""
    from raynas.interrupts import active_guard
    from raynas.tracking import kill_open_runs

    def mark() -> None:
        setup.folder.mark_interrupted(type(fault).__name__)
        if (guard := active_guard()) is not None:
            guard.resumable = True

    def kill() -> None:
        if setup.parent_run_id:
            kill_open_runs(setup.target, setup.experiment_id, setup.parent_run_id)

    for what, step in (
        ("mark the stage interrupted", mark),
        ("mark the MLflow runs KILLED", kill),
        ("stop Ray", lambda: setup.close(failed=False)),
    ):
        try:
            step()
        except Exception as exc:  # noqa: BLE001 - never hide the fault that stopped the run
            logger.info("after %s: could not %s (%s)", fault, what, _one_line(str(exc)))
