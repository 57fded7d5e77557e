"""``raynas search ... --plan``: what a search would cost, before launching it.

The plan validates everything as :func:`raynas.pipeline.run_search` does (the same preflight:
preset, space, dataset, patch sizes, folds, storage, tracking store), then - without starting
Ray, writing an MLflow run or creating the output folder - gives per stage: trials,
concurrency (GPU slots), epochs, steps, scoring cost, FLOPs per step (:mod:`raynas.nets.costs`,
as ``raynas summary``), and a projected wall time and GPU-hours.

Step time comes from a one-step calibration on the present device (a real forward, backward and
optimizer step of the stage's supernet at the preset's patch, width and batch size on random
input; the median of a few steps after one warm-up) or from ``--assume-step-s`` figures. Scoring
forwards are costed at a third of a training step per batch (forward only). ASHA is simulated by
:func:`simulate_asha` (pure, no Ray): trials with random (seeded) fixed scores through Ray's
asynchronous rule - at each rung a trial stops when its score is below the ``1 - 1/rf`` quantile
of those recorded there before it - on ``concurrency`` slots; the expected GPU-slot utilisation
is the busy slot time over slots x wall time, averaged over ``repeats`` score orders.

Example:
    >>> sim = simulate_asha(trials=8, concurrency=8, max_t=40, grace_period=5,
    ...                     reduction_factor=3, epoch_s=1.0)
    >>> sim.utilisation < 0.7  # stopped trials free GPUs nothing can use
    True
"""

from __future__ import annotations

import heapq
import json
import math
import os
import random
import statistics
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from raynas.errors import UserError

__all__ = ["AshaSimulation", "StagePlan", "SearchPlan", "simulate_asha",
           "make_plan", "format_plan"]

STAGES = ("coarse", "fine", "retrain")
_FORWARD_SHARE = 1.0 / 3.0  # a forward-only batch against a training step (fwd + bwd + update)


def _rungs(max_t: int, grace_period: int, reduction_factor: float) -> list[int]:
    """The stage's ASHA rungs below ``max_t`` (:func:`raynas.stages.timing.asha_milestones`).

    >>> _rungs(40, 5, 3), _rungs(50, 20, 2)
    ([5, 15], [20, 40])
    """
    from raynas.stages.timing import asha_milestones

    return sorted(m for m in asha_milestones(grace_period, reduction_factor, max_t) if m < max_t)


@dataclass
class AshaSimulation:
    """Expected figures of one stage's trials on ``concurrency`` slots."""

    trials: int
    concurrency: int
    milestones: list[int]
    wall_s: float  # makespan
    busy_slot_s: float  # sum of the trials' running time
    utilisation: float  # busy_slot_s / (concurrency * wall_s)
    epochs_run: float  # total epochs over all trials (mean over repeats)
    stopped: float  # trials ASHA stops (mean over repeats)


def _one_run(trials: int, slots: int, max_t: int, milestones: list[int], rf: float,
             epoch_s: float, rng: random.Random) -> tuple[float, float, int, int]:
    scores = [rng.random() for _ in range(trials)]
    recorded: dict[int, list[float]] = {m: [] for m in milestones}
    # a trial's epochs are decided when it reaches each rung, in time order: events are
    # (time, trial, epoch reached)
    free = slots
    queue = list(range(trials))
    events: list[tuple[float, int, int]] = []
    now = 0.0
    busy = 0.0
    epochs = 0
    stopped = 0
    start: dict[int, float] = {}

    def launch(t: float) -> None:
        nonlocal free
        while free > 0 and queue:
            i = queue.pop(0)
            free -= 1
            start[i] = t
            first = milestones[0] if milestones else max_t
            heapq.heappush(events, (t + first * epoch_s, i, first))

    launch(0.0)
    while events:
        now, i, reached = heapq.heappop(events)
        stop = reached >= max_t
        if not stop:
            rung = recorded[reached]
            if len(rung) >= 1:
                cutoff = _percentile(rung, (1 - 1 / rf) * 100)
                stop = scores[i] < cutoff
            rung.append(scores[i])
            if stop:
                stopped += 1
        if stop:
            busy += now - start[i]
            epochs += reached
            free += 1
            launch(now)
        else:
            later = [m for m in milestones if m > reached]
            nxt = later[0] if later else max_t
            heapq.heappush(events, (now + (nxt - reached) * epoch_s, i, nxt))
    return now, busy, epochs, stopped


