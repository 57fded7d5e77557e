"""A keyed digest of every file that ``Tuner.restore`` would unpickle, checked before it does.

Ray Tune keeps a stage's state in ``<search>/ray/<stage>/``: ``tuner.pkl`` (a cloudpickle),
``experiment_state-*.json`` (JSON whose non-JSON values are cloudpickles), and the searcher's
state (``basic-variant-state-*.json`` and ``searcher-state-*.pkl`` are pickles whatever their
name); trial folders hold ``params.pkl``. Anyone who can write there could make the next
``--resume`` run code. So raynas records an HMAC-SHA256 of each of these files (the top-level
files of the stage folder and every ``*.pkl`` below it) in ``ray/<stage>/.raynas-digests.json``,
keyed with a per-user secret kept outside the storage, and :func:`verify_stage` refuses a
missing or mismatching digest, naming the file, before anything is unpickled.

The secret is ``$RAYNAS_SECRET_FILE`` or ``~/.config/raynas/secret`` (``$XDG_CONFIG_HOME``
honoured), created with mode 0600 on first use. Trial checkpoints are not covered: raynas
reads them with ``torch.load(weights_only=True)`` and JSON only.

Tune writes its experiment state into a staging folder on the driver and copies it to the
stage folder in a background thread; :class:`SigningCallback` signs the staged files right after
Tune writes them, keeping the last few digests of each file, so a search killed at any moment
still resumes. Only files Ray wrote are signed, never files found in the stage folder (except
``tuner.pkl``, which ``Tuner`` writes there itself, signed right after).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import stat
from pathlib import Path
from typing import Any

from ray.tune import Callback

from raynas.errors import UserError

__all__ = [
    "DIGEST_FILE",
    "SECRET_FILE_ENV",
    "guarded_files",
    "load_secret",
    "secret_path",
    "sign_files",
    "verify_search",
    "verify_stage",
    "SigningCallback",
    "sign_staged",
    "sign_tuner",
]

DIGEST_FILE = ".raynas-digests.json"
SECRET_FILE_ENV = "RAYNAS_SECRET_FILE"
_NOT_LOADED = (DIGEST_FILE, ".validate_storage_marker")  # Ray only checks the marker exists
_KEEP = 4  # digests kept per file: the storage copy may lag the staged one
_MAX_MANIFEST = 16 * 1024 * 1024


def secret_path() -> Path:
    """Where the per-user secret lives (never inside a search's storage)."""
    env = os.environ.get(SECRET_FILE_ENV)
    if env:
        return Path(env).expanduser()
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config).expanduser() / "raynas" / "secret"


def load_secret(path: Path | None = None, *, create: bool = True) -> bytes:
    """The secret's bytes; created (32 random bytes, hex, mode 0600) when missing and
    ``create``. A secret file that others may read or write is refused."""
    path = path or secret_path()
    if not path.exists():
        if not create:
            raise UserError(f"{path}: the raynas secret is missing ({SECRET_FILE_ENV})")
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # created concurrently: read it below
        except OSError as exc:
            raise UserError(
                f"{path}: cannot create the raynas secret ({exc.strerror}); set "
                f"{SECRET_FILE_ENV} to a writable place outside the storage path"
            ) from None
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32))
    try:
        info = path.stat()
        if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise UserError(
                f"{path}: the raynas secret is readable or writable by others "
                f"(mode {stat.S_IMODE(info.st_mode):o}); chmod 600 it"
            )
        key = path.read_bytes().strip()
    except OSError as exc:
        raise UserError(f"{path}: cannot read the raynas secret ({exc.strerror})") from None
    if len(key) < 32:
        raise UserError(f"{path}: the raynas secret is too short (delete it to make a new one)")
    return key


def _digest(key: bytes, relpath: str, path: Path) -> str:
    mac = hmac.new(key, relpath.encode() + b"\0", hashlib.sha256)
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            mac.update(block)
    return mac.hexdigest()


def guarded_files(folder: Path) -> dict[str, Path]:
    """The files of a stage folder that need a digest, by path relative to ``folder``: every
    top-level file, and every ``*.pkl`` below it (checkpoint folders hold none that we read)."""
    out: dict[str, Path] = {}
    if not folder.is_dir():
        return out
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.name not in _NOT_LOADED and not path.name.startswith(".tmp"):
            out[path.name] = path
    for path in sorted(folder.glob("*/**/*.pkl")):
        if path.is_file():
            out[path.relative_to(folder).as_posix()] = path
    return out


def _read_manifest(folder: Path) -> dict[str, list[str]]:
    path = folder / DIGEST_FILE
    try:
        if path.stat().st_size > _MAX_MANIFEST:
            return {}
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, dict):
        return {}
    return {
        str(k): [str(d) for d in v if isinstance(d, str)]
        for k, v in files.items()
        if isinstance(v, list)
    }


