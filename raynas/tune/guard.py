"""A keyed digest of every file that ``Tuner.restore`` would unpickle, checked before it does.

Ray Tune keeps a stage's state in ``<search>/ray/<stage>/``: ``tuner.pkl`` (a cloudpickle),
``experiment_state-*.json`` (JSON whose non-JSON values are cloudpickles), and the searcher's
state (``basic-variant-state-*.json`` and ``searcher-state-*.pkl`` are pickles whatever their
name); trial folders hold ``params.pkl``. Anyone who can write there could make the next
``--resume`` run code. So raynas records an HMAC-SHA256 of each of these files (the top-level
files of the stage folder and every ``*.pkl`` below it) in ``ray/<stage>/.raynas-digests``,
keyed with the per-user secret (:mod:`raynas.seal`), and :func:`verify_stage` refuses a
missing or mismatching digest, naming the file, before anything is unpickled.

What a digest is bound to (:class:`SearchSeal`): the search's identity (``state.json``'s
``search_id``), the stage and the file's path in the stage folder, so another search's signed
state, or another stage's, never verifies here. The digest file itself carries a MAC and a
counter raised at each signing; ``state.json`` (sealed too, see
:class:`raynas.pipeline.outputs.SearchFolder`) records the last counter of each stage, so an
older digest file put back (a rolled-back stage) is refused.

Tune writes its experiment state into a staging folder on the driver
(``<session>/artifacts/<time>/<stage>/driver_artifacts``) and copies it to the stage folder in
a background thread; :class:`SigningCallback` signs the staged files of *this* Tuner (the path
its trials name, never a folder found by a pattern) right after Tune writes them, keeping the
last few digests of each file, so a search killed at any moment still resumes. When nothing
could be signed (no staging folder found, e.g. through Ray Client) it says so, and
``--resume`` refuses the stage. The callback holds no path (it is pickled into ``tuner.pkl``):
it signs for the stage :func:`signing` makes active.

:func:`verify_stage` reads each file once, checks those bytes and writes them back as a fresh
private file (mode 0600, in a stage folder made 0700), so what ``Tuner.restore`` reads is what
was verified: nobody holding the old file open, or a link to it, can change it afterwards.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ray.tune import Callback

from raynas.errors import UserError
from raynas.seal import (
    SECRET_FILE_ENV,
    json_mac,
    keyed_digest,
    load_secret,
    secret_path,
    write_private,
)

__all__ = [
    "DIGEST_FILE",
    "SECRET_FILE_ENV",
    "SearchSeal",
    "SigningCallback",
    "guarded_files",
    "load_secret",
    "secret_path",
    "sign_files",
    "sign_staged",
    "sign_tuner",
    "signing",
    "verify_search",
    "verify_stage",
]

logger = logging.getLogger(__name__)

# Not a *.json / *.pkl name: Tune copies those of the stage folder into its staging folder on a
# restore and back with every sync, which would put a stale digest file over the current one
DIGEST_FILE = ".raynas-digests"
_VERSION = 2
_NOT_LOADED = (DIGEST_FILE, ".validate_storage_marker")  # Ray only checks the marker exists
_KEEP = 4  # digests kept per file: the storage copy may lag the staged one
_MAX_MANIFEST = 16 * 1024 * 1024


@dataclass
class SearchSeal:
    """What a search's digests are bound to.

    Attributes:
        identity: the search's ``search_id`` (``state.json``).
        counters: the last digest-file counter of each stage, as ``state.json`` recorded it.
        record: called with ``(stage, counter)`` after each signing, to record the counter.

    Example:
        >>> seal = SearchSeal("0f3a...", {"coarse": 7})
    """

    identity: str
    counters: dict[str, int] = field(default_factory=dict)
    record: Callable[[str, int], None] | None = None


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


def _context(seal: SearchSeal, stage: str, rel: str) -> tuple[str, str, str]:
    return (seal.identity, stage, rel)


def _raw_manifest(folder: Path) -> dict[str, Any] | None:
    path = folder / DIGEST_FILE
    try:
        if path.stat().st_size > _MAX_MANIFEST:
            return None
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _checked(data: dict[str, Any] | None, key: bytes, seal: SearchSeal, stage: str) -> str:
    """Why the digest file ``data`` cannot be trusted for this search's stage ("" if it can)."""
    if data is None:
        return "missing"
    body = {k: v for k, v in data.items() if k != "mac"}
    mac = data.get("mac")
    if data.get("version") != _VERSION or not isinstance(mac, str):
        return "not signed by this raynas"
    if not hmac.compare_digest(json_mac(key, ("manifest", stage), body), mac):
        return "not signed with your raynas secret"
    if data.get("search") != seal.identity:
        return "signed for another search"
    counter = data.get("counter")
    recorded = int(seal.counters.get(stage, 0))
    if not isinstance(counter, int) or counter < recorded:
        return f"older than this search's state (counter {counter} < {recorded}: rolled back)"
    return ""


