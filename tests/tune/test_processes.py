"""stop_orphaned_sessions: the processes of a recorded Ray session whose driver is gone are
stopped (by recorded pid + start time, or by the session folder's name in their command line),
those of a live driver's session and of unrecorded sessions are not. Real processes, no Ray
(the end-to-end case with a real Ray and kill -9: tests/faults/test_faults_store.py)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from raynas.tune.processes import DRIVER_FILE, _proc_table, stop_orphaned_sessions


def _sleeper(*marker: str) -> subprocess.Popen:
    """A process whose command line carries ``marker`` (as Ray's carry their session name)."""
    code = "import time; time.sleep(120)"
    return subprocess.Popen([sys.executable, "-c", code, *marker])


def _start(pid: int) -> str:
    for _ in range(50):
        if pid in (table := _proc_table()):
            return table[pid][1]
        time.sleep(0.05)
    raise AssertionError(f"no process {pid}")


def _session(root: Path, name: str, driver: tuple[int, str], procs: list) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / DRIVER_FILE).write_text(json.dumps({"pid": driver[0], "start": driver[1],
                                                  "procs": procs}))  # fmt: skip
    return folder


def test_orphans_of_a_dead_driver_are_stopped_others_are_not(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead_driver = (dead.pid, _start(dead.pid))
    dead.wait()
    driver = _sleeper()
    live_driver = (driver.pid, _start(driver.pid))
    orphan_session = f"session_2026-12-07_11-00-00_000001_{dead_driver[0]}"
    recorded = _sleeper()  # found by its recorded pid and start time
    named = _sleeper(f"--session-name={orphan_session}")  # found by the session folder's name
    kept_live = _sleeper("session_2026-12-07_11-00-00_000002_live")
    kept_unrecorded = _sleeper("session_2026-12-07_11-00-00_000003_99")
    procs = [driver, recorded, named, kept_live, kept_unrecorded]
    try:
        orphan = _session(tmp_path, orphan_session, dead_driver,
                          [[recorded.pid, _start(recorded.pid)]])  # fmt: skip
        live = _session(tmp_path, "session_2026-12-07_11-00-00_000002_live", live_driver,
                        [[kept_live.pid, _start(kept_live.pid)]])  # fmt: skip
        (tmp_path / "session_2026-12-07_11-00-00_000003_99").mkdir()  # no record: not ours

        stopped = stop_orphaned_sessions(tmp_path, grace=2.0)

        assert sorted(stopped) == sorted([recorded.pid, named.pid])
        assert recorded.wait(timeout=10) is not None and named.wait(timeout=10) is not None
        assert kept_live.poll() is None and kept_unrecorded.poll() is None
        assert not (orphan / DRIVER_FILE).exists()
        assert (orphan / f"{DRIVER_FILE}.stopped").is_file()
        assert (live / DRIVER_FILE).is_file()
        assert stop_orphaned_sessions(tmp_path, grace=2.0) == []  # handled once
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