def sign_files(folder: Path, files: dict[str, Path], key: bytes | None = None) -> None:
    """Adds the digests of ``files`` (relative path -> file whose content is, or will be, at
    that path under ``folder``) to the folder's digest file."""
    if not files:
        return
    key = key if key is not None else load_secret()
    manifest = _read_manifest(folder)
    changed = False
    for rel, path in files.items():
        try:
            digest = _digest(key, rel, path)
        except OSError:
            continue  # vanished meanwhile (Tune replaces files atomically)
        known = manifest.setdefault(rel, [])
        if digest not in known:
            known.append(digest)
            del known[:-_KEEP]
            changed = True
    if changed:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".tmp-{DIGEST_FILE}"
        try:
            tmp.write_text(json.dumps({"version": 1, "files": manifest}, indent=1, sort_keys=True))
            tmp.replace(folder / DIGEST_FILE)
        except BaseException:  # a full disk: no partial temporary file left behind
            tmp.unlink(missing_ok=True)
            raise


def verify_stage(folder: Path, key: bytes | None = None) -> None:
    """Checks every guarded file of ``folder`` against its recorded digests; raises
    :class:`~raynas.errors.UserError` naming the first file without a matching one."""
    files = guarded_files(folder)
    if not files:
        return
    key = key if key is not None else load_secret(create=False)
    manifest = _read_manifest(folder)
    for rel, path in files.items():
        known = manifest.get(rel)
        why = "has no raynas digest" if not known else "does not match its raynas digest"
        if known and any(hmac.compare_digest(_digest(key, rel, path), d) for d in known):
            continue
        raise UserError(
            f"{path}: {why}; refusing to resume from a Ray state that raynas did not write "
            f"(remove {folder} to run the stage again)"
        )


def verify_search(ray_dir: Path) -> None:
    """:func:`verify_stage` for every stage folder of a search's ``ray/`` folder (a resumed
    search checks them all before Ray starts, and each again before its restore)."""
    if ray_dir.is_dir():
        for folder in sorted(p for p in ray_dir.iterdir() if p.is_dir()):
            verify_stage(folder)


class _Signer:
    """Signs what changed since the last call (by size and mtime)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.seen: dict[str, tuple[int, int]] = {}

    def sign(self, files: dict[str, Path], key: bytes) -> None:
        todo: dict[str, Path] = {}
        for rel, path in files.items():
            try:
                info = path.stat()
            except OSError:
                continue
            mark = (info.st_size, info.st_mtime_ns)
            if self.seen.get(str(path)) != mark:
                self.seen[str(path)] = mark
                todo[rel] = path
        sign_files(self.folder, todo, key)


class SigningCallback(Callback):
    """Tune callback: signs the experiment state in Tune's staging folder on the driver right
    after Tune writes it there (each step, and at the end of the run), before or while Tune
    copies it into the stage folder. Only what Ray wrote is signed, never what is found in the
    (shared) stage folder. Holds paths only (it is pickled into ``tuner.pkl``); the secret is
    read from its file at each signing."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self._staging: list[Path] = []
        self._signer = _Signer(self.folder)

    def sign_now(self) -> None:
        key = load_secret()
        for staging in self._staging or _staging_dirs(self.folder.name):
            self._signer.sign(guarded_files(staging), key)

    def remember_staging(self, trials: list[Any]) -> None:
        if not self._staging and trials:
            path = getattr(trials[0], "local_experiment_path", None)
            if path:
                self._staging = [Path(path)]

    def on_step_begin(self, iteration: int, trials: list, **info: Any) -> None:
        self.remember_staging(trials)

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        self.remember_staging(trials)
        self.sign_now()

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        self.sign_now()


def _staging_dirs(stage: str) -> list[Path]:
    """Tune's staging folders of experiment ``stage`` in this driver's Ray session
    (``<session>/artifacts/<time>/<stage>/driver_artifacts``)."""
    try:
        import ray._private.worker as worker

        node = worker._global_node
        session = node.get_session_dir_path() if node is not None else None
    except Exception:  # noqa: BLE001 - no local session (Ray Client): nothing to find
        session = None
    if not session:
        return []
    return sorted(Path(session).glob(f"artifacts/*/{stage}/driver_artifacts"))


def sign_staged(folder: Path) -> None:
    """Signs what Tune has staged for the stage folder ``folder`` (e.g. on a forced exit)."""
    SigningCallback(folder).sign_now()


def sign_tuner(folder: Path) -> None:
    """Signs ``tuner.pkl``, which ``Tuner()`` and ``Tuner.restore`` write into the stage folder
    themselves (no staging), right after they did."""
    path = folder / "tuner.pkl"
    if path.is_file():
        sign_files(folder, {path.name: path})
