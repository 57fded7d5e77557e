"""Provenance of a benchmark result: which code, config, data and seeds wrote it, and how long.

Every ``benchmarks/results/*.json`` carries a :func:`stamp` (git commit and dirty flag, a digest
of the code that ran, the resolved config, the dataset and its digest, the seeds, versions) and
the seconds spent per part (:class:`Timer`), and is written by :func:`write_result`, which refuses
a payload without them. :func:`check_reusable` says whether an earlier result (its stand-alone
networks, say) may be reused: only when the code, the config and the data are the same.
:func:`mean_valid` is the one mean a result file stores: undefined values are skipped and
counted, and a mean of nothing is ``null``, never 0.

**The code a run used.** When a result is written, its stamp gets ``code_files``: the sha256 of
every source file the run loaded (each ``raynas`` / ``benchmarks`` module in ``sys.modules``, in
this process and in the worker processes that reported theirs with :func:`note_code`), of the
space and preset YAMLs and of the script. :func:`is_current` compares those files with the ones
on disk now, so an edit elsewhere (the CLI, tracking) leaves a result current, and an edit to
code it ran does not. A loaded file modified after the run started marks the stamp dirty
(``changed_during_run``): the bytes that ran are not the bytes hashed.

A stamp without ``code_files`` (older writers) falls back to ``code_digest``, a sha256 over
the contents of every source file under ``raynas/``, ``benchmarks/`` (results excluded),
``search_spaces/`` and ``tune_configs/`` as they are on disk (tracked, modified or new; what
git ignores is left out), so it changes with any edit, committed or not.

Pure python (no ray, mlflow or torch import).

Example:
    >>> timer = Timer()
    >>> with timer.part("train"):
    ...     pass
    >>> st = stamp({"epochs": 2}, dataset="synthetic", dataset_digest="ab12", seeds=[0],
    ...            script="benchmarks/x.py")  # doctest: +SKIP
    >>> payload = {"stamp": st, "seconds": timer.seconds(), "summary": {}}  # doctest: +SKIP
    >>> write_result(path, payload)  # doctest: +SKIP
    >>> mean_valid([0.5, None, float("nan"), 0.7])
    {'mean': 0.6, 'n_valid': 2, 'n': 4}
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = [
    "CODE_PATHS",
    "STAMP_KEYS",
    "Timer",
    "check_reusable",
    "code_digest",
    "loaded_code",
    "note_code",
    "git_state",
    "is_current",
    "json_ready",
    "mean_valid",
    "repo_root",
    "stamp",
    "why_not_reusable",
    "write_labelled",
    "write_result",
]

#: Folders whose sources make up "the code" of a result (relative to the repository root).
CODE_PATHS = ("raynas", "benchmarks", "search_spaces", "tune_configs")
#: Under CODE_PATHS but not code: what the benchmarks write.
EXCLUDED = ("benchmarks/results/",)
#: Every stamp has these keys.
STAMP_KEYS = ("commit", "dirty", "code_digest", "config", "dataset", "dataset_digest", "seeds",
              "script", "python", "torch", "machine", "written_at")  # fmt: skip
_SKIP_PARTS = {"__pycache__", ".pytest_cache", ".ruff_cache"}


def repo_root() -> Path:
    """The checkout this package lives in (the folder holding ``raynas/``)."""
    return Path(__file__).resolve().parents[2]


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[bytes] | None:
    try:
        proc = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, timeout=20, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return proc if proc.returncode == 0 else None


def _code_files(root: Path) -> list[str]:
    """Source files under CODE_PATHS, as posix paths relative to ``root`` (sorted)."""
    listed = _git(root, "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--",
                  *CODE_PATHS)  # fmt: skip
    if listed is not None:
        names = {n for n in listed.stdout.decode().split("\0") if n}
    else:  # not a git checkout (an unpacked sdist): every file but caches and bytecode
        names = set()
        for top in CODE_PATHS:
            for path in (root / top).rglob("*"):
                rel = path.relative_to(root)
                if path.is_file() and not _SKIP_PARTS & set(rel.parts) and path.suffix != ".pyc":
                    names.add(rel.as_posix())
    return sorted(n for n in names if not n.startswith(EXCLUDED))


def code_digest(root: Path | str | None = None) -> str:
    """sha256 over the path and contents of every source file of the code (see module doc); a
    tracked file deleted on disk counts as ``<deleted>``."""
    root = Path(root) if root is not None else repo_root()
    h = hashlib.sha256()
    for name in _code_files(root):
        path = root / name
        if path.is_file():
            with open(path, "rb") as fh:
                content = hashlib.file_digest(fh, "sha256").hexdigest()
        elif path.exists() or path.is_symlink():
            continue  # a folder (submodule) or a dangling link: not a source file
        else:
            content = "<deleted>"
        h.update(f"{name}\0{content}\n".encode())
    return h.hexdigest()


_NOTED: set[str] = set()


def _sha(path: Path) -> str | None:
    try:
        with open(path, "rb") as fh:
            return hashlib.file_digest(fh, "sha256").hexdigest()
    except OSError:
        return None


def loaded_paths(root: Path | str | None = None) -> list[str]:
    """The code files this process loaded, relative to ``root``: every module in ``sys.modules``
    from ``raynas/`` or ``benchmarks/`` (results excluded), and every file under
    ``search_spaces/`` and ``tune_configs/`` (read by name, not imported)."""
    root = (Path(root) if root is not None else repo_root()).resolve()
    out: set[str] = set()
    for module in list(sys.modules.values()):
        file = getattr(module, "__file__", None)
        if not file:
            continue
        path = Path(file).resolve()
        if path.is_relative_to(root):
            rel = path.relative_to(root).as_posix()
            if rel.startswith(("raynas/", "benchmarks/")) and not rel.startswith(EXCLUDED):
                out.add(rel)
    for top in ("search_spaces", "tune_configs"):
        out.update(p.relative_to(root).as_posix() for p in (root / top).rglob("*")
                   if p.is_file() and not _SKIP_PARTS & set(p.parts))  # fmt: skip
    return sorted(out)


def note_code(paths: Iterable[str]) -> None:
    """Adds the code files a worker process loaded (its :func:`loaded_paths`) to this
    process's, for the next :func:`write_result`."""
    _NOTED.update(paths)


