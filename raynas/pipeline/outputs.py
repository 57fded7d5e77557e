"""The output folder of one search: state for ``--resume``, stage tables, architectures, models.

Layout (``<storage>/<experiment>/<space>_<dataset>_s<seed>/``)::

    state.json            stages done (or interrupted), the parent MLflow run, records and
                          selections, created/updated times, the configuration fingerprint
                          (``--resume`` checks it), the search's identity, the digests of the
                          files below that a resumed search reads back, the counters of Ray's
                          signed state; sealed with the per-user secret (see below)
    search.log            the log of the search
    ray/                  Ray Tune's experiment folders (one per stage), for Tuner.restore
    coarse.csv fine.csv retrain.csv   one row per trial
    architectures/*.json  every derived architecture (+ its picture, *.png)
    models/*.pt           best weights of each retrained network (state dict) + its JSON
    frontier.csv/.json/.png

What ``--resume`` trusts: ``state.json`` carries a MAC (``seal``) keyed with the per-user secret
(:mod:`raynas.seal`) and bound to the search's ``search_id``; each architecture JSON and model
file raynas writes has a keyed digest in ``state.json``'s ``outputs``; Ray's pickles are signed
by :mod:`raynas.tune.guard`, bound to the same identity and to the counters ``state.json``
keeps. :meth:`SearchFolder.verify` checks the first two before Ray starts; an edited file is
refused with one line naming it (exit 2).
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd

from raynas.errors import UserError
from raynas.seal import json_mac, keyed_digest, load_secret, new_identity, write_private

__all__ = ["SearchFolder", "atomic_write", "slug"]


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")[:80] or "x"


def atomic_write(path: Path, data: str | bytes | Callable[[Path], Any]) -> Path:
    """Writes ``path`` whole or not at all: into ``.tmp-<name>`` beside it, then renamed over
    it. On any failure (a full disk: ``OSError``) the temporary file is removed and the error
    raised; the file at ``path``, if any, is left as it was.

    Args:
        data: The text or bytes, or a function that writes the file it is given.
    """
    path = Path(path)
    tmp = path.with_name(f".tmp-{path.name}")
    try:
        if callable(data):
            data(tmp)
        elif isinstance(data, bytes):
            tmp.write_bytes(data)
        else:
            tmp.write_text(data)
        tmp.replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise
    return path


class SearchFolder:
    """Reads and writes the files of one search folder.

    Example:
        >>> folder = SearchFolder(Path("/tmp/runs/raynas/c2f_synthetic_s0"))
        >>> folder.state.get("done", [])
        []
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.state_file = root / "state.json"
        self.state: dict[str, Any] = {}
        self._key: bytes | None = None
        self._unreadable = ""
        if self.state_file.is_file():
            try:
                state = json.loads(self.state_file.read_text())
            except (OSError, ValueError) as exc:
                self._unreadable = " ".join(str(exc).split())[:200]
            else:
                if isinstance(state, dict):
                    self.state = state
                else:
                    self._unreadable = "not a JSON object"

    def create(self) -> None:
        for sub in ("ray", "architectures", "models"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        if "search_id" not in self.state:  # what every digest of this search is bound to
            self.state["search_id"] = new_identity()
            self.save_state()

    @property
    def ray_dir(self) -> Path:
        return self.root / "ray"

    @property
    def key(self) -> bytes:
        if self._key is None:
            self._key = load_secret()
        return self._key

    def _state_mac(self, state: dict[str, Any]) -> str:
        body = {k: v for k, v in state.items() if k != "seal"}
        return json_mac(self.key, ("state", str(state.get("search_id", ""))), body)

    def save_state(self) -> None:
        now = time.time()  # when this search was created / last written (``--resume`` order)
        self.state.setdefault("created", now)
        self.state["updated"] = now
        self.state["seal"] = self._state_mac(self.state)
        text = json.dumps(self.state, indent=1, sort_keys=True)
        write_private(self.state_file, text.encode(), mode=0o644)

    def _output_digest(self, rel: str, data: bytes | Path) -> str:
        return keyed_digest(self.key, (str(self.state.get("search_id", "")), "output", rel), data)

    def seal_output(self, path: Path) -> None:
        """Records the keyed digest of ``path`` (a file of this folder that a resumed search
        reads back: an architecture, a model's weights or JSON) in ``state.json``."""
        rel = path.relative_to(self.root).as_posix()
        self.state.setdefault("outputs", {})[rel] = self._output_digest(rel, path)
        self.save_state()

    def verify(self) -> None:
        """Checks ``state.json``'s seal and every file recorded in its ``outputs``; raises
        :class:`~raynas.errors.UserError` with one line naming the first file that was edited,
        is not this search's, or cannot be read. Call before anything is taken from them."""
        where = self.state_file
        if self._unreadable:
            raise UserError(f"{where}: unreadable ({self._unreadable}); cannot resume from it")
        if not self.state:
            return
        fix = "leave out --resume to start a new search"
        if self._key is None:  # a missing secret is said as such (not made anew)
            self._key = load_secret(create=False)
        seal = self.state.get("seal")
        if not isinstance(seal, str) or not isinstance(self.state.get("search_id"), str):
            raise UserError(
                f"{where}: has no raynas seal (written by an older raynas, or by hand); "
                f"refusing to resume from it ({fix})"
            )
        if not hmac.compare_digest(self._state_mac(self.state), seal):
            raise UserError(
                f"{where}: does not match its raynas seal (edited, or not sealed with your "
                f"raynas secret); refusing to resume from it ({fix})"
            )
        outputs = self.state.get("outputs") or {}
        for rel, digest in sorted(outputs.items()):
            path = self.root / rel
            if not path.is_file():
                continue  # written again by the resumed search
            if not hmac.compare_digest(self._output_digest(rel, path), str(digest)):
                raise UserError(
                    f"{path}: does not match its raynas digest (edited after this search "
                    f"wrote it); refusing to resume ({fix}, or restore the file)"
                )

    def search_seal(self) -> Any:
        """What this search's Ray state is signed for: its identity, the counters recorded
        here, and a hook that records each new counter (see :mod:`raynas.tune.guard`)."""
        from raynas.tune.guard import SearchSeal

        return SearchSeal(
            str(self.state.get("search_id", "")),
            {str(k): int(v) for k, v in (self.state.get("guard") or {}).items()},
            record=self._record_counter,
        )

    def _record_counter(self, stage: str, counter: int) -> None:
        self.state.setdefault("guard", {})[stage] = counter
        self.save_state()

    def stage_records(self, stage: str) -> list[dict[str, Any]]:
        """The records of a finished stage (a stage marked done without them is refused)."""
        records = (self.state.get("records") or {}).get(stage)
        if not isinstance(records, list):
            raise UserError(
                f"{self.state_file}: stage {stage} is marked done but has no records; "
                "leave out --resume to start a new search"
            )
        return records

    def stage_done(self, stage: str) -> bool:
        return stage in self.state.get("done", [])

    def mark_running(self, stage: str) -> None:
        """Records the stage now running (what an interrupt marks interrupted)."""
        self.state["running"] = stage
        self.state.pop("interrupted", None)
        self.save_state()

    def mark_interrupted(self, signal_name: str) -> None:
        """Marks the running stage (or the set-up, before any stage) *interrupted*: never done,
        so ``--resume`` runs it again from Ray's saved state and nothing selects from it."""
        earlier = (self.state.get("interrupted") or {}).get("stage")
        stage = self.state.pop("running", None) or earlier or "setup"
        self.state["interrupted"] = {"stage": stage, "signal": signal_name}
        self.save_state()

    def mark_done(self, stage: str, records: list[Any], extra: dict[str, Any]) -> None:
        done = self.state.setdefault("done", [])
        if stage not in done:
            done.append(stage)
        if self.state.get("running") == stage:
            self.state.pop("running")
        if (self.state.get("interrupted") or {}).get("stage") == stage:
            self.state.pop("interrupted")
        self.state.setdefault("records", {})[stage] = [asdict(r) for r in records]
        self.state.setdefault("selection", {})[stage] = extra
        self.save_state()

    def write_table(self, stage: str, rows: list[dict[str, Any]]) -> Path:
        frame = pd.DataFrame(rows)
        return atomic_write(self.root / f"{stage}.csv", lambda tmp: frame.to_csv(tmp, index=False))

    def write_architecture(self, name: str, arch_json: str) -> Path:
        """Writes ``architectures/<name>.json`` and its picture ``architectures/<name>.png``."""
        path = atomic_write(self.root / "architectures" / f"{slug(name)}.json", arch_json)
        self.seal_output(path)
        from raynas.nets.drawing import save_architecture_png

        try:
            atomic_write(
                path.with_suffix(".png"),
                lambda tmp: save_architecture_png(arch_json, tmp, name=name),
            )
        except OSError:  # a full disk is the run's error, not a missing picture
            raise
        except Exception as exc:  # noqa: BLE001 - a picture must never stop a run
            logging.getLogger("raynas.search").warning("%s: no picture (%s)", path, exc)
        return path
