"""Opening a local SQLite tracking store safely: created and migrated once, under a lock, before
Ray starts; refused with one line when it cannot be used; watched while a run writes to it.

MLflow creates the tables of a new SQLite store on first use, in whatever process touches it
first, and migrates the schema step by step. Two processes doing that at once leave a store on
which every later use fails (``table _alembic_tmp_tags already exists``), and so does a store
recreated half-way while a run is writing. raynas therefore:

- takes an exclusive lock on ``<db>.lock`` (a file beside the database, left there) while it
  looks at the store and, for a new one, builds it in a temporary file beside it and renames
  that into place: another process sees no store or a complete one, never a half-built one (a
  second search racing on the same new URI waits for the lock, then opens the finished store);
- refuses a store it cannot use (not a database, a cut-short or foreign schema, another MLflow
  schema revision) with a :class:`~raynas.errors.UserError` naming the file and how to recover;
- records the database file's identity (device, inode) in the
  :class:`~raynas.tracking.uri.TrackingTarget`, so every later MLflow call of the run checks that
  the file it opened is still there (:func:`check_store`): a store deleted or replaced mid-run
  ends the run with :class:`StoreVanished` instead of writing into a new, empty database.

Example:
    >>> target = prepare_store(resolve_tracking_uri("runs/mlflow.db", workdir=Path("/tmp/x")))
    >>> target.store_id is not None
    True
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import logging
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

from raynas.errors import RunError, UserError
from raynas.tracking.uri import TrackingTarget

__all__ = ["StoreVanished", "check_store", "prepare_store", "store_identity", "store_lock"]

logger = logging.getLogger(__name__)

WAIT_ENV = "RAYNAS_STORE_LOCK_WAIT_S"  # how long a search waits for another one's store lock
_DEFAULT_WAIT_S = 300.0
# tables every MLflow 2/3 tracking store has; one of them missing means a cut-short creation
_CORE_TABLES = ("alembic_version", "experiments", "runs", "metrics", "params", "tags")


class StoreVanished(RunError):
    """The SQLite store a run opened was deleted or replaced while the run used it."""


def store_identity(db: Path) -> tuple[int, int] | None:
    """``(device, inode)`` of the database file, ``None`` if it does not exist."""
    try:
        info = os.stat(db)
    except FileNotFoundError:
        return None
    return (info.st_dev, info.st_ino)


def check_store(target: TrackingTarget) -> None:
    """Raises :class:`StoreVanished` when ``target``'s SQLite file is not the one
    :func:`prepare_store` opened (deleted, or replaced by another file); a no-op for other
    stores and for a target that was never prepared."""
    if target.store_id is None or target.db_path is None:
        return
    now = store_identity(target.db_path)
    if now == tuple(target.store_id):
        return
    what = "was deleted" if now is None else "was replaced by another file"
    raise StoreVanished(
        f"--tracking-uri {target.uri}: the MLflow store {target.db_path} {what} while the run "
        "used it; put the original file back, then continue with --resume"
    )


def _wait_s() -> float:
    raw = os.environ.get(WAIT_ENV, str(_DEFAULT_WAIT_S))
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise UserError(f"{WAIT_ENV}={raw}: expected a number of seconds >= 0")
    return value


@contextlib.contextmanager
def store_lock(db: Path, *, wait_s: float | None = None) -> Iterator[Path]:
    """Holds an exclusive ``flock`` on ``<db>.lock`` (created if needed, never removed); waits
    up to ``wait_s`` seconds (default ``RAYNAS_STORE_LOCK_WAIT_S`` or 300) for another holder."""
    wait = _wait_s() if wait_s is None else wait_s
    lock = db.with_name(db.name + ".lock")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline, told = time.monotonic() + wait, False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise UserError(
                        f"--tracking-uri sqlite:///{db}: {lock} is held by another process for "
                        f"more than {wait:g} s (a search creating the store?); wait for it, or "
                        f"raise {WAIT_ENV}"
                    ) from None
                if not told:
                    logger.info("waiting for %s (another process is opening the store)", lock)
                    told = True
                time.sleep(0.2)
        yield lock
    finally:
        os.close(fd)  # releases the lock


def _latest_revision() -> str:
    from mlflow.store.db.utils import _get_latest_schema_revision

    return str(_get_latest_schema_revision())


def _inspect(db: Path) -> tuple[str, str]:
    """``("new", "")`` for a missing, empty or table-less file, ``("ready", "")`` for a complete
    store of this MLflow's schema, else ``("bad", why)``."""
    if not db.exists() or db.stat().st_size == 0:
        return "new", ""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as con:
            rows = con.execute("SELECT name FROM sqlite_master WHERE type='table'")
            tables = {r[0] for r in rows}
            version = None
            if "alembic_version" in tables:
                row = con.execute("SELECT version_num FROM alembic_version").fetchone()
                version = row[0] if row else None
    except sqlite3.DatabaseError as exc:
        return "bad", f"cannot be read as an SQLite database ({exc})"
    if not tables:
        return "new", ""
    leftovers = sorted(t for t in tables if t.startswith("_alembic_tmp_"))
    if leftovers:
        return "bad", f"holds a half-finished MLflow schema migration (table {leftovers[0]})"
    missing = [t for t in _CORE_TABLES if t not in tables]
    if missing:
        return "bad", (
            f"is not a complete MLflow store (no table {missing[0]}: its creation was cut short, "
            "or it is another program's database)"
        )
    latest = _latest_revision()
    if version != latest:
        return "bad", (
            f"has MLflow schema revision {version}, this MLflow needs {latest} (a store of another "
            "MLflow version, or a migration cut short; back it up, then `mlflow db upgrade "
            f"sqlite:///{db}` may bring it up to date)"
        )
    return "ready", ""


