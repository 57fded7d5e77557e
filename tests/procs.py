"""Finding and stopping exactly the processes a test started (by process group or by a marker
in their command line, such as the test's own Ray temp dir) — never a broad ``ray stop``."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

__all__ = ["pids_with_marker", "stop_pids", "stop_group"]


def pids_with_marker(marker: str) -> list[int]:
    """Processes whose command line or environment mentions ``marker`` (e.g. a temp dir)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="ignore")
            env = (entry / "environ").read_bytes().decode(errors="ignore")
        except OSError:
            continue
        if marker in cmd or marker in env:
            found.append(int(entry.name))
    return found


def stop_pids(pids: list[int], *, timeout: float = 15.0) -> None:
    """SIGTERM, wait up to ``timeout``, then SIGKILL what is left."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in pids):
            time.sleep(0.2)


def stop_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass
