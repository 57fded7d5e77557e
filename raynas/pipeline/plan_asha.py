"""The ASHA simulation behind ``raynas search --plan``: a stage's trials on its slots.

:func:`simulate_asha` is pure (no Ray, no torch): trials with random (seeded) fixed scores go
through Ray's asynchronous rule - at each rung a trial stops when its score is below the
``1 - 1/rf`` quantile of those recorded there before it - on ``concurrency`` slots. Each trial
first spends its start time (a worker, its data, its network), then its epochs, each of its own
length (a coarse trial's last epoch holds the evolution; checkpoints fall on some epochs only).

Trials that share CPU cores slow each other down: with ``cores`` given, ``n`` trials running at
once on ``threads`` threads each progress at ``1 / max(1, n * threads / cores)`` of their
calibrated speed (processor sharing; the calibration ran one trial alone). A stage on GPUs
passes ``cores=None``: each trial has its own GPU.

Example:
    >>> sim = simulate_asha(trials=8, concurrency=8, max_t=40, grace_period=5,
    ...                     reduction_factor=3, epoch_s=1.0)
    >>> sim.utilisation < 0.7  # stopped trials free GPUs nothing can use
    True
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["AshaSimulation", "simulate_asha", "rungs", "slowdown"]


def rungs(max_t: int, grace_period: int, reduction_factor: float) -> list[int]:
    """The stage's ASHA rungs below ``max_t`` (:func:`raynas.stages.timing.asha_milestones`).

    >>> rungs(40, 5, 3), rungs(50, 20, 2)
    ([5, 15], [20, 40])
    """
    from raynas.stages.timing import asha_milestones

    return sorted(m for m in asha_milestones(grace_period, reduction_factor, max_t) if m < max_t)


def slowdown(running: int, *, cores: float | None, threads: float) -> float:
    """How much slower each of ``running`` trials goes than one alone (CPU sharing).

    >>> slowdown(2, cores=2, threads=1), slowdown(4, cores=2, threads=1)
    (1.0, 2.0)
    >>> slowdown(8, cores=None, threads=1)
    1.0
    """
    if cores is None or cores <= 0:
        return 1.0
    return max(1.0, running * threads / cores)


@dataclass
class AshaSimulation:
    """Expected figures of one stage's trials on ``concurrency`` slots."""

    trials: int
    concurrency: int
    milestones: list[int]
    wall_s: float  # makespan
    busy_slot_s: float  # sum of the trials' running time (start included)
    utilisation: float  # busy_slot_s / (concurrency * wall_s)
    epochs_run: float  # total epochs over all trials (mean over repeats)
    stopped: float  # trials ASHA stops (mean over repeats)


def _percentile(values: list[float], q: float) -> float:
    """``numpy.nanpercentile`` with linear interpolation (what Ray's ASHA uses)."""
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def _one_run(epochs: list[list[float]], starts: list[float], slots: int, milestones: list[int],
             rf: float, slow: list[float], rng: random.Random) -> tuple[float, float, int, int]:
    """One score order: (wall, busy slot seconds, epochs run, trials stopped)."""
    trials = len(epochs)
    scores = [rng.random() for _ in range(trials)]
    recorded: dict[int, list[float]] = {m: [] for m in milestones}
    queue = list(range(trials))
    # running trial -> [work left in its current segment (seconds alone), epochs done]
    running: dict[int, list[float]] = {}
    began: dict[int, float] = {}
    now = busy = 0.0
    done_epochs = stopped = 0

    def launch() -> None:
        while len(running) < slots and queue:
            i = queue.pop(0)
            began[i] = now
            running[i] = [starts[i], -1]  # the start segment, then epoch 0

    launch()
    while running:
        rate = 1.0 / slow[min(len(running), len(slow)) - 1]
        i = min(running, key=lambda k: (running[k][0], k))
        dt = running[i][0] / rate
        now += dt
        for state in running.values():
            state[0] -= dt * rate
        state = running[i]
        reached = int(state[1]) + 1  # epochs finished once this segment ends
        stop = reached >= len(epochs[i])
        if reached > 0 and not stop and reached in recorded:
            rung = recorded[reached]
            if rung:
                stop = scores[i] < _percentile(rung, (1 - 1 / rf) * 100)
                stopped += int(stop)
            rung.append(scores[i])
        if stop:
            del running[i]
            busy += now - began[i]
            done_epochs += reached
            launch()
        else:
            state[0], state[1] = epochs[i][reached], reached
    return now, busy, done_epochs, stopped


