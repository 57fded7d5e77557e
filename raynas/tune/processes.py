"""The processes of a local Ray session, found by the session folder's name in their command
lines and their parentage (never by a program name), and the clean-up of sessions whose raynas
driver was killed with SIGKILL (which leaves Ray's agents running, parent pid 1).

- :func:`record_session` (called once a local Ray has started) writes
  ``<session folder>/raynas_driver.json``: the driver's pid and start time and the session's
  processes (pid and start time each, so a reused pid is never taken for one of them);
- :func:`stop_orphaned_sessions` (called before a local Ray starts, so by the next
  ``raynas search``, ``--resume``, ``retrain`` or ``baseline``) stops what is left of every
  recorded session whose driver no longer runs, and renames its record
  ``raynas_driver.json.stopped``.

Example:
    >>> stop_orphaned_sessions(Path("/tmp/ray"))  # pids it stopped
    []
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import signal
import time
from pathlib import Path

__all__ = [
    "DRIVER_FILE",
    "alive_processes",
    "kill_processes",
    "record_session",
    "session_processes",
    "stop_orphaned_sessions",
]

logger = logging.getLogger("raynas.tune.runtime")

DRIVER_FILE = "raynas_driver.json"  # in a local Ray's session folder: who started it


def _proc_table() -> dict[int, tuple[int, str, str]]:
    """pid -> (parent pid, start time, command line) of every process we can read."""
    table = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as handle:
                stat = handle.read().decode(errors="replace")
            with open(f"/proc/{entry.name}/cmdline", "rb") as handle:
                cmd = handle.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        table[int(entry.name)] = (int(fields[1]), fields[19], cmd)
    return table


def session_processes() -> list[tuple[int, str]]:
    """``(pid, start time)`` of the processes of the local Ray session this driver started:
    those whose command line names the session (its name ends with the driver's pid: gcs,
    raylet, monitors) and everything below them (agents, workers)."""
    if not os.path.isdir("/proc"):
        return []
    me = os.getpid()
    marker = re.compile(rf"session_[0-9_-]+_{me}\b")
    table = _proc_table()
    roots = {pid for pid, (_, _, cmd) in table.items() if pid != me and marker.search(cmd)}
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = set(), list(roots)
    while todo:
        pid = todo.pop()
        if pid in found or pid == me:
            continue
        found.add(pid)
        todo.extend(children.get(pid, []))
    return [(pid, table[pid][1]) for pid in sorted(found)]


def alive_processes(procs: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """The processes of ``procs`` still running (same pid and start time, not a zombie)."""
    out = []
    for pid, start in procs:
        try:
            with open(f"/proc/{pid}/stat", "rb") as handle:
                stat = handle.read().decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[19] == start and fields[0] != "Z":
            out.append((pid, start))
    return out


def kill_processes(procs: list[tuple[int, str]], sig: int) -> None:
    for pid, _ in alive_processes(procs):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def _ray_temp_root() -> Path:
    """Where a local Ray puts its session folders (``$RAY_TMPDIR/ray``, as Ray decides)."""
    from ray._common.utils import get_default_system_temp_dir

    return Path(get_default_system_temp_dir()) / "ray"


def record_session() -> None:
    """Writes ``<session folder>/raynas_driver.json``: this driver's pid and start time and the
    session's processes, for :func:`stop_orphaned_sessions` after a kill -9 of this driver."""
    import ray

    try:
        node = ray._private.worker._global_node  # noqa: SLF001 - the only way to the folder
        folder = Path(node.get_session_dir_path())
        me = os.getpid()
        record = {"pid": me, "start": _proc_table()[me][1], "procs": session_processes()}
        (folder / DRIVER_FILE).write_text(json.dumps(record))
    except Exception as exc:  # noqa: BLE001 - a missing record only loses the clean-up
        logger.info("could not record the Ray session of this driver (%s)", exc)


def stop_orphaned_sessions(temp_root: Path | None = None, grace: float = 5.0) -> list[int]:
    """Stops what is left of local Ray sessions whose raynas driver is gone (killed with
    SIGKILL, so it could not stop them): for every ``session_*/raynas_driver.json`` under
    ``temp_root`` (default: Ray's temp folder) whose driver (pid and start time) no longer runs,
    the recorded processes that still run with their recorded start times, and those whose
    command line names that session folder, with what runs below them; SIGTERM, then SIGKILL
    after ``grace`` seconds. Sessions of live drivers and sessions raynas did not start (no
    record: ``ray start``, other programs) are never touched. Returns the pids it stopped."""
    root = temp_root if temp_root is not None else _ray_temp_root()
    stopped: list[int] = []
    for record_file in sorted(root.glob(f"session_*/{DRIVER_FILE}")):
        try:
            record = json.loads(record_file.read_text())
            driver = (int(record["pid"]), str(record["start"]))
            recorded = [(int(pid), str(start)) for pid, start in record["procs"]]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if alive_processes([driver]):
            continue  # a running search's session
        procs = alive_processes(recorded + _named(record_file.parent.name))
        if procs:
            logger.info(
                "stopping %d Ray processes left by a killed driver (pid %d, %s)",
                len(procs), driver[0], record_file.parent,
            )  # fmt: skip
        for sig in (signal.SIGTERM, signal.SIGKILL):
            kill_processes(procs, sig)
            deadline = time.monotonic() + grace
            while alive_processes(procs) and time.monotonic() < deadline:
                time.sleep(0.1)
        stopped += [pid for pid, _ in procs]
        with contextlib.suppress(OSError):
            record_file.rename(record_file.with_name(DRIVER_FILE + ".stopped"))
    return stopped


def _named(session: str) -> list[tuple[int, str]]:
    """``(pid, start)`` of the processes whose command line names ``session`` (a session
    folder's name) and of everything below them."""
    marker = re.compile(rf"{re.escape(session)}\b")
    table = _proc_table()
    me = os.getpid()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    todo = [pid for pid, (_, _, cmd) in table.items() if pid != me and marker.search(cmd)]
    found: set[int] = set()
    while todo:
        pid = todo.pop()
        if pid not in found and pid != me:
            found.add(pid)
            todo.extend(children.get(pid, []))
    return [(pid, table[pid][1]) for pid in sorted(found)]
