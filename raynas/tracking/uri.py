"""Where MLflow writes: resolve a ``--tracking-uri`` value and check it can be reached.

MLflow 3's file store is disabled by default, and a SQLite store puts its artifacts in
``./mlruns`` under whatever the current directory happens to be. raynas therefore resolves every
tracking location to an explicit :class:`TrackingTarget`: a URI plus, for SQLite stores, an
absolute artifact folder that every experiment is created with:

- (none): ``sqlite:///<workdir>/mlflow.db``, artifacts in ``<workdir>/mlartifacts``.
- ``sqlite:///path/x.db``: as given (made absolute), artifacts in ``path/mlartifacts``.
- ``path/x.db`` (a plain path ending in ``.db``): a SQLite store there, artifacts beside it.
- ``DIR`` (any other plain path): ``sqlite:///DIR/mlflow.db``, artifacts in ``DIR/mlartifacts``.
- ``file:///DIR`` / ``file:DIR``: treated like ``DIR`` (a warning says so).
- ``http(s)://host:port``: as given; the server stores the artifacts.
- ``postgresql://...``, ``mysql://...``, ``mssql://...``: as given; MLflow's default artifacts.

Relative paths are resolved against ``workdir`` (the CLI passes the current directory), so
the result does not depend on the working directory of the process that later uses it (a Ray
worker runs in its own folder).
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from raynas.errors import UserError

__all__ = ["TrackingTarget", "resolve_tracking_uri", "check_tracking_reachable"]

logger = logging.getLogger(__name__)

DB_NAME = "mlflow.db"
ARTIFACTS_NAME = "mlartifacts"
_SERVER_SCHEMES = ("http", "https")
_DB_SCHEMES = ("postgresql", "mysql", "mssql")  # SQLAlchemy stores, possibly with a +driver


@dataclass(frozen=True)
class TrackingTarget:
    """A resolved MLflow tracking location.

    Attributes:
        uri: The tracking URI handed to ``MlflowClient(tracking_uri=...)``.
        artifact_root: Absolute folder that holds the artifacts of a SQLite store; ``None`` where
            the server (or MLflow's own default) decides.
        store_id: ``(device, inode)`` of the SQLite file once
            :func:`raynas.tracking.store.prepare_store` opened it (every later MLflow call
            checks the file is still that one); ``None`` before, and for other stores.

    Example:
        >>> t = resolve_tracking_uri(None, workdir=Path("/tmp/run"))
        >>> t.uri, t.artifact_root
        ('sqlite:////tmp/run/mlflow.db', PosixPath('/tmp/run/mlartifacts'))
    """

    uri: str
    artifact_root: Path | None = None
    store_id: tuple[int, int] | None = None

    @property
    def is_server(self) -> bool:
        """True for an ``http(s)://`` tracking server."""
        return _scheme(self.uri) in _SERVER_SCHEMES

    @property
    def is_sqlite(self) -> bool:
        """True for a local SQLite store."""
        return self.uri.startswith("sqlite:")

    @property
    def db_path(self) -> Path | None:
        """The SQLite database file, or ``None`` for other stores."""
        if not self.is_sqlite:
            return None
        return Path(self.uri[len("sqlite:///") :])


def _scheme(uri: str) -> str:
    return urllib.parse.urlparse(uri).scheme.lower().split("+", 1)[0]


def _abs(path: str | Path, workdir: Path) -> Path:
    p = Path(path).expanduser()
    if not p.is_absolute():
        p = Path(workdir).expanduser().absolute() / p
    return Path(os.path.normpath(p))


def _sqlite_target(db: Path) -> TrackingTarget:
    return TrackingTarget(uri=f"sqlite:///{db}", artifact_root=db.parent / ARTIFACTS_NAME)


def _dir_target(folder: Path) -> TrackingTarget:
    return TrackingTarget(
        uri=f"sqlite:///{folder / DB_NAME}", artifact_root=folder / ARTIFACTS_NAME
    )


def resolve_tracking_uri(uri: str | None, *, workdir: Path) -> TrackingTarget:
    """Resolve a ``--tracking-uri`` value to an absolute :class:`TrackingTarget`.

    Args:
        uri: What the user gave (``None`` for the embedded default), see the module table.
        workdir: Folder that relative paths and the default store are resolved against.

    Returns:
        The target; no file or connection is touched.

    Raises:
        UserError: For an unsupported scheme or an in-memory SQLite URI.
    """
    if uri is None or not str(uri).strip():
        return _dir_target(_abs(".", workdir))
    uri = str(uri).strip()
    scheme = _scheme(uri)
    if scheme in _SERVER_SCHEMES:
        return TrackingTarget(uri=uri.rstrip("/"), artifact_root=None)
    if scheme in _DB_SCHEMES:
        return TrackingTarget(uri=uri, artifact_root=None)
    if scheme == "sqlite":
        if not uri.startswith("sqlite:///") or ":memory:" in uri:
            raise UserError(
                f"--tracking-uri {uri}: expected sqlite:///path/to/file.db (an on-disk database)"
            )
        return _sqlite_target(_abs(uri[len("sqlite:///") :], workdir))
    if scheme == "file":
        parsed = urllib.parse.urlparse(uri)
        folder = _abs(urllib.parse.unquote(parsed.path or parsed.netloc), workdir)
        target = _dir_target(folder)
        logger.warning(
            "--tracking-uri %s: MLflow's file store is disabled; using the SQLite store %s "
            "(artifacts in %s) instead",
            uri,
            target.uri,
            target.artifact_root,
        )
        return target
    if scheme and len(scheme) > 1:  # a one-letter "scheme" is a Windows drive letter
        raise UserError(
            f"--tracking-uri {uri}: unsupported scheme '{scheme}'; use a folder, a .db file, "
            "sqlite:///FILE.db, http(s)://HOST:PORT or a postgresql/mysql URI"
        )
    path = _abs(uri, workdir)
    if path.suffix == ".db":
        return _sqlite_target(path)
    return _dir_target(path)


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", exc)
    if isinstance(reason, ConnectionRefusedError) or getattr(reason, "errno", None) == (
        errno.ECONNREFUSED
    ):
        return "connection refused"
    if isinstance(reason, (socket.timeout, TimeoutError)):
        return "no answer in time"
    if isinstance(reason, socket.gaierror):
        return "unknown host"
    text = str(getattr(reason, "strerror", None) or reason).strip()
    return text.splitlines()[0] if text else type(reason).__name__


def _check_server(target: TrackingTarget, timeout: float) -> None:
    url = f"{target.uri}/health"
    prefix = f"--tracking-uri {target.uri}: MLflow server not reachable"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310
            status = response.status
    except urllib.error.HTTPError as exc:
        raise UserError(f"{prefix} ({url} returned HTTP {exc.code})") from None
    except (urllib.error.URLError, OSError) as exc:
        if isinstance(exc, (socket.timeout, TimeoutError)):
            raise UserError(f"{prefix} (no answer within {timeout:g} s)") from None
        reason = _reason(exc)
        if reason == "no answer in time":
            reason = f"no answer within {timeout:g} s"
        raise UserError(f"{prefix} ({reason})") from None
    if status != 200:
        raise UserError(f"{prefix} ({url} returned HTTP {status})")


def _check_writable(target: TrackingTarget, folder: Path) -> None:
    """A probe file in ``folder``, or in its nearest existing ancestor: nothing is created
    (the store is made by :func:`raynas.tracking.store.prepare_store`, once a run starts)."""
    probe_in = folder
    while not probe_in.exists() and probe_in.parent != probe_in:
        probe_in = probe_in.parent
    try:
        if not probe_in.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, "not a folder", str(probe_in))
        with tempfile.NamedTemporaryFile(dir=probe_in, prefix=".raynas-write-check-"):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise UserError(
            f"--tracking-uri {target.uri}: cannot write to folder {folder} ({reason})"
        ) from None


def check_tracking_reachable(target: TrackingTarget, *, timeout: float = 5.0) -> None:
    """Fail early, with one line, if the tracking store cannot be used from this process.

    An ``http(s)`` server must answer ``GET /health`` with 200 within ``timeout`` seconds; a
    SQLite store's folder (and its artifact folder) must be writable, or creatable where they
    do not exist yet (a probe file in the nearest existing folder; nothing else is written).
    Pure function (no global state): call it on the driver and inside Ray workers alike.

    Args:
        target: From :func:`resolve_tracking_uri`.
        timeout: Seconds to wait for a server.

    Raises:
        UserError: E.g. ``--tracking-uri http://127.0.0.1:9: MLflow server not reachable
            (connection refused)``.
    """
    if timeout <= 0:
        raise ValueError(f"timeout must be > 0, got {timeout!r}")
    if target.is_server:
        _check_server(target, timeout)
        return
    db = target.db_path
    if db is not None:
        _check_writable(target, db.parent)
    if target.artifact_root is not None:
        _check_writable(target, target.artifact_root)
