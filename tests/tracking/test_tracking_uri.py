"""Tracking URI resolution and the reachability check."""

from __future__ import annotations

import http.server
import logging
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from raynas.errors import UserError
from raynas.tracking import TrackingTarget, check_tracking_reachable, resolve_tracking_uri

WORK = Path("/work/dir")


@pytest.mark.parametrize(
    ("given", "uri", "artifacts"),
    [
        (None, "sqlite:////work/dir/mlflow.db", "/work/dir/mlartifacts"),
        ("", "sqlite:////work/dir/mlflow.db", "/work/dir/mlartifacts"),
        ("sqlite:////data/x/runs.db", "sqlite:////data/x/runs.db", "/data/x/mlartifacts"),
        ("sqlite:///rel/runs.db", "sqlite:////work/dir/rel/runs.db", "/work/dir/rel/mlartifacts"),
        ("/data/store.db", "sqlite:////data/store.db", "/data/mlartifacts"),
        ("sub/store.db", "sqlite:////work/dir/sub/store.db", "/work/dir/sub/mlartifacts"),
        ("/data/track", "sqlite:////data/track/mlflow.db", "/data/track/mlartifacts"),
        ("track", "sqlite:////work/dir/track/mlflow.db", "/work/dir/track/mlartifacts"),
        ("../up", "sqlite:////work/up/mlflow.db", "/work/up/mlartifacts"),
        ("file:///data/fs", "sqlite:////data/fs/mlflow.db", "/data/fs/mlartifacts"),
        ("file:rel/fs", "sqlite:////work/dir/rel/fs/mlflow.db", "/work/dir/rel/fs/mlartifacts"),
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000", None),
        ("https://mlflow.example.org/", "https://mlflow.example.org", None),
        ("postgresql://u@db/mlflow", "postgresql://u@db/mlflow", None),
    ],
)
def test_resolve_table(given: str | None, uri: str, artifacts: str | None) -> None:
    target = resolve_tracking_uri(given, workdir=WORK)
    assert target.uri == uri
    assert target.artifact_root == (Path(artifacts) if artifacts else None)
    if target.artifact_root is not None:
        assert target.artifact_root.is_absolute()
        assert target.db_path is not None and target.db_path.is_absolute()
    assert target.is_server == uri.startswith("http")


def test_file_uri_logs_conversion(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="raynas.tracking.uri"):
        resolve_tracking_uri("file:///data/fs", workdir=WORK)
    assert "file store is disabled" in caplog.text
    assert "sqlite:////data/fs/mlflow.db" in caplog.text


@pytest.mark.parametrize("bad", ["ftp://host/x", "sqlite://", "sqlite:///:memory:", "s3://b/k"])
def test_resolve_rejects(bad: str) -> None:
    with pytest.raises(UserError, match="--tracking-uri"):
        resolve_tracking_uri(bad, workdir=WORK)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_server_is_one_line_user_error() -> None:
    port = _free_port()  # bound then closed: nothing listens there
    target = resolve_tracking_uri(f"http://127.0.0.1:{port}", workdir=WORK)
    with pytest.raises(UserError) as info:
        check_tracking_reachable(target, timeout=2.0)
    message = str(info.value)
    assert message == (
        f"--tracking-uri http://127.0.0.1:{port}: MLflow server not reachable (connection refused)"
    )
    assert "\n" not in message


def test_silent_server_times_out() -> None:
    with socket.socket() as sock:  # accepts connections (backlog) but never answers
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        port = sock.getsockname()[1]
        target = TrackingTarget(uri=f"http://127.0.0.1:{port}")
        with pytest.raises(UserError, match=r"not reachable \(no answer within 0.5 s\)$"):
            check_tracking_reachable(target, timeout=0.5)


def _serve(status: int) -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            code = status if self.path == "/health" else 404
            self.send_response(code)
            self.end_headers()
            self.wfile.write(b"OK")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture()
def healthy_server() -> Iterator[str]:
    yield from _serve(200)


@pytest.fixture()
def sick_server() -> Iterator[str]:
    yield from _serve(503)


def test_healthy_server_passes(healthy_server: str) -> None:
    check_tracking_reachable(resolve_tracking_uri(healthy_server, workdir=WORK), timeout=2.0)


def test_unhealthy_server_fails(sick_server: str) -> None:
    target = resolve_tracking_uri(sick_server, workdir=WORK)
    with pytest.raises(UserError, match=r"returned HTTP 503\)$"):
        check_tracking_reachable(target, timeout=2.0)


def test_sqlite_folder_is_checked_then_created_by_the_run(tmp_path: Path) -> None:
    """The check writes nothing (a run refused later leaves no folder); the store's folder is
    made when a run opens the store."""
    from raynas.tracking import prepare_store

    target = resolve_tracking_uri("deep/er/store", workdir=tmp_path)
    check_tracking_reachable(target)
    assert list(tmp_path.iterdir()) == []
    prepare_store(target)
    names = sorted(p.name for p in (tmp_path / "deep/er/store").iterdir())
    assert names == ["mlflow.db", "mlflow.db.lock"]


def test_sqlite_folder_not_writable(tmp_path: Path) -> None:
    blocker = tmp_path / "afile"
    blocker.write_text("x")  # a file where the store's folder should be (fails even as root)
    target = resolve_tracking_uri(str(blocker / "mlflow.db"), workdir=tmp_path)
    with pytest.raises(UserError) as info:
        check_tracking_reachable(target)
    assert str(info.value).startswith(f"--tracking-uri {target.uri}: cannot write to folder")
    assert "\n" not in str(info.value)


def test_bad_timeout() -> None:
    with pytest.raises(ValueError, match="timeout"):
        check_tracking_reachable(TrackingTarget(uri="http://127.0.0.1:1"), timeout=0)
