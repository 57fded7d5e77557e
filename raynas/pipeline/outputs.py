"""The output folder of one search: state for ``--resume``, stage tables, architectures, models.

Layout (``<storage>/<experiment>/<space>_<dataset>_s<seed>/``)::

    state.json            stages done (or interrupted), the parent MLflow run, selections,
                          created/updated times, the configuration fingerprint (``--resume``
                          checks it)
    search.log            the log of the search
    ray/                  Ray Tune's experiment folders (one per stage), for Tuner.restore
    coarse.csv fine.csv retrain.csv   one row per trial
    architectures/*.json  every derived architecture (+ its picture, *.png)
    models/*.pt           best weights of each retrained network (state dict) + its JSON
    frontier.csv/.json/.png
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd

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
        self.state: dict[str, Any] = (
            json.loads(self.state_file.read_text()) if self.state_file.is_file() else {}
        )

    def create(self) -> None:
        for sub in ("ray", "architectures", "models"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    @property
    def ray_dir(self) -> Path:
        return self.root / "ray"

    def save_state(self) -> None:
        now = time.time()  # when this search was created / last written (``--resume`` order)
        self.state.setdefault("created", now)
        self.state["updated"] = now
        atomic_write(self.state_file, json.dumps(self.state, indent=1, sort_keys=True))

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