def loaded_code(script: str | None = None, root: Path | str | None = None,
                since: float | None = None) -> tuple[dict[str, str | None], list[str]]:
    """``({path: sha256}, changed)``: the code this run loaded (:func:`loaded_paths`, the files
    noted by :func:`note_code` and ``script``) hashed now, and those modified after ``since``
    (epoch seconds: when the run started)."""
    root = Path(root) if root is not None else repo_root()
    names = set(loaded_paths(root)) | _NOTED | ({script} if script else set())
    files, changed = {}, []
    for name in sorted(names):
        path = root / name
        files[name] = _sha(path)
        try:
            if since is not None and path.stat().st_mtime > since:
                changed.append(name)
        except OSError:
            changed.append(name)
    return files, changed


@lru_cache(maxsize=4)
def _current_digest(root: str) -> str:
    return code_digest(root)


def git_state(root: Path | str | None = None) -> tuple[str | None, bool | None]:
    """(HEAD commit, whether the code differs from it); ``(None, None)`` outside a git checkout.

    Dirty means a tracked file under CODE_PATHS is modified or deleted, or a new (not ignored)
    file is there; result files and other folders (docs, tests) do not count.
    """
    root = Path(root) if root is not None else repo_root()
    head = _git(root, "rev-parse", "HEAD")
    if head is None:
        return None, None
    status = _git(root, "status", "--porcelain", "-z", "--untracked-files=all", "--",
                  *CODE_PATHS)  # fmt: skip
    if status is None:
        return head.stdout.decode().strip(), None
    entries = [e[3:] for e in status.stdout.decode().split("\0") if len(e) > 3]
    dirty = any(not e.startswith(EXCLUDED) for e in entries)
    return head.stdout.decode().strip(), dirty


def json_ready(value: Any) -> Any:
    """``value`` as plain JSON data: tuples and sets as lists, paths as strings, mappings with
    string keys, and NaN / inf as ``None`` (an undefined number is null, never a number)."""
    if isinstance(value, Mapping):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted(json_ready(v) for v in value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, bool | int | str):
        return value
    if hasattr(value, "model_dump"):  # a pydantic model (a preset)
        return json_ready(value.model_dump(mode="json"))
    if hasattr(value, "item"):  # a numpy or torch scalar
        return json_ready(value.item())
    raise TypeError(f"not JSON data: {type(value).__name__} {value!r}")


def _torch_version() -> str | None:
    module = sys.modules.get("torch")
    if module is not None:
        return str(module.__version__)
    try:
        from importlib.metadata import version

        return version("torch")
    except Exception:  # noqa: BLE001 - not installed: recorded as null
        return None