def simulate_asha(
    *,
    trials: int,
    concurrency: int,
    max_t: int,
    grace_period: int | None,
    reduction_factor: float = 3.0,
    epoch_s: float | Sequence[float] | Sequence[Sequence[float]] = 1.0,
    start_s: float | Sequence[float] = 0.0,
    cores: float | None = None,
    threads: float = 1.0,
    sharing: Sequence[float] | None = None,
    repeats: int = 32,
    seed: int = 0,
) -> AshaSimulation:
    """Simulates a stage: ``trials`` trials of ``max_t`` epochs, at most ``concurrency`` at
    once, with ASHA's rungs (``grace_period=None``: no early stopping).

    Args:
        epoch_s: seconds of an epoch (alone on its slot): one figure for every epoch of every
            trial, one per epoch (every trial alike), or one list per trial.
        start_s: seconds before a trial's first epoch (one figure, or one per trial in launch
            order).
        cores, threads: CPU sharing (see the module doc); ``cores=None``: none.
        sharing: measured instead: ``sharing[n - 1]`` is how much slower a trial runs with
            ``n`` running (the last figure holds for more); replaces ``cores``.

    >>> simulate_asha(trials=16, concurrency=8, max_t=10, grace_period=None).utilisation
    1.0
    """
    if trials < 1 or concurrency < 1:
        raise ValueError("trials and concurrency must be >= 1")
    if isinstance(epoch_s, int | float):
        per_trial = [[float(epoch_s)] * max_t for _ in range(trials)]
    elif epoch_s and isinstance(epoch_s[0], int | float):
        per_trial = [[float(e) for e in epoch_s] for _ in range(trials)]  # type: ignore[union-attr]
    else:
        per_trial = [[float(e) for e in row] for row in epoch_s]  # type: ignore[union-attr]
    if len(per_trial) != trials or any(len(row) != max_t for row in per_trial):
        raise ValueError(f"epoch_s must give {max_t} epochs for each of {trials} trials")
    starts = ([float(start_s)] * trials if isinstance(start_s, int | float)
              else [float(s) for s in start_s])  # fmt: skip
    if len(starts) != trials:
        raise ValueError(f"start_s must give one figure per trial ({trials})")
    milestones = [] if grace_period is None else rungs(max_t, grace_period, reduction_factor)
    slow = ([max(1.0, float(f)) for f in sharing] if sharing else
            [slowdown(n, cores=cores, threads=threads) for n in range(1, concurrency + 1)])
    rng = random.Random(seed)
    runs = [
        _one_run(per_trial, starts, concurrency, milestones, reduction_factor, slow, rng)
        for _ in range(repeats if milestones else 1)
    ]  # fmt: skip
    wall = statistics.fmean(r[0] for r in runs)
    busy = statistics.fmean(r[1] for r in runs)
    util = statistics.fmean(r[1] / (concurrency * r[0]) if r[0] > 0 else 1.0 for r in runs)
    return AshaSimulation(
        trials=trials, concurrency=concurrency, milestones=milestones, wall_s=wall,
        busy_slot_s=busy, utilisation=round(util, 4),
        epochs_run=statistics.fmean(r[2] for r in runs),
        stopped=statistics.fmean(r[3] for r in runs),
    )  # fmt: skip
