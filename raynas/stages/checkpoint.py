"""A program's checkpoint folder: ``state.pt``, its artifacts and ``metrics.json``.

``state.pt`` holds the program's :meth:`~raynas.stages.StageProgram.state_dict`: weights,
optimisers, scheduler, every RNG, the precision it ran with and its ``GradScaler`` states
(``scalers``, fp16 only). :func:`read_state` loads it back with ``weights_only=True``.

Ray-free, so the trainable (:mod:`raynas.tune.trainables`) and the benchmarks write the same
files. :func:`write_checkpoint` times itself and books the seconds into the epoch's metrics
(``time_ckpt_s``) before ``metrics.json`` is written.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch

__all__ = ["STATE_FILE", "read_state", "write_checkpoint"]

STATE_FILE = "state.pt"


def write_checkpoint(
    program: Any, folder: Path | str, metrics: dict[str, Any], *, extra_seconds: float = 0.0
) -> float:
    """Saves ``program``'s state and artifacts into ``folder``, adds the time it took (plus
    ``extra_seconds``, e.g. persisting the previous checkpoint) to ``metrics`` through
    ``program.note_checkpoint``, then writes ``metrics.json``. Returns the seconds booked."""
    folder = Path(folder)
    start = time.perf_counter()
    torch.save(program.state_dict(), folder / STATE_FILE)
    for name, text in program.artifacts().items():
        (folder / name).write_text(text, encoding="utf-8")
    seconds = time.perf_counter() - start + max(0.0, float(extra_seconds))
    program.note_checkpoint(metrics, seconds)
    (folder / "metrics.json").write_text(json.dumps(metrics, default=str))
    return seconds


def read_state(folder: Path | str) -> dict[str, Any]:
    """The program state saved in ``folder`` by :func:`write_checkpoint` (tensors and plain
    containers only: loaded with ``weights_only=True``, onto the CPU).

    Raises:
        FileNotFoundError: ``folder`` holds no ``state.pt``.
    """
    path = Path(folder) / STATE_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no checkpoint state here")
    return torch.load(path, map_location="cpu", weights_only=True)