def stamp(
    config: Mapping[str, Any],
    *,
    dataset: str | None,
    dataset_digest: str | None,
    seeds: Iterable[int],
    script: str,
    root: Path | str | None = None,
) -> dict[str, Any]:
    """The provenance of a result written now by ``script`` with ``config`` on ``dataset``.

    Args:
        config: the resolved config (every setting the figures depend on), JSON data.
        dataset: the dataset's name or path; None where no dataset is read.
        dataset_digest: its digest (:func:`raynas.bench.datasets.dataset_digest`).
        seeds: the seeds of the run.
        script: the script that writes the result (``__file__``: kept relative to the
            repository).
        root: the checkout (default: the one this package is imported from).

    Raises:
        ValueError: a seed that is not an int, or a dataset without a digest.
    """
    seeds = list(seeds)
    if not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise ValueError(f"seeds must be ints, got {seeds!r}")
    if dataset is not None and not dataset_digest:
        raise ValueError(f"dataset {dataset!r} needs its digest (dataset_digest)")
    root = Path(root) if root is not None else repo_root()
    script_path = Path(script)
    if script_path.is_absolute() and script_path.resolve().is_relative_to(root.resolve()):
        script = script_path.resolve().relative_to(root.resolve()).as_posix()
    commit, dirty = git_state(root)
    return {
        "commit": commit,
        "dirty": dirty,
        "code_digest": code_digest(root),
        "config": json_ready(config),
        "dataset": dataset,
        "dataset_digest": dataset_digest,
        "seeds": seeds,
        "script": script,
        "python": platform.python_version(),
        "torch": _torch_version(),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.machine(),
            "cpus": os.cpu_count(),
        },  # fmt: skip
        "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "started": round(time.time(), 3),
    }


class Timer:
    """Seconds per part of a run, for the ``seconds`` of a result file.

    Example:
        >>> timer = Timer()
        >>> with timer.part("retrain"):
        ...     pass
        >>> sorted(timer.seconds())
        ['retrain', 'total']
    """

    def __init__(self) -> None:
        self._start = time.perf_counter()
        self._parts: dict[str, float] = {}

    @contextmanager
    def part(self, name: str) -> Iterator[None]:
        """Times the block; a part timed twice adds up."""
        if name == "total":
            raise ValueError("'total' is the whole run's wall time, not a part name")
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self._parts[name] = self._parts.get(name, 0.0) + time.perf_counter() - t0

    def add(self, name: str, seconds: float) -> None:
        """Adds seconds measured elsewhere (a subprocess's own timing) to a part."""
        if name == "total" or not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"bad part {name!r} or seconds {seconds!r}")
        self._parts[name] = self._parts.get(name, 0.0) + seconds

    def seconds(self) -> dict[str, float]:
        """``{part: s, ..., "total": wall seconds since the timer was made}``, rounded to ms."""
        out = {k: round(v, 3) for k, v in self._parts.items()}
        out["total"] = round(time.perf_counter() - self._start, 3)
        return out


def mean_valid(values: Iterable[float | int | None]) -> dict[str, float | int | None]:
    """The mean of the defined values: None, NaN and inf are skipped and counted.

    Returns ``{"mean": m, "n_valid": k, "n": n}``; ``mean`` is None when ``k == 0``.
    """
    values = list(values)
    ok = [float(v) for v in values
          if v is not None and not isinstance(v, bool) and math.isfinite(float(v))]  # fmt: skip
    mean = math.fsum(ok) / len(ok) if ok else None
    return {"mean": mean, "n_valid": len(ok), "n": len(values)}


def why_not_reusable(
    earlier: Mapping[str, Any] | None,
    now: Mapping[str, Any] | None,
    *,
    config_keys: Iterable[str] | None = None,
) -> str | None:
    """Why results stamped ``earlier`` may not stand in for a run stamped ``now`` (None: they
    may). ``config_keys`` limits the config comparison to those top-level keys (the recipe of
    what is reused), default: the whole config."""
    if not isinstance(earlier, Mapping) or not isinstance(now, Mapping):
        return "no stamp (written by older code)"
    same_digest = bool(earlier.get("code_digest")) and earlier.get("code_digest") == now.get(
        "code_digest"
    )
    same_commit = (bool(earlier.get("commit")) and earlier.get("commit") == now.get("commit")
                   and earlier.get("dirty") is False and now.get("dirty") is False)  # fmt: skip
    if not (same_digest or same_commit):
        return (f"other code (commit {str(earlier.get('commit'))[:10]}, digest "
                f"{str(earlier.get('code_digest'))[:10]} vs {str(now.get('commit'))[:10]}, "
                f"{str(now.get('code_digest'))[:10]})")  # fmt: skip
    a, b = earlier.get("config"), now.get("config")
    if not isinstance(a, Mapping) or not isinstance(b, Mapping):
        return "no config recorded"
    keys = sorted(set(a) | set(b)) if config_keys is None else list(config_keys)
    differ = [k for k in keys if json_ready(a.get(k)) != json_ready(b.get(k))]
    if differ:
        return f"other config ({', '.join(differ)})"
    if earlier.get("dataset_digest") is None or now.get("dataset_digest") is None:
        return "no dataset digest recorded"
    if earlier.get("dataset_digest") != now.get("dataset_digest"):
        return f"other data ({earlier.get('dataset_digest')} vs {now.get('dataset_digest')})"
    return None


