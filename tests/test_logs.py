"""raynas.logs: library log lines go to the run's file while it is open, and come back after."""

from __future__ import annotations

import io
import logging
import warnings
from pathlib import Path

from raynas.logs import capture_library_logs, capture_logger, release_library_logs


def test_library_lines_go_to_the_file_and_back(tmp_path: Path) -> None:
    console = io.StringIO()
    lib = logging.getLogger("mlflow")
    own = logging.StreamHandler(console)
    lib.addHandler(own)
    late = logging.getLogger("ray")
    late_console = logging.StreamHandler(console)
    late.addHandler(late_console)
    handler = logging.FileHandler(tmp_path / "search.log")
    try:
        capture_library_logs(handler)
        capture_logger("ray")  # as init_ray does right after `import ray`
        lib.warning("Creating initial MLflow database tables...")
        late.warning("Token authentication is enabled for this Ray cluster.")
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.warn("a library's caution", UserWarning, stacklevel=1)
        release_library_logs()
        lib.warning("after the run")
        assert own in lib.handlers and late_console in late.handlers
        assert handler not in lib.handlers and handler not in late.handlers
    finally:
        release_library_logs()
        lib.removeHandler(own)
        late.removeHandler(late_console)
        handler.close()
    text = (tmp_path / "search.log").read_text()
    assert "Creating initial MLflow database" in text and "Token authentication" in text
    assert "a library's caution" in text and "after the run" not in text
    assert console.getvalue() == "after the run\n"


def test_capture_logger_without_a_run_is_a_no_op() -> None:
    log = logging.getLogger("ray")
    before = list(log.handlers), log.propagate
    capture_logger("ray")
    assert (list(log.handlers), log.propagate) == before


def test_descendants_with_their_own_console_handler(tmp_path: Path) -> None:
    """torch gives ``torch._export`` (and others) a console handler of its own."""
    console = io.StringIO()
    child = logging.getLogger("torch._export_test_child")
    own = logging.StreamHandler(console)
    child.addHandler(own)
    child.propagate = False
    handler = logging.FileHandler(tmp_path / "search.log")
    try:
        capture_library_logs(handler)
        capture_logger("torch")
        child.warning("dimension specialized")
        release_library_logs()
        assert own in child.handlers and handler not in child.handlers
    finally:
        release_library_logs()
        child.removeHandler(own)
        handler.close()
    assert console.getvalue() == ""
    assert "dimension specialized" in (tmp_path / "search.log").read_text()
