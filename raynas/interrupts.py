"""One interrupt path for a run: SIGINT (Ctrl-C) and SIGTERM stop it cleanly, a second signal
ends the process at once.

While an :class:`InterruptGuard` is active (``raynas search`` holds one for its whole run):

- the first SIGINT or SIGTERM records the signal. If a stop hook is registered (a Tune stage is
  running: :meth:`InterruptGuard.stopping`), the hook asks the stage to stop, the stage returns,
  and :meth:`InterruptGuard.check` raises :class:`SignalReceived`; otherwise that is raised
  where the program is. The pipeline then marks the stage interrupted, the MLflow runs
  KILLED, stops the Ray it started, and the CLI prints one line and exits 130 (143 for SIGTERM).
- a second signal runs the registered force-exit cleanups and exits at once with the first
  signal's code. A cleanup lives exactly as long as what it cleans up
  (:meth:`InterruptGuard.on_force_exit` is a context manager: a stage's cleanup is gone when
  the stage is). Cleanups registered with ``finish=True`` (signing Ray's state, marking the
  stage interrupted) run first and always finish; the others (MLflow, stopping Ray) are cut
  short by a watchdog after 10 s, which never fires while a finishing cleanup still runs.

Ray-free and MLflow-free: ``raynas.tune`` and ``raynas.pipeline`` register their hooks.

Example:
    >>> with InterruptGuard() as guard:
    ...     run_setup()              # SignalReceived propagates from here on Ctrl-C
    ...     with guard.on_force_exit(sign_state, name="sign", finish=True):
    ...         with guard.stopping(ask_tune_to_stop):
    ...             tuner.fit()
    ...     guard.check()            # raises SignalReceived if a signal came during fit()
"""

from __future__ import annotations

import contextlib
import logging
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
    "interrupted_line",
]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_FORCE_EXIT_S = 10.0  # the most the cleanups of a second signal may take (finishing ones aside)
_FINISH_CAP_S = 600.0  # the most the watchdog waits for a finishing cleanup (a hung disk)
_active: InterruptGuard | None = None
logger = logging.getLogger(__name__)


class ForceExitCleanup:
    """One registered force-exit cleanup; a context manager that removes it on exit (or call
    :meth:`remove`)."""

    def __init__(self, guard: InterruptGuard, fn: Callable[[], None], name: str, finish: bool):
        self.guard, self.fn, self.name, self.finish = guard, fn, name, finish

    def remove(self) -> None:
        """Unregisters the cleanup (a no-op when it is gone already)."""
        with contextlib.suppress(ValueError):
            self.guard._urgent.remove(self)

    def __enter__(self) -> ForceExitCleanup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


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
        self._urgent: list[ForceExitCleanup] = []
        self._finished = threading.Event()  # the finishing cleanups of a forced exit are done
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

    def on_force_exit(
        self, cleanup: Callable[[], None], *, name: str = "cleanup", finish: bool = False
    ) -> ForceExitCleanup:
        """Registers a cleanup run on the second signal before the exit, for as long as the
        returned handle's ``with`` block lasts (or until its ``remove()``). ``finish``: the
        cleanup must complete (signing, marking state) and runs before the others; otherwise
        it is quick and bounded, and the watchdog may cut it short."""
        handle = ForceExitCleanup(self, cleanup, name, finish)
        self._urgent.append(handle)
        return handle

    @property
    def cleanups(self) -> list[str]:
        """The names of the force-exit cleanups registered now, oldest first."""
        return [c.name for c in self._urgent]

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
        if self._finished.is_set() or getattr(self, "_forcing", False):
            return  # a third signal: the cleanups of the second one are running
        self._forcing = True
        cleanups = list(reversed(self._urgent))
        ordered = [c for c in cleanups if c.finish] + [c for c in cleanups if not c.finish]
        with contextlib.suppress(Exception):
            logger.info("forced exit: cleanups %s", ", ".join(c.name for c in ordered) or "none")
        watchdog = threading.Timer(_FORCE_EXIT_S, self._watchdog)
        watchdog.daemon = True
        watchdog.start()  # a cleanup that hangs (a locked store) does not keep us
        for cleanup in ordered:
            if not cleanup.finish:
                self._finished.set()
            with contextlib.suppress(BaseException):
                cleanup.fn()
        self._finished.set()
        self._exit_now()

    def _watchdog(self) -> None:
        """Exits once the finishing cleanups are done (signing is never cut short)."""
        self._finished.wait(_FINISH_CAP_S)
        self._exit_now()

    def _exit_now(self) -> None:
        with contextlib.suppress(Exception):
            print(interrupted_line(self.argv, resumable=self.resumable), file=sys.stderr)
            sys.stderr.flush()
        os._exit(128 + int(self.signum or signal.SIGINT))


def active_guard() -> InterruptGuard | None:
    """The guard of the running command, if any."""
    return _active