def _files_of(data: dict[str, Any] | None) -> dict[str, list[str]]:
    files = (data or {}).get("files")
    if not isinstance(files, dict):
        return {}
    return {
        str(k): [str(d) for d in v if isinstance(d, str)]
        for k, v in files.items()
        if isinstance(v, list)
    }


def sign_files(
    folder: Path, files: dict[str, Path], seal: SearchSeal, key: bytes | None = None
) -> int:
    """Adds the digests of ``files`` (relative path -> file whose content is, or will be, at
    that path under ``folder``) to the folder's digest file, raising its counter; returns how
    many files were signed."""
    if not files:
        return 0
    key = key if key is not None else load_secret()
    stage = folder.name
    data = _raw_manifest(folder)
    why = _checked(data, key, seal, stage)
    trusted = why == ""
    if why and why != "missing":
        logger.warning("%s: %s; signing anew", folder / DIGEST_FILE, why)
    manifest = _files_of(data) if trusted else {}
    counter = max(int(data["counter"]) if trusted else 0, int(seal.counters.get(stage, 0)))
    signed = 0
    for rel, path in files.items():
        try:
            digest = keyed_digest(key, _context(seal, stage, rel), path)
        except OSError:
            continue  # vanished meanwhile (Tune replaces files atomically)
        signed += 1
        known = manifest.setdefault(rel, [])
        if digest not in known:
            known.append(digest)
            del known[:-_KEEP]
    if signed:
        body = {"version": _VERSION, "search": seal.identity, "counter": counter + 1,
                "files": manifest}  # fmt: skip
        body["mac"] = json_mac(key, ("manifest", stage), body)
        folder.mkdir(parents=True, exist_ok=True)
        text = json.dumps(body, indent=1, sort_keys=True).encode()
        write_private(folder / DIGEST_FILE, text, mode=0o644)
        seal.counters[stage] = counter + 1
        if seal.record is not None:
            seal.record(stage, counter + 1)
    return signed


def _refuse(path: Path, why: str, folder: Path) -> UserError:
    return UserError(
        f"{path}: {why}; refusing to resume from a Ray state that raynas did not write for "
        f"this search (remove {folder} to run the stage again)"
    )


def verify_stage(
    folder: Path, seal: SearchSeal, key: bytes | None = None, *, private_copy: bool = True
) -> None:
    """Checks every guarded file of ``folder`` against its recorded digests; raises
    :class:`~raynas.errors.UserError` naming the first file without a matching one (or the
    digest file, when it is missing, forged, another search's or rolled back).

    With ``private_copy`` each file is then replaced by a fresh private file holding the bytes
    that were verified (and the folder made 0700 when it is ours): what ``Tuner.restore``
    unpickles next is what was checked."""
    files = guarded_files(folder)
    if not files:
        return
    key = key if key is not None else load_secret(create=False)
    stage = folder.name
    data = _raw_manifest(folder)
    why = _checked(data, key, seal, stage)
    if why == "missing":
        raise _refuse(folder / DIGEST_FILE, "missing: nothing of this stage was signed", folder)
    if why:
        raise _refuse(folder / DIGEST_FILE, why, folder)
    manifest = _files_of(data)
    verified: dict[Path, bytes] = {}
    for rel, path in files.items():
        known = manifest.get(rel)
        try:
            content = path.read_bytes()
        except OSError as exc:
            raise _refuse(path, f"unreadable ({exc.strerror})", folder) from None
        digest = keyed_digest(key, _context(seal, stage, rel), content)
        if known and any(hmac.compare_digest(digest, d) for d in known):
            verified[path] = content
            continue
        why = "has no raynas digest" if not known else "does not match its raynas digest"
        raise _refuse(path, why, folder)
    if private_copy:
        _make_private(folder)
        for path, content in verified.items():
            write_private(path, content)


