"""The interrupt guard without Ray: what the first and the second signal do, and the one line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from raynas.interrupts import (
    Interrupted,
    InterruptGuard,
    SignalReceived,
    active_guard,
    interrupted_line,
)

GO = "interrupted; continue with: raynas search"


@pytest.mark.parametrize(
    ("argv", "resumable", "line"),
    [
        (["search", "--space", "c2f"], True, f"{GO} --space c2f --resume"),
        (["search", "--space", "c2f", "--resume"], True, f"{GO} --space c2f --resume"),
        (["search", "--set", "a=[1, 2]"], True, f"{GO} --set 'a=[1, 2]' --resume"),
        (["search", "--space", "c2f"], False, f"{GO} --space c2f"),
        (["retrain", "a.json"], True, "interrupted"),
        ([], True, "interrupted"),
    ],
)
def test_the_one_line(argv: list[str], resumable: bool, line: str) -> None:
    assert interrupted_line(argv, resumable=resumable) == line


def _wait_for_signal() -> None:
    for _ in range(100):
        time.sleep(0.01)


def test_first_signal_raises_where_the_program_is() -> None:
    with InterruptGuard(argv=["search"]) as guard:
        assert active_guard() is guard
        with pytest.raises(SignalReceived) as info:
            os.kill(os.getpid(), signal.SIGTERM)
            _wait_for_signal()
        assert info.value.signum == signal.SIGTERM
        out = guard.interrupted()
        assert isinstance(out, Interrupted) and out.exit_code == 143
    assert active_guard() is None
    assert signal.getsignal(signal.SIGTERM) is not guard._handle  # restored


def test_a_stop_hook_takes_the_first_signal_and_check_raises_after() -> None:
    asked = []
    with InterruptGuard(argv=["search"]) as guard:
        with guard.stopping(lambda: asked.append(1) or True):
            os.kill(os.getpid(), signal.SIGINT)
            _wait_for_signal()  # no exception: the hook asked the stage to stop
        assert asked == [1]
        with pytest.raises(SignalReceived):
            guard.check()
        assert guard.interrupted().exit_code == 130


def test_a_hook_that_cannot_stop_anything_lets_the_signal_raise() -> None:
    with InterruptGuard(argv=["search"]) as guard:
        with guard.stopping(lambda: False), pytest.raises(SignalReceived):
            os.kill(os.getpid(), signal.SIGINT)
            _wait_for_signal()


def test_second_signal_runs_the_cleanups_and_exits_at_once(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import os, signal, time
        from pathlib import Path
        from raynas.interrupts import InterruptGuard

        with InterruptGuard(argv=["search", "--space", "c2f"]) as guard:
            guard.resumable = True
            guard.on_force_exit(lambda: time.sleep(60))  # runs last, hangs: a watchdog ends it
            guard.on_force_exit(lambda: Path({str(tmp_path / "cleaned")!r}).touch())
            with guard.stopping(lambda: True):
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.2)
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(60)
        """
    )
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 130, proc.stderr
    assert time.monotonic() - start < 40 and (tmp_path / "cleaned").is_file()
    assert proc.stderr.strip() == f"{GO} --space c2f --resume"