def check_reusable(
    earlier: Mapping[str, Any] | None,
    now: Mapping[str, Any] | None,
    *,
    config_keys: Iterable[str] | None = None,
) -> bool:
    """True only when the code (same clean commit, or same code digest), the config and the
    dataset digest all match (see :func:`why_not_reusable`)."""
    return why_not_reusable(earlier, now, config_keys=config_keys) is None


def is_current(st: Mapping[str, Any] | None, root: Path | str | None = None) -> bool:
    """Whether the code that wrote a stamp is the code on disk now: every file in its
    ``code_files`` unchanged (a stamp without them: the whole-tree ``code_digest``)."""
    if not isinstance(st, Mapping):
        return False
    root = Path(root) if root is not None else repo_root()
    files = st.get("code_files")
    if isinstance(files, Mapping) and files:
        return not st.get("changed_during_run") and all(
            sha is not None and _sha(root / name) == sha for name, sha in files.items())
    if not st.get("code_digest"):
        return False
    return st["code_digest"] == _current_digest(str(root.resolve()))


def _with_code(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The payload with its stamp's ``code_files`` (the code the run loaded, hashed now) and,
    where a loaded file changed after the run started, ``changed_during_run`` and dirty."""
    st = dict(payload["stamp"])
    script = st.get("script") if isinstance(st.get("script"), str) else None
    files, changed = loaded_code(script, since=st.get("started"))
    st["code_files"] = files
    if changed:
        st["changed_during_run"] = changed
        st["dirty"] = True
    return {**payload, "stamp": st}


def _check_payload(payload: Mapping[str, Any]) -> None:
    st = payload.get("stamp")
    if not isinstance(st, Mapping):
        raise ValueError("a result needs a 'stamp' (raynas.bench.provenance.stamp)")
    missing = [k for k in STAMP_KEYS if k not in st]
    if missing:
        raise ValueError(f"the result's stamp lacks {', '.join(missing)}")
    seconds = payload.get("seconds")
    if not isinstance(seconds, Mapping) or not seconds:
        raise ValueError("a result needs 'seconds' per part (raynas.bench.provenance.Timer)")


def _write_json(path: Path, payload: Mapping[str, Any]) -> Path:
    try:
        text = json.dumps(payload, indent=1, allow_nan=False) + "\n"
    except ValueError as exc:
        raise ValueError(f"{path}: a NaN or inf in the result; store null ({exc})") from exc
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_labelled(path: Path | str, label: str, run: Mapping[str, Any], **top: Any) -> Path:
    """Writes ``run`` (stamped, with its seconds) under ``label`` in a file that keeps several
    labelled runs side by side (``before`` / ``after``), the other labels as they were, and
    ``top`` as top-level keys. Atomic, like :func:`write_result`.

    Raises:
        ValueError: ``run`` without stamp or seconds, a NaN, ``label`` naming a top-level key,
            or an existing file that is not a JSON object (it is left alone, never replaced).
    """
    _check_payload(run)
    run = _with_code(run)
    path = Path(path)
    if label in top:
        raise ValueError(f"label {label!r} is also a top-level key")
    data: dict[str, Any] = {}
    if path.exists():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ValueError(f"{path}: not readable as JSON, not replaced ({exc})") from exc
        if not isinstance(data, dict):
            raise ValueError(f"{path}: not a JSON object, not replaced")
    data.update(top)
    data[label] = dict(run)
    return _write_json(path, data)


def write_result(path: Path | str, payload: Mapping[str, Any]) -> Path:
    """Writes a stamped result as JSON, atomically (a temporary sibling, then a rename).

    NaN and inf anywhere in the payload are refused (store None and count it, see
    :func:`mean_valid`), as is a payload without ``stamp`` and ``seconds``.

    Raises:
        ValueError: no stamp, no seconds, or a non-finite number.
    """
    _check_payload(payload)
    return _write_json(Path(path), _with_code(payload))
