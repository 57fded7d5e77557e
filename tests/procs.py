"""Finding and stopping exactly the processes a test started (by process group or by a marker
in their command line, such as the test's own Ray temp dir) — never a broad ``ray stop``."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

__all__ = ["free_port", "kill_when", "pids_with_marker", "stop_pids", "stop_group", "mlflow_server"]


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


def kill_when(cmd: list[str], *, cwd: Path, env: dict[str, str], ready: Callable[[], bool],
              what: str, timeout: float = 600.0) -> None:
    """Runs ``cmd`` in its own process group, SIGKILLs the whole group once ``ready()`` holds
    (asserting the command is still running and gets there within ``timeout`` seconds: ``what``
    names the moment), then stops what is left of its Ray (processes marked by
    ``env["RAY_TMPDIR"]``)."""
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not ready():
            assert proc.poll() is None, f"the command ended before {what}"
            time.sleep(0.5)
        assert ready(), f"no {what} within {timeout:.0f} s"
        stop_group(proc.pid)  # SIGKILL the driver and everything in its process group
        proc.wait(timeout=30)
    finally:
        stop_group(proc.pid)
        stop_pids(pids_with_marker(env["RAY_TMPDIR"]))


def free_port() -> int:
    """A free TCP port on 127.0.0.1 from the ephemeral range (outside Ray's 10002-19999, so a
    test server never takes a port a Ray worker may want)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if not 10002 <= port <= 19999:
            return port
    raise RuntimeError("no free port outside 10002-19999")


@contextlib.contextmanager
def mlflow_server(folder: Path, *, timeout: float = 90.0) -> Iterator[str]:
    """An ``mlflow server`` on 127.0.0.1 (SQLite store and proxied artifacts under ``folder``)
    in a session of its own; yields its ``http://`` URI and stops exactly that session."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    mlflow = str(Path(sys.executable).with_name("mlflow"))
    log = open(folder / "server.log", "wb")  # noqa: SIM115 - closed in finally
    proc = subprocess.Popen(
        [
            mlflow, "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
            "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
            "--artifacts-destination", str(folder / "artifacts"),
        ],
        cwd=folder, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        # no job runner and huey consumers (on by default with a SQLite store): not needed here
        env=dict(os.environ, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false"),
    )  # fmt: skip
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                text = (folder / "server.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"mlflow server did not come up on {uri}:\n{text}")
            time.sleep(0.5)
        yield uri
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            stop_group(proc.pid)
            proc.wait(timeout=15)
        stop_group(proc.pid)  # workers the server forked stay in its session
        log.close()