def _percentile(values: list[float], q: float) -> float:
    """``numpy.nanpercentile`` with linear interpolation (what Ray's ASHA uses)."""
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def simulate_asha(
    *,
    trials: int,
    concurrency: int,
    max_t: int,
    grace_period: int | None,
    reduction_factor: float = 3.0,
    epoch_s: float = 1.0,
    repeats: int = 32,
    seed: int = 0,
) -> AshaSimulation:
    """Simulates a stage: ``trials`` trials of ``max_t`` epochs of ``epoch_s`` seconds, at most
    ``concurrency`` at once, with ASHA's rungs (``grace_period=None``: no early stopping).

    >>> simulate_asha(trials=16, concurrency=8, max_t=10, grace_period=None).utilisation
    1.0
    """
    if trials < 1 or concurrency < 1:
        raise ValueError("trials and concurrency must be >= 1")
    milestones = [] if grace_period is None else _rungs(
        max_t, grace_period, reduction_factor
    )
    rng = random.Random(seed)
    runs = [
        _one_run(trials, concurrency, max_t, milestones, reduction_factor, epoch_s, rng)
        for _ in range(repeats if milestones else 1)
    ]
    wall = statistics.fmean(r[0] for r in runs)
    busy = statistics.fmean(r[1] for r in runs)
    util = statistics.fmean(r[1] / (concurrency * r[0]) for r in runs)
    return AshaSimulation(
        trials=trials, concurrency=concurrency, milestones=milestones, wall_s=wall,
        busy_slot_s=busy, utilisation=round(util, 4),
        epochs_run=statistics.fmean(r[2] for r in runs),
        stopped=statistics.fmean(r[3] for r in runs),
    )  # fmt: skip


@dataclass
class StagePlan:
    stage: str
    trials: int
    concurrency: int
    epochs: int
    steps_per_epoch: int
    steps_per_trial: int  # without early stopping
    scoring: str
    scoring_forwards_per_trial: int  # forward batches of scoring/validation, without stopping
    scoring_patches_per_trial: int  # proxy patches scored (0 for sliding window)
    flops_forward: int  # one sample, forward (MACs, raynas summary's convention)
    flops_per_step: int  # 3 x forward x batch (forward + backward)
    step_s: float
    step_source: str  # "calibrated on DEVICE" | "--assume-step-s"
    epoch_s: float
    asha: dict[str, Any]
    utilisation: float
    wall_h: float
    gpu_hours: float


@dataclass
class SearchPlan:
    space: str
    dataset: str
    preset: str
    gpus: int
    gpus_per_trial: float
    device: str
    stages: dict[str, StagePlan] = field(default_factory=dict)

    @property
    def search_gpu_hours(self) -> float:
        return sum(self.stages[s].gpu_hours for s in ("coarse", "fine") if s in self.stages)

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if k != "stages"}
        out["stages"] = {k: asdict(v) for k, v in self.stages.items()}
        out["coarse_fine_gpu_hours"] = round(self.search_gpu_hours, 3)
        out["total_gpu_hours"] = round(sum(s.gpu_hours for s in self.stages.values()), 3)
        out["total_wall_h"] = round(sum(s.wall_h for s in self.stages.values()), 3)
        return out


def parse_assume_step_s(values: list[str]) -> dict[str, float]:
    """``--assume-step-s 0.4`` (every stage) or ``coarse=0.4`` (repeatable)."""
    out: dict[str, float] = {}
    for text in values:
        stage, sep, value = text.rpartition("=")
        stages = [stage] if sep else list(STAGES)
        if sep and stage not in STAGES:
            raise UserError(f"--assume-step-s {text}: unknown stage {stage!r}; valid: "
                            + ", ".join(STAGES))
        try:
            seconds = float(value)
        except ValueError:
            seconds = float("nan")
        if not (math.isfinite(seconds) and seconds > 0):
            raise UserError(
                f"--assume-step-s {text}: expected seconds > 0 (e.g. 0.4 or coarse=0.4)"
            )
        for s in stages:
            out[s] = seconds
    return out


def _stage_networks(setup: Mapping[str, Any]) -> dict[str, Any]:
    """One network per stage, as its trial builds it (first candidate / first choice)."""
    from raynas.stages.coarse import choice_key

    space, dataset, preset = setup["space"], setup["dataset"], setup["preset"]
    io = {"in_channels": dataset.in_channels, "out_channels": dataset.num_classes}
    candidate = space.coarse_candidates()[0]
    coarse = space.build_coarse_supernet(candidate, width=preset.coarse.width, **io)
    choices = [c if isinstance(c, dict) else {"topology": c} for c in coarse.choices()]
    choice = json.loads(choice_key(choices[0]))
    coarse.set_active(choices[0])
    fine = space.build_fine_supernet(choice, width=preset.fine.width, **io)
    retrain = space.sample_architecture(seed=preset.seed, width=preset.retrain.width, **io)
    from raynas.nets import build_network

    return {"coarse": coarse, "fine": fine, "retrain": build_network(retrain)}


