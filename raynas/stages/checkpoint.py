"""Writing a program's checkpoint folder: ``state.pt``, its artifacts and ``metrics.json``.

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

__all__ = ["STATE_FILE", "write_checkpoint"]

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