def _make_private(folder: Path) -> None:
    """The stage folder and its subfolders writable by us only (where we own them)."""
    for sub in [folder, *(p for p in folder.rglob("*") if p.is_dir() and not p.is_symlink())]:
        with contextlib.suppress(OSError):
            info = sub.stat()
            if info.st_uid == os.getuid() and info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
                sub.chmod(stat.S_IMODE(info.st_mode) & ~(stat.S_IWGRP | stat.S_IWOTH))


def verify_search(ray_dir: Path, seal: SearchSeal) -> None:
    """:func:`verify_stage` (without copies) for every stage folder of a search's ``ray/``
    folder: a resumed search checks them all before Ray starts, and each again, copying what
    it verified, right before its restore."""
    if ray_dir.is_dir():
        for folder in sorted(p for p in ray_dir.iterdir() if p.is_dir()):
            verify_stage(folder, seal, private_copy=False)


class _Signer:
    """Signs what changed since the last call (by size and mtime)."""

    def __init__(self, folder: Path, seal: SearchSeal) -> None:
        self.folder = folder
        self.seal = seal
        self.seen: dict[str, tuple[int, int]] = {}
        self.signed = 0

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
        self.signed += sign_files(self.folder, todo, self.seal, key)


class _Signing:
    """The stage being signed: its folder, seal, and Tune's staging folder once known."""

    def __init__(self, folder: Path, seal: SearchSeal) -> None:
        self.folder = folder
        self.seal = seal
        self.staging: Path | None = None
        self.signer = _Signer(folder, seal)

    def remember(self, trials: list[Any]) -> None:
        if self.staging is None and trials:
            path = getattr(trials[0], "local_experiment_path", None)
            # this Tuner's own staging folder: <session>/artifacts/<time>/<stage>/driver_artifacts
            if path and Path(path).parent.name == self.folder.name:
                self.staging = Path(path)

    def sign(self) -> None:
        if self.staging is not None and self.staging.is_dir():
            self.signer.sign(guarded_files(self.staging), load_secret())

    def say_if_unsigned(self) -> None:
        if not self.signer.signed and guarded_files(self.folder).keys() - {"tuner.pkl"}:
            logger.warning(
                "%s: nothing of Ray's state could be signed (Tune's staging folder %s); "
                "--resume will refuse this stage",
                self.folder,
                self.staging or "was not found",
            )


_ACTIVE: _Signing | None = None


@contextlib.contextmanager
def signing(folder: Path, seal: SearchSeal) -> Iterator[_Signing]:
    """Makes ``folder`` (``<search>/ray/<stage>``) the stage :class:`SigningCallback` signs for
    while the block runs; at its end, signs what Tune staged last and says so when nothing of
    Ray's state could be signed."""
    global _ACTIVE
    before, _ACTIVE = _ACTIVE, _Signing(Path(folder), seal)
    active = _ACTIVE
    try:
        yield active
    except BaseException:
        _ACTIVE = before
        try:
            active.sign()
            active.say_if_unsigned()
        except OSError as exc:  # a full disk: never in place of the error that stopped the stage
            logger.info("could not sign %s (%s)", folder, exc)
        raise
    _ACTIVE = before
    active.sign()
    active.say_if_unsigned()


class SigningCallback(Callback):
    """Tune callback: signs the experiment state in this Tuner's staging folder on the driver
    right after Tune writes it there (each step, and at the end of the run), before or while
    Tune copies it into the stage folder. Only what Ray wrote for this Tuner is signed, never
    what is found in the (shared) stage folder or session. Holds nothing (it is pickled into
    ``tuner.pkl``): it signs for the stage :func:`signing` made active."""

    def on_step_begin(self, iteration: int, trials: list, **info: Any) -> None:
        if _ACTIVE is not None:
            _ACTIVE.remember(trials)

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        if _ACTIVE is not None:
            _ACTIVE.remember(trials)
            _ACTIVE.sign()

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        if _ACTIVE is not None:
            _ACTIVE.remember(trials)
            _ACTIVE.sign()

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Nothing is restored: an older raynas pickled its stage folder's absolute path here
        (signed at the old place once the search folder had moved)."""


def sign_staged(active: _Signing) -> None:
    """Signs what Tune has staged for the active stage (e.g. on a forced exit)."""
    active.sign()


def sign_tuner(folder: Path, seal: SearchSeal) -> None:
    """Signs ``tuner.pkl``, which ``Tuner()`` and ``Tuner.restore`` write into the stage folder
    themselves (no staging), right after they did."""
    path = folder / "tuner.pkl"
    if path.is_file():
        sign_files(folder, {path.name: path}, seal)