def _calibrate(net: Any, patch: tuple[int, ...], batch: int, in_channels: int, classes: int,
               device: Any, steps: int = 3) -> float:
    """Seconds of one training step (forward, Dice-CE-like loss, backward, SGD step)."""
    import torch

    net = net.to(device).train()
    opt = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=1e-3)
    x = torch.randn(batch, in_channels, *patch, device=device)
    y = torch.randint(0, classes, (batch, *patch), device=device)
    loss_fn = torch.nn.CrossEntropyLoss()
    times = []
    for _ in range(steps + 1):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss_fn(net(x), y).backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times[1:])


def _scoring(stage: str, section: Any, epochs: int, val_cases: int, window_forwards: int,
             batch: int, sw_batch: int) -> tuple[str, int, int]:
    """(scoring, forward batches per trial, proxy patches per trial), without early stopping."""
    scoring = getattr(section, "scoring", "sliding_window")
    every = getattr(section, "eval_every", 1)
    scorings = math.ceil(epochs / every)
    if stage == "coarse":
        scorings *= section.eval_topologies
        scorings += section.population * max(1, section.generations)  # the final evolution
    if scoring == "patches":
        patches = scorings * section.patches_per_case * val_cases
        return scoring, math.ceil(patches / batch), patches
    forwards = scorings * val_cases * math.ceil(window_forwards / sw_batch)
    return scoring, forwards, 0


def _window_forwards(volume: tuple[int, ...], patch: tuple[int, ...], overlap: float) -> int:
    n = 1
    for v, p in zip(volume, patch, strict=False):
        stride = max(1, int(p * (1 - overlap)))
        n *= 1 if v <= p else math.ceil((v - p) / stride) + 1
    return n


