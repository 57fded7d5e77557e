"""Where a trial's time goes, epoch by epoch: training steps, data waiting, scoring, checkpoints.

:class:`EpochClock` is filled by a stage program while it runs an epoch (the engine's
``EpochStats`` give the training and data-waiting seconds, the program times its scoring) and by
the driver that writes the checkpoint (``add_checkpoint``). The epoch's metrics then hold
``time_train_s``, ``time_data_s``, ``time_eval_s``, ``time_ckpt_s``, ``time_other_s`` (the rest)
and ``time_epoch_s`` (their sum), plus the trial's running totals ``time_total_<part>_s``,
``total_train_steps`` and ``total_evals``, so the last result of a trial carries its whole split.

Example:
    >>> clock = EpochClock()
    >>> clock.start()
    >>> with clock.timing("eval"):
    ...     pass
    >>> metrics = clock.finish(epoch_seconds=1.0)
    >>> sorted(k for k in metrics if k.startswith("time_") and "total" not in k)[:2]
    ['time_ckpt_s', 'time_data_s']
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

__all__ = ["PARTS", "EpochClock", "asha_milestones", "split_of", "format_split"]

PARTS = ("train", "data", "eval", "ckpt", "other")


def asha_milestones(grace_period: int, reduction_factor: float, max_t: int) -> set[int]:
    """The epochs at which Ray's ``ASHAScheduler`` may stop a trial (its rungs, rounded up to
    the first report at or after them), for ``time_attr="training_iteration"``."""
    grace = max(1, min(int(grace_period), int(max_t)))
    rf = float(reduction_factor)
    if rf <= 1 or max_t < 1:
        return set()
    rungs = int(math.log(max_t / grace) / math.log(rf) + 1)
    return {math.ceil(grace * rf**k - 1e-9) for k in range(rungs)}


class EpochClock:
    """Seconds per part of the current epoch and the trial's totals (see the module doc)."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = {p: 0.0 for p in (*PARTS, "epoch")}
        self.total_steps = 0
        self.total_evals = 0
        self.start()

    def start(self) -> None:
        """Begins an epoch: the per-epoch seconds and counts go back to zero."""
        self.seconds: dict[str, float] = {p: 0.0 for p in PARTS}
        self.steps = 0
        self.evals = 0
        self._open: str | None = None

    def add(self, part: str, seconds: float) -> None:
        if part not in PARTS:
            raise ValueError(f"part must be one of {', '.join(PARTS)}, got {part!r}")
        self.seconds[part] += max(0.0, float(seconds))

    @contextmanager
    def timing(self, part: str, *, count: bool = True) -> Iterator[None]:
        """Times the block as ``part`` (nested blocks are counted once, by the outer one); an
        ``eval`` block counts as one scoring unless ``count`` is False."""
        if self._open is not None:
            yield
            return
        self._open = part
        start = time.perf_counter()
        try:
            yield
        finally:
            self._open = None
            self.add(part, time.perf_counter() - start)
            if part == "eval" and count:
                self.evals += 1

    def finish(self, epoch_seconds: float) -> dict[str, Any]:
        """The epoch's split; ``other`` is what the timed parts do not cover."""
        measured = sum(self.seconds[p] for p in PARTS if p != "other")
        self.seconds["other"] = max(0.0, float(epoch_seconds) - measured)
        epoch = measured + self.seconds["other"]
        for part in PARTS:
            self.totals[part] += self.seconds[part]
        self.totals["epoch"] += epoch
        self.total_steps += self.steps
        self.total_evals += self.evals
        out: dict[str, Any] = {f"time_{p}_s": self.seconds[p] for p in PARTS}
        out.update(time_epoch_s=epoch, train_steps=self.steps, evals=self.evals)
        out.update(self._totals())
        return out

    def add_checkpoint(self, metrics: dict[str, Any], seconds: float) -> dict[str, Any]:
        """Books ``seconds`` of checkpointing into the epoch's ``metrics`` and the totals."""
        seconds = max(0.0, float(seconds))
        self.totals["ckpt"] += seconds
        self.totals["epoch"] += seconds
        metrics["time_ckpt_s"] = float(metrics.get("time_ckpt_s", 0.0)) + seconds
        metrics["time_epoch_s"] = float(metrics.get("time_epoch_s", 0.0)) + seconds
        metrics.update(self._totals())
        return metrics

    def _totals(self) -> dict[str, Any]:
        out: dict[str, Any] = {f"time_total_{p}_s": self.totals[p] for p in (*PARTS, "epoch")}
        out.update(total_train_steps=self.total_steps, total_evals=self.total_evals)
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"totals": dict(self.totals), "steps": self.total_steps, "evals": self.total_evals}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        for part, value in dict(state.get("totals", {})).items():
            if part in self.totals:
                self.totals[part] = float(value)
        self.total_steps = int(state.get("steps", 0))
        self.total_evals = int(state.get("evals", 0))


def split_of(results: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """Sums the trials' totals (their last results); None when none reports a split."""
    rows = [r for r in results if "time_total_epoch_s" in r]
    if not rows:
        return None
    seconds = {p: sum(float(r.get(f"time_total_{p}_s", 0.0)) for r in rows) for p in PARTS}
    total = sum(seconds.values())
    return {
        "trials": len(rows),
        "seconds": seconds,
        "percent": {p: (100.0 * v / total if total else 0.0) for p, v in seconds.items()},
        "steps": sum(int(r.get("total_train_steps", 0)) for r in rows),
        "evals": sum(int(r.get("total_evals", 0)) for r in rows),
    }


def format_split(stage: str, split: Mapping[str, Any] | None) -> str:
    """One log line: ``coarse time: 8 trials, 812 s: train 85% (690 s), data 2% ...``."""
    if split is None:
        return f"{stage} time: no time split reported"
    total = sum(split["seconds"].values())
    parts = ", ".join(
        f"{p} {split['percent'][p]:.0f}% ({split['seconds'][p]:.0f} s)" for p in PARTS
    )
    return (
        f"{stage} time: {split['trials']} trials, {total:.0f} s in epochs: {parts}; "
        f"{split['steps']} steps, {split['evals']} scorings"
    )
