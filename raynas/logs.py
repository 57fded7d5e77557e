"""A quiet terminal: while a run's ``search.log`` is open, the libraries' own log lines (Ray's
token-authentication notice, MLflow's database INFO lines and its pickle caution, alembic's
migrations, ``torch.export``'s notes, Python warnings) go to that file instead of the terminal.

Ray and MLflow each install a handler on their top logger (``ray``, ``mlflow``) that writes to
stderr. :func:`capture_library_logs` swaps those console handlers for the run's file handler
until :func:`release_library_logs`; a library imported later (Ray is imported only when the
run starts it) is captured by calling :func:`capture_logger` right after its import. No
library is imported here.

Example:
    >>> handler = logging.FileHandler("search.log")          # doctest: +SKIP
    >>> capture_library_logs(handler)                       # doctest: +SKIP
    >>> import ray; capture_logger("ray"); ray.init()       # doctest: +SKIP
    >>> release_library_logs()                              # doctest: +SKIP
"""

from __future__ import annotations

import logging
import sys

__all__ = ["LIBRARY_LOGGERS", "capture_library_logs", "capture_logger", "release_library_logs"]

LIBRARY_LOGGERS = ("ray", "mlflow", "alembic", "torch", "py.warnings")
_LATE = ("ray", "torch")  # set up their handlers at import: captured once imported

_state: dict[str, object] = {"handler": None, "warnings": False}
_saved: dict[str, tuple[list[logging.Handler], bool]] = {}


class _Forward(logging.Handler):
    """Hands each record to the run's handler. The libraries get this stand-in, not the run's
    handler itself: Ray sets its own formatter on the handlers of its logger at ``ray.init``,
    which would otherwise reformat every later line of ``search.log``, raynas's own included."""

    def __init__(self, target: logging.Handler) -> None:
        super().__init__()
        self.target = target

    def emit(self, record: logging.LogRecord) -> None:
        self.target.handle(record)


def _is_console(handler: logging.Handler) -> bool:
    """A handler that writes to a terminal stream (not to a file)."""
    return isinstance(handler, logging.StreamHandler) and not isinstance(
        handler, logging.FileHandler
    )


def _capture_one(name: str, handler: logging.Handler) -> None:
    log = logging.getLogger(name)
    _saved[name] = (list(log.handlers), log.propagate)
    for h in list(log.handlers):
        if _is_console(h):
            log.removeHandler(h)
    log.addHandler(handler)
    log.propagate = False


def capture_logger(name: str) -> None:
    """Routes logger ``name`` to the captured run's file (no-op when no run is capturing), and
    so its descendants that carry console handlers of their own (torch gives ``torch._export``
    and others one each)."""
    handler = _state["handler"]
    if not isinstance(handler, logging.Handler):
        return
    if name not in _saved:
        _capture_one(name, handler)
    for child, log in list(logging.Logger.manager.loggerDict.items()):
        if "__trace" in child:  # torch's structured trace (empty lines at DEBUG), not a notice
            continue
        if child.startswith(name + ".") and child not in _saved and isinstance(log, logging.Logger):
            if any(_is_console(h) for h in log.handlers):
                _capture_one(child, handler)


def capture_library_logs(handler: logging.Handler) -> None:
    """Sends the log lines of Ray, MLflow, alembic and Python warnings to ``handler``."""
    release_library_logs()
    _state["handler"] = _Forward(handler)
    _state["warnings"] = True
    logging.captureWarnings(True)
    for name in LIBRARY_LOGGERS:
        if name not in _LATE or name in sys.modules:
            capture_logger(name)


def release_library_logs() -> None:
    """Gives every captured logger its own handlers back."""
    handler = _state["handler"]
    for name, (handlers, propagate) in _saved.items():
        log = logging.getLogger(name)
        if isinstance(handler, logging.Handler):
            log.removeHandler(handler)
        for h in handlers:
            if h not in log.handlers:
                log.addHandler(h)
        log.propagate = propagate
    _saved.clear()
    if _state["warnings"]:
        logging.captureWarnings(False)
    _state["handler"], _state["warnings"] = None, False