def make_plan(options: Any, *, assume_step_s: Mapping[str, float] | None = None) -> SearchPlan:
    """Validates ``options`` as a search does and projects its cost (see the module doc).

    Nothing is written: no output folder, no Ray session, no MLflow run."""
    import torch

    from raynas.nets import model_cost
    from raynas.pipeline.setup import _validate
    from raynas.pipeline.split import run_split
    from raynas.tracking import resolve_tracking_uri

    # the preflight's writability check of a SQLite store creates its artifact folder: a plan
    # leaves no folder behind, so one it created (still empty) goes again
    probe = resolve_tracking_uri(options.tracking_uri, workdir=options.workdir).artifact_root
    fresh = probe is not None and not probe.exists()
    try:
        preset, space, _ref, dataset, _target = _validate(options)
    finally:
        if fresh and probe.is_dir() and not any(probe.iterdir()):
            probe.rmdir()
    split = run_split(dataset, preset)  # the folds / test split check a search makes
    assume = dict(assume_step_s or {})
    gpus = options.gpus if options.gpus is not None else torch.cuda.device_count()
    gpt = preset.resources.gpus_per_trial if gpus > 0 else 0.0
    if gpt > 0 and gpus >= gpt:
        slots = int(math.floor(gpus / gpt + 1e-9))
    else:
        gpt = 0.0
        cpus = options.cpus_per_trial or preset.resources.cpus_per_trial
        slots = max(1, int((os.cpu_count() or 1) // cpus))
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    info = dataset.info
    patch = tuple(preset.data.patch_size or info.search_patch)
    retrain_patch = tuple(preset.data.retrain_patch_size or info.retrain_patch)
    batch = preset.data.batch_size
    train_cases, val_cases = len(split["train"]), len(split["val"])
    nets = _stage_networks({"space": space, "dataset": dataset, "preset": preset})
    volume = tuple(getattr(info, "volume_shape", None) or [2 * p for p in retrain_patch])
    window = _window_forwards(volume, retrain_patch, preset.retrain.sw_overlap)
    coarse_trials = len(space.coarse_candidates())
    fine_trials = min(preset.coarse.top_k, coarse_trials)
    retrain_trials = (
        min(preset.fine.top_k, fine_trials) + len(preset.retrain.baselines)
        + preset.retrain.random_controls
    ) * (preset.retrain.num_samples if preset.retrain.hparams else 1)
    plan = SearchPlan(
        space=space.config.name, dataset=info.name, preset=preset.name, gpus=gpus,
        gpus_per_trial=gpt, device=str(device),
    )  # fmt: skip
    for stage, trials in (("coarse", coarse_trials), ("fine", fine_trials),
                          ("retrain", retrain_trials)):
        section = getattr(preset, stage)
        stage_patch = retrain_patch if stage == "retrain" else patch
        fold = train_cases // 2 if stage == "fine" else train_cases  # fine: weights half
        per_pass = max(1, math.ceil(fold * preset.data.samples_per_case / batch))
        steps = section.steps_per_epoch or per_pass
        flops = model_cost(nets[stage], stage_patch, in_channels=dataset.in_channels,
                           device="cpu").flops
        if stage in assume:
            step_s, source = assume[stage], "--assume-step-s"
        else:
            step_s = _calibrate(nets[stage], stage_patch, batch, dataset.in_channels,
                                dataset.num_classes, device)
            source = f"calibrated on {device.type}"
        scoring, forwards, patches = _scoring(
            stage, section, section.epochs, val_cases, window, batch,
            getattr(section, "sw_batch_size", preset.retrain.sw_batch_size),
        )
        if stage == "fine":  # the second half of fine epochs also steps the architecture
            steps_cost = steps * (1 + (section.epochs - section.warmup_epochs) / section.epochs)
        else:
            steps_cost = steps
        epoch_s = step_s * steps_cost + step_s * _FORWARD_SHARE * forwards / section.epochs
        asha = section.asha
        sim = simulate_asha(
            trials=trials, concurrency=slots, max_t=section.epochs,
            grace_period=asha.grace_period if asha.enabled else None,
            reduction_factor=asha.reduction_factor, epoch_s=epoch_s, seed=preset.seed,
        )  # fmt: skip
        share = gpt if gpt > 0 else 0.0
        plan.stages[stage] = StagePlan(
            stage=stage, trials=trials, concurrency=min(slots, trials), epochs=section.epochs,
            steps_per_epoch=steps, steps_per_trial=steps * section.epochs, scoring=scoring,
            scoring_forwards_per_trial=forwards, scoring_patches_per_trial=patches,
            flops_forward=int(flops), flops_per_step=int(3 * flops * batch),
            step_s=round(step_s, 5), step_source=source, epoch_s=round(epoch_s, 3),
            asha={"milestones": sim.milestones, "grace_period": asha.grace_period,
                  "reduction_factor": asha.reduction_factor, "enabled": asha.enabled,
                  "expected_stopped": round(sim.stopped, 2),
                  "expected_epochs": round(sim.epochs_run, 1)},
            utilisation=sim.utilisation, wall_h=round(sim.wall_s / 3600, 3),
            gpu_hours=round(sim.wall_s * slots * share / 3600, 3),
        )  # fmt: skip
    return plan


def format_plan(plan: SearchPlan) -> str:
    """The plan as text: one block per stage, then the totals."""
    d = plan.to_dict()
    lines = [
        f"plan: {plan.space} on {plan.dataset}, preset {plan.preset}, {plan.gpus} GPU(s), "
        f"{plan.gpus_per_trial:g} GPU per trial (calibration device: {plan.device})"
    ]
    for s in plan.stages.values():
        cost = (f"{s.scoring_patches_per_trial:,} proxy patches" if s.scoring == "patches"
                else f"{s.scoring_forwards_per_trial:,} window forwards")
        lines.append(
            f"  {s.stage:8s} trials {s.trials}, {s.concurrency} at once, {s.epochs} epochs x "
            f"{s.steps_per_epoch} steps ({s.steps_per_trial:,}/trial); scoring {cost}/trial; "
            f"{s.flops_per_step / 1e9:.1f} GFLOPs/step; step {s.step_s:.4f}s ({s.step_source}); "
            f"ASHA rungs {s.asha['milestones']}; GPU-slot utilisation {s.utilisation:.0%}; "
            f"wall {s.wall_h:.2f} h, {s.gpu_hours:.2f} GPU-h"
        )
    lines.append(
        f"  coarse + fine: {d['coarse_fine_gpu_hours']:.2f} GPU-h; all stages: "
        f"{d['total_gpu_hours']:.2f} GPU-h, {d['total_wall_h']:.2f} h wall"
    )
    return "\n".join(lines)


def print_plan(options: Any, *, assume_step_s: list[str], as_json: bool = False,
               json_file: Any = None) -> SearchPlan:
    """``raynas search --plan``: the plan as text (or JSON with ``as_json``), and as JSON in
    ``json_file`` when given."""
    from pathlib import Path

    plan = make_plan(options, assume_step_s=parse_assume_step_s(assume_step_s))
    data = json.dumps(plan.to_dict(), indent=2)
    if json_file is not None:
        path = Path(options.workdir, json_file)
        try:
            path.write_text(data + "\n")
        except OSError as exc:
            raise UserError(f"--plan-json {json_file}: cannot write ({exc.strerror})") from None
    print(data if as_json else format_plan(plan))
    return plan
