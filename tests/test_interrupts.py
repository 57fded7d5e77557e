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


def test_a_cleanup_lives_as_long_as_its_block() -> None:
    """Cleanups registered per stage are gone with their stage: three stages in a row leave
    none behind, and the one of the running stage is the only one a second signal would run."""
    with InterruptGuard() as guard:
        search = guard.on_force_exit(lambda: None, name="search", finish=True)
        for stage in ("coarse", "fine", "retrain"):
            with guard.on_force_exit(lambda: None, name=f"sign {stage}", finish=True):
                assert guard.cleanups == ["search", f"sign {stage}"]
        search.remove()
        search.remove()  # removing twice is harmless
        assert guard.cleanups == []


def test_the_watchdog_never_cuts_a_finishing_cleanup_short(tmp_path: Path) -> None:
    """A second signal: the finishing cleanup (signing) takes longer than the watchdog's
    limit and still completes; a hanging ordinary cleanup is then cut short."""
    script = textwrap.dedent(
        f"""
        import os, signal, time
        from pathlib import Path
        import raynas.interrupts as interrupts
        from raynas.interrupts import InterruptGuard

        interrupts._FORCE_EXIT_S = 0.5
        def sign():
            time.sleep(2.0)  # four times the watchdog's limit
            Path({str(tmp_path / "signed")!r}).touch()

        with InterruptGuard(argv=["search", "--space", "c2f"]) as guard:
            guard.resumable = True
            guard.on_force_exit(lambda: time.sleep(60), name="hangs")
            with guard.on_force_exit(sign, name="sign", finish=True):
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
    assert (tmp_path / "signed").is_file(), "the watchdog cut the signing short"
    assert time.monotonic() - start < 30
    assert proc.stderr.strip() == f"{GO} --space c2f --resume"
