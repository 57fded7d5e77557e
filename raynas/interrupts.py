"""One interrupt path for a run: SIGINT (Ctrl-C) and SIGTERM stop it cleanly, a second signal
ends the process at once.

While an :class:`InterruptGuard` is active (``raynas search`` holds one for its whole run):

- the first SIGINT or SIGTERM records the signal. If a stop hook is registered (a Tune stage is
  running: :meth:`InterruptGuard.stopping`), the hook asks the stage to stop, the stage returns,
  and :meth:`InterruptGuard.check` raises :class:`SignalReceived`; otherwise that is raised
  where the program is. The pipeline then marks the stage interrupted, the MLflow runs
  KILLED, stops the Ray it started, and the CLI prints one line and exits 130 (143 for SIGTERM).
- a second signal runs the registered urgent cleanups (each bounded, e.g. SIGKILL of the local
  Ray's processes) and exits at once with the first signal's code.

Ray-free and MLflow-free: ``raynas.tune`` and ``raynas.pipeline`` register their hooks.

Example:
    >>> with InterruptGuard() as guard:
    ...     run_setup()              # SignalReceived propagates from here on Ctrl-C
    ...     with guard.stopping(ask_tune_to_stop):
    ...         tuner.fit()
    ...     guard.check()            # raises SignalReceived if a signal came during fit()
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

__all__ = [
    "Interrupted",
    "InterruptGuard",
    "SignalReceived",
    "active_guard",
    "check_interrupted",
    "interrupted_line",
]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_FORCE_EXIT_S = 10.0  # the most the cleanups of a second signal may take
_active: InterruptGuard | None = None


class SignalReceived(KeyboardInterrupt):
    """Raised where the program is when a signal arrives outside a Tune stage. A
    ``KeyboardInterrupt``, so that Ray's blocking calls (``ray.get``, ``ray.wait``) turn it into
    their own interruption instead of dropping it; :func:`raynas.pipeline.run_search` turns any
    ``KeyboardInterrupt`` seen under a guard into :class:`Interrupted`."""

    def __init__(self, signum: int) -> None:
        self.signum = int(signum)
        super().__init__(signal.Signals(self.signum).name)


class Interrupted(BaseException):
    """The run was stopped by a signal; ``exit_code`` is ``128 + signum`` (130, 143).

    What a command raises to the CLI once it has cleaned up. Not an ``Exception`` (``except
    Exception`` does not swallow it), and not a ``KeyboardInterrupt`` either, which typer would
    turn into a bare exit code 130. ``resumable``: the output folder records the interrupt, so
    ``--resume`` continues.
    """

    def __init__(self, signum: int, *, resumable: bool = False) -> None:
        self.signum = int(signum)
        self.resumable = resumable
        super().__init__(signal.Signals(self.signum).name)

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    @property
    def signal_name(self) -> str:
        return signal.Signals(self.signum).name


def interrupted_line(argv: Sequence[str] | None = None, *, resumable: bool = True) -> str:
    """The one line printed on an interrupt: for ``raynas search``, the user's command with
    ``--resume`` added (when there is something to resume), which continues it."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] != "search":
        return "interrupted"
    if resumable and "--resume" not in args:
        args.append("--resume")
    return f"interrupted; continue with: raynas {shlex.join(args)}"


class InterruptGuard:
    """Installs raynas's SIGINT / SIGTERM handlers for the duration of a ``with`` block (main
    thread only; elsewhere it is inert) and restores the previous ones afterwards."""

    def __init__(self, *, argv: Sequence[str] | None = None) -> None:
        self.signum: int | None = None
        self.resumable = False  # set once the output folder exists (for the second signal)
        self.argv = list(sys.argv[1:] if argv is None else argv)
        self._stop: Callable[[], bool] | None = None
        self._urgent: list[Callable[[], None]] = []
        self._previous: dict[int, Any] = {}
        self._outer: InterruptGuard | None = None

    # -- installing ---------------------------------------------------------------------------

    def __enter__(self) -> InterruptGuard:
        global _active
        self._outer, _active = _active, self
        if threading.current_thread() is threading.main_thread():
            for sig in _SIGNALS:
                self._previous[sig] = signal.getsignal(sig)
            self.install()
        return self

    def __exit__(self, *exc: object) -> None:
        global _active
        for sig, handler in self._previous.items():
            with contextlib.suppress(TypeError, ValueError):
                signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        self._previous.clear()
        _active = self._outer

    def install(self) -> None:
        """(Re)installs the handlers: ``ray.init`` sets a SIGTERM handler of its own."""
        if self._previous and threading.current_thread() is threading.main_thread():
            for sig in _SIGNALS:
                signal.signal(sig, self._handle)

    # -- hooks ----------------------------------------------------------------------------------

    @contextlib.contextmanager
    def stopping(self, stop: Callable[[], bool]) -> Iterator[None]:
        """While the block runs, the first signal calls ``stop()`` instead of raising; ``stop``
        returns False when it could not reach what it should stop (then the signal raises)."""
        before, self._stop = self._stop, stop
        try:
            yield
        finally:
            self._stop = before

    def on_force_exit(self, cleanup: Callable[[], None]) -> None:
        """Registers a quick, bounded cleanup run on the second signal before the exit."""
        self._urgent.append(cleanup)

    def check(self) -> None:
        """Raises :class:`SignalReceived` if a signal arrived."""
        if self.signum is not None:
            raise SignalReceived(self.signum)

    def interrupted(self) -> Interrupted:
        """The :class:`Interrupted` to raise to the CLI for the signal that came (SIGINT if a
        plain ``KeyboardInterrupt`` came without one)."""
        return Interrupted(self.signum or signal.SIGINT, resumable=self.resumable)

    # -- the handler ------------------------------------------------------------------------------

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signum is not None:
            self._force_exit()
            return
        self.signum = signum
        stop = self._stop
        if stop is not None:
            try:
                if stop():
                    return
            except Exception:  # noqa: BLE001, S110 - then raise where we are
                pass
        raise SignalReceived(signum)

    def _force_exit(self) -> None:
        watchdog = threading.Timer(_FORCE_EXIT_S, self._exit_now)
        watchdog.daemon = True
        watchdog.start()  # a cleanup that hangs (a locked store) does not keep us
        for cleanup in reversed(self._urgent):
            with contextlib.suppress(BaseException):
                cleanup()
        self._exit_now()

    def _exit_now(self) -> None:
        with contextlib.suppress(Exception):
            print(interrupted_line(self.argv, resumable=self.resumable), file=sys.stderr)
            sys.stderr.flush()
        os._exit(128 + int(self.signum or signal.SIGINT))


def active_guard() -> InterruptGuard | None:
    """The guard of the running command, if any."""
    return _active


def check_interrupted() -> None:
    """Raises :class:`SignalReceived` if the active guard saw a signal."""
    if _active is not None:
        _active.check()
