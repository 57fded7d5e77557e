"""Keyed digests with the per-user raynas secret: what lets ``--resume`` trust a file it wrote.

The secret is ``$RAYNAS_SECRET_FILE`` or ``~/.config/raynas/secret`` (``$XDG_CONFIG_HOME``
honoured), created with mode 0600 on first use, and refused when another user owns it or when
others may read or write it. A digest is an HMAC-SHA256 keyed with it over a *context* (the
search's identity, the stage, the file's path inside the search) and the file's bytes, so a file
signed for one search, stage or path never verifies as another.

Ray-free and MLflow-free: :mod:`raynas.tune.guard` signs Ray's pickles with it, and
:class:`raynas.pipeline.outputs.SearchFolder` seals ``state.json`` and the files a resumed search
reads back (architectures, weights).

Example:
    >>> key = b"k" * 64
    >>> d = keyed_digest(key, ("search-1", "coarse", "tuner.pkl"), b"bytes")
    >>> d == keyed_digest(key, ("search-2", "coarse", "tuner.pkl"), b"bytes")
    False
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from raynas.errors import UserError

__all__ = [
    "SECRET_FILE_ENV",
    "keyed_digest",
    "load_secret",
    "json_mac",
    "new_identity",
    "secret_path",
    "write_private",
]

SECRET_FILE_ENV = "RAYNAS_SECRET_FILE"


def secret_path() -> Path:
    """Where the per-user secret lives (never inside a search's storage)."""
    env = os.environ.get(SECRET_FILE_ENV)
    if env:
        return Path(env).expanduser()
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config).expanduser() / "raynas" / "secret"


def _create(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return  # created concurrently: read it
    except OSError as exc:
        raise UserError(
            f"{path}: cannot create the raynas secret ({exc.strerror}); set "
            f"{SECRET_FILE_ENV} to a writable place outside the storage path"
        ) from None
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(32))


def load_secret(path: Path | None = None, *, create: bool = True) -> bytes:
    """The secret's bytes; created (32 random bytes, hex, mode 0600) when missing and
    ``create``. A secret file that another user owns, or that others may read or write, is
    refused (:class:`~raynas.errors.UserError`, one line)."""
    path = path or secret_path()
    if not path.exists():
        if not create:
            raise UserError(f"{path}: the raynas secret is missing ({SECRET_FILE_ENV})")
        _create(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        raise UserError(f"{path}: cannot read the raynas secret ({exc.strerror})") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())  # the file read, not what the path points at later
        if hasattr(os, "getuid") and info.st_uid != os.getuid():
            raise UserError(
                f"{path}: the raynas secret belongs to another user (uid {info.st_uid}); "
                "use your own (delete it, or set " + SECRET_FILE_ENV + ")"
            )
        if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise UserError(
                f"{path}: the raynas secret is readable or writable by others "
                f"(mode {stat.S_IMODE(info.st_mode):o}); chmod 600 it"
            )
        key = handle.read().strip()
    if len(key) < 32:
        raise UserError(f"{path}: the raynas secret is too short (delete it to make a new one)")
    return key


def new_identity() -> str:
    """A fresh search identity (what every digest of the search is bound to)."""
    return secrets.token_hex(16)


def keyed_digest(key: bytes, context: Iterable[str], data: bytes | Path) -> str:
    """HMAC-SHA256 of ``context`` (NUL-separated) and ``data`` (bytes, or a file's bytes)."""
    mac = hmac.new(key, b"".join(part.encode() + b"\0" for part in context), hashlib.sha256)
    if isinstance(data, bytes | bytearray):
        mac.update(data)
    else:
        with Path(data).open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                mac.update(block)
    return mac.hexdigest()


def json_mac(key: bytes, context: Iterable[str], data: Any) -> str:
    """:func:`keyed_digest` of ``data``'s canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return keyed_digest(key, context, text.encode())


def write_private(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Writes ``data`` to ``path`` atomically through a new file of this process (``mode``,
    private by default) in the same folder, so what is at ``path`` afterwards is exactly
    ``data``, in a file nobody else had open. A failure leaves no temporary file behind."""
    tmp = path.with_name(f".tmp-{os.getpid()}-{secrets.token_hex(4)}-{path.name}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