def _create(db: Path, artifact_root: Path | None) -> None:
    """Builds a new store in a temporary file beside ``db`` and renames it into place."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    tmp = db.with_name(f".{db.name}.creating-{os.getpid()}")
    for path in (tmp, tmp.with_name(tmp.name + "-journal")):
        path.unlink(missing_ok=True)
    root = (artifact_root or db.parent / "mlartifacts").as_uri()
    quiet = logging.getLogger("mlflow.store.db.utils")  # "Creating initial MLflow database..."
    level = quiet.level
    quiet.setLevel(logging.WARNING)
    try:
        store = SqlAlchemyStore(f"sqlite:///{tmp}", root)
        store.engine.dispose()
        os.replace(tmp, db)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        quiet.setLevel(level)


def prepare_store(target: TrackingTarget, *, create: bool = True) -> TrackingTarget:
    """Opens ``target``'s SQLite store for a run (other stores are returned unchanged): under
    :func:`store_lock`, a new store is created and migrated once, a complete one is used as it
    is, anything else is refused; returns the target with the database's identity recorded.

    Args:
        target: From :func:`~raynas.tracking.uri.resolve_tracking_uri`.
        create: False on ``--resume``: a missing store is then an error (the resumed search's
            runs are in the store it started with).

    Raises:
        UserError: One line naming the file and how to recover (exit 2, before Ray starts).
    """
    db = target.db_path
    if db is None:
        return target
    db.parent.mkdir(parents=True, exist_ok=True)
    with store_lock(db):
        state, why = _inspect(db)
        if state == "new":
            if not create:
                raise UserError(
                    f"--resume: the MLflow store {db} is missing or empty (deleted?); put it "
                    "back to continue this search, or start a new search without --resume"
                )
            logger.info("creating the MLflow store %s", db)
            _create(db, target.artifact_root)
        elif state == "bad":
            raise UserError(
                f"--tracking-uri {target.uri}: {db} {why}; move it away to start a new store, "
                "or give another --tracking-uri"
            )
        identity = store_identity(db)
    return dataclasses.replace(target, store_id=identity)
