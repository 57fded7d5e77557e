"""``raynas search ... --plan``: what a search would cost, before launching it.

The plan validates everything as :func:`raynas.pipeline.run_search` does (the same preflight:
preset, space, dataset, patch sizes, folds, storage, tracking store), then - without starting
Ray, writing an MLflow run or creating the output folder - gives per stage: trials,
concurrency, epochs, steps, scoring cost, FLOPs per step (:mod:`raynas.nets.costs`, as
``raynas summary``), and a projected wall time and GPU-hours.

What a trial costs is modelled from what the trials really do (the stage programs in
:mod:`raynas.stages` driven by :mod:`raynas.tune.trainables`):

- a trial starts a Ray worker (fresh for the first wave, reused after: ``reuse_actors``), which
  imports the trainable, then builds its program (dataset, cached loaders, network) and, with
  proxy scoring, its validation patch set;
- an epoch runs ``steps_per_epoch`` steps (or one pass over the fold: ``ceil(cases / batch)``
  batches of ``batch_size x samples_per_case`` patches), fine-stage epochs after warm-up an
  architecture step before each weights step; it scores when
  :meth:`~raynas.stages.base.StageProgram.scoring_due` says so (coarse: ``eval_topologies``
  topologies; its last epoch also the evolution's scorings, bounded by the cluster's size;
  retrain: sliding window every epoch, then the test cases once), and checkpoints when
  :meth:`~raynas.stages.base.StageProgram.wants_checkpoint` says so;
- the unit costs come from :func:`raynas.pipeline.plan_calibrate.calibrate_trial` (the real
  program, the preset's AMP setting, the trial's thread count) or, with ``--assume-step-s``, from
  the assumed step (a scoring forward counts a third of a step per patch; start, checkpoint and
  derivation costs are then left out);
- with ``coarse.strategy: asha`` a coarse trial is one stand-alone network (the first sampled
  choice calibrated, its cost taken for every choice: an approximation, since topologies
  differ in size), ``asha_samples`` trials, one scoring per scoring epoch and no evolution;
- the stage's trials run on ``min(slots, trials)`` slots through ASHA's rungs
  (:func:`raynas.pipeline.plan_asha.simulate_asha`); on CPU, trials that share the cores slow
  each other down: the calibration times the steps and a scoring again while ``concurrency - 1``
  processes train the same trial beside it, and the simulation slows every running trial by
  that factor (linear from 1 alone to the measured factor at full concurrency);
- a fresh Ray worker (the first wave of a stage) pays Ray's own start (``RAY_FRESH_WORKER_S``),
  the trainable's imports and first-use costs (measured in a new interpreter); a reused one
  ``RAY_REUSED_WORKER_S``; both figures are Ray's, from ``shared/notes/ray-mlflow-facts.md``.

GPU-hours are the stage's wall time x the GPUs its concurrent trials hold.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from raynas.pipeline.plan_asha import AshaSimulation, simulate_asha
from raynas.pipeline.plan_calibrate import TrialCost, window_forwards
from raynas.pipeline.plan_format import STAGES, format_plan, parse_assume_step_s

__all__ = ["AshaSimulation", "StagePlan", "SearchPlan", "simulate_asha", "make_plan",
           "format_plan", "parse_assume_step_s", "print_plan", "RAY_FRESH_WORKER_S",
           "RAY_REUSED_WORKER_S"]

_FORWARD_SHARE = 1.0 / 3.0  # a forward-only patch against a training step's patch
# Ray's own per-trial overhead with trivial trials on 2 cores (shared/notes/ray-mlflow-facts.md):
# a fresh worker process per trial, and a reused actor (``reuse_actors``)
RAY_FRESH_WORKER_S = 2.1
RAY_REUSED_WORKER_S = 0.34
_PATCH_EVAL_BATCH = 4  # raynas.engine.evaluate_patches' batch size


@dataclass
class StagePlan:
    stage: str
    trials: int
    concurrency: int
    epochs: int
    steps_per_epoch: int
    patches_per_step: int  # batch_size x samples_per_case
    steps_per_trial: int  # without early stopping
    scoring: str
    scorings_per_trial: int  # scorings (coarse: topologies scored), without early stopping
    scoring_forwards_per_trial: int  # forward batches of scoring, without early stopping
    scoring_patches_per_trial: int  # proxy patches scored (0 for sliding window)
    flops_forward: int  # one sample, forward (MACs, raynas summary's convention)
    flops_per_step: int  # 3 x forward x patches per step (forward + backward)
    step_s: float
    step_source: str  # "calibrated on DEVICE (N thread(s))" | "--assume-step-s"
    costs: dict[str, float]  # the unit costs of the trial (first candidate; see TrialCost)
    sharing: list[float] | None  # measured slow-down with 1, 2, ... trials on the CPU cores
    trial_s: float  # one trial alone, without early stopping (first candidate)
    asha: dict[str, Any]
    utilisation: float
    wall_s: float
    wall_h: float
    gpu_hours: float  # wall x GPUs held by the concurrent trials
    busy_gpu_hours: float  # the trials' own GPU time


@dataclass
class SearchPlan:
    space: str
    dataset: str
    preset: str
    gpus: int
    gpus_per_trial: float
    device: str
    cores: int
    cpus_per_trial: float
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


def _stage_networks(preset: Any, space: Any, dataset: Any) -> dict[str, Any]:
    """One network per stage, as its trial builds it (first candidate / first choice)."""
    from raynas.nets import build_network
    from raynas.stages.coarse import choice_key

    io = {"in_channels": dataset.in_channels, "out_channels": dataset.num_classes}
    if preset.coarse.strategy == "asha":  # the first sampled choice, as its trial builds it
        from raynas.pipeline.coarse import coarse_candidates

        first = next(iter(coarse_candidates(space, preset).values()))
        choices = [json.loads(first["choice_json"])]
        coarse = build_network(space.coarse_architecture(choices[0], width=preset.coarse.width,
                                                         **io))  # fmt: skip
    else:
        candidate = space.coarse_candidates()[0]
        coarse = space.build_coarse_supernet(candidate, width=preset.coarse.width, **io)
        choices = [c if isinstance(c, dict) else {"topology": c} for c in coarse.choices()]
        coarse.set_active(choices[0])
    fine = space.build_fine_supernet(json.loads(choice_key(choices[0])),
                                     width=preset.fine.width, **io)  # fmt: skip
    retrain = space.sample_architecture(seed=preset.seed, width=preset.retrain.width, **io)
    return {"coarse": coarse, "fine": fine, "retrain": build_network(retrain),
            "choice": choices[0], "retrain_arch": retrain}  # fmt: skip


def _due(epoch: int, *, epochs: int, every: int, milestones: set[int]) -> bool:
    """:meth:`StageProgram.scoring_due` / ``wants_checkpoint``'s rule for epoch ``epoch`` (0-)."""
    done = epoch + 1
    return done % every == 0 or done in milestones or done >= epochs


def _scorings(stage: str, section: Any, milestones: set[int], cluster: int) -> list[int]:
    """Scorings per epoch of one trial (coarse: topologies scored, the evolution included)."""
    every = int(getattr(section, "eval_every", 1))
    if stage == "retrain":
        return [1] * section.epochs
    per = min(section.eval_topologies, cluster) if stage == "coarse" else 1
    out = [per if e == 0 or _due(e, epochs=section.epochs, every=every, milestones=milestones)
           else 0 for e in range(section.epochs)]  # fmt: skip
    if stage == "coarse":  # CoarseProgram._evolve: new scores only, at most the cluster's rest
        pop = section.population
        budget = max(0, pop - per) + section.generations * max(1, pop // 2)
        out[-1] += min(budget, cluster - per)
    return out


def _epochs(stage: str, section: Any, cost: TrialCost, milestones: set[int],
            cluster: int) -> list[float]:
    """Seconds of each epoch of one trial alone on its slot."""
    every = int(getattr(section, "checkpoint_every", 1))
    warmup = getattr(section, "warmup_epochs", section.epochs)
    out = []
    for e, scorings in enumerate(_scorings(stage, section, milestones, cluster)):
        step = cost.arch_step_s if stage == "fine" and e >= warmup else cost.step_s
        ckpt = _due(e, epochs=section.epochs, every=every, milestones=milestones)
        out.append(cost.steps_per_epoch * step + scorings * cost.score_s + cost.other_s
                   + ckpt * cost.ckpt_s)  # fmt: skip
    out[-1] += cost.test_s
    return out


def _assumed(step_s: float, *, stage: str, section: Any, preset: Any, steps: int,
             val_cases: int, windows: int, patches_per_step: int) -> TrialCost:
    """Unit costs from an assumed step: a scored patch or window costs a third of a trained
    patch; start, checkpoint and derivation are not modelled."""
    per_patch = step_s * _FORWARD_SHARE / patches_per_step
    if getattr(section, "scoring", "sliding_window") == "patches":
        score_s = section.patches_per_case * val_cases * per_patch
    else:
        score_s = val_cases * windows * per_patch
    arch = 2 * step_s if stage == "fine" else step_s
    test = preset.data.test_fraction or 0.0
    return TrialCost(setup_s=0.0, step_s=step_s, arch_step_s=arch, score_s=score_s,
                     patches_s=0.0, other_s=0.0, ckpt_s=0.0,
                     test_s=score_s if stage == "retrain" and test else 0.0,
                     steps_per_epoch=steps, source="--assume-step-s")  # fmt: skip


def _retrain_candidates(preset: Any, fine_trials: int, arch: Any, baselines: dict[str, str]
                        ) -> list[dict[str, Any]]:
    """The retrain trials in launch order (sample-major, :func:`raynas.tune.stage.grid_slots`):
    the searched networks (the stand-in: a random architecture of the space), then baselines."""
    searched = min(preset.fine.top_k, fine_trials)
    searched += int(getattr(preset.retrain, "random_controls", 0) or 0)  # extra random nets
    keys = [{"arch_json": arch.to_json(), "key": "searched"}] * searched
    keys += [{"arch_json": js, "key": name} for name, js in baselines.items()]
    return keys * max(1, int(preset.retrain.num_samples))


def make_plan(options: Any, *, assume_step_s: Mapping[str, float] | None = None) -> SearchPlan:
    """Validates ``options`` as a search does and projects its cost (see the module doc).

    Nothing is written: no output folder, no Ray session, no MLflow run."""
    import torch

    from raynas.data.splits import bilevel_split
    from raynas.nets import model_cost
    from raynas.pipeline.plan_calibrate import calibrate_trial, worker_start_s
    from raynas.pipeline.setup import SearchSetup, validate_search
    from raynas.pipeline.split import run_split
    from raynas.stages.coarse import choice_key
    from raynas.stages.timing import asha_milestones
    from raynas.tracking import resolve_tracking_uri

    # the preflight's writability check of a SQLite store creates its artifact folder: a plan
    # leaves no folder behind, so one it created (still empty) goes again
    probe = resolve_tracking_uri(options.tracking_uri, workdir=options.workdir).artifact_root
    fresh = probe is not None and not probe.exists()
    try:
        preset, space, space_ref, dataset, target = validate_search(options)
    finally:
        if fresh and probe.is_dir() and not any(probe.iterdir()):
            probe.rmdir()
    split = run_split(dataset, preset)  # the folds / test split check a search makes
    assume = dict(assume_step_s or {})
    gpus = options.gpus if options.gpus is not None else torch.cuda.device_count()
    gpt = preset.resources.gpus_per_trial if gpus > 0 else 0.0
    cpus = float(options.cpus_per_trial or preset.resources.cpus_per_trial)
    cores = os.cpu_count() or 1
    if gpt > 0 and gpus >= gpt:
        slots = int(math.floor(gpus / gpt + 1e-9))
    else:
        gpt = 0.0
        slots = max(1, int(cores // cpus))
    device = torch.device("cuda" if gpt > 0 and torch.cuda.is_available() else "cpu")
    setup = SearchSetup(options=options, preset=preset, space=space, space_ref=space_ref,
                        dataset=dataset, target=target, folder=None, seed=preset.seed,
                        gpus_per_trial=gpt)  # fmt: skip
    info = dataset.info
    patch = tuple(preset.data.patch_size or info.search_patch)
    retrain_patch = tuple(preset.data.retrain_patch_size or info.retrain_patch)
    per_step = preset.data.batch_size * preset.data.samples_per_case
    train_cases, val_cases = len(split["train"]), len(split["val"])
    weights_cases = len(bilevel_split(split["train"], seed=preset.seed)[0])
    nets = _stage_networks(preset, space, dataset)
    if preset.coarse.strategy == "asha":  # one stand-alone network per sampled choice
        from raynas.pipeline.coarse import coarse_candidates

        coarse_trials = [{"key": k, "choice_json": v["choice_json"]}
                         for k, v in coarse_candidates(space, preset).items()]  # fmt: skip
        clusters = [1] * len(coarse_trials)  # one scoring per scoring epoch, no evolution
    else:
        coarse_trials = [{"key": c.key} for c in space.coarse_candidates()]
        clusters = [len(c.params.get("topologies", [None])) for c in space.coarse_candidates()]
    fine_trials = min(preset.coarse.top_k, len(coarse_trials))
    retrain = _retrain_candidates(preset, fine_trials, nets["retrain_arch"], setup.baselines())
    trial_candidates = {
        "coarse": coarse_trials,
        "fine": [{"key": "fine", "choice_json": choice_key(nets["choice"])}] * fine_trials,
        "retrain": retrain,
    }
    calibrated = [s for s in STAGES if s not in assume]
    fresh_s = 0.0  # a fresh worker's imports and first-use costs (measured once)
    if calibrated:
        first = calibrated[0]
        fresh_s = worker_start_s(first, setup.spec(first), trial_candidates[first][0],
                                 threads=int(cpus))
    plan = SearchPlan(space=space.config.name, dataset=info.name, preset=preset.name, gpus=gpus,
                      gpus_per_trial=gpt, device=str(device), cores=cores,
                      cpus_per_trial=cpus)  # fmt: skip
    for stage in STAGES:
        section = getattr(preset, stage)
        trials = trial_candidates[stage]
        stage_patch = retrain_patch if stage == "retrain" else patch
        fold = weights_cases if stage == "fine" else train_cases
        steps = section.steps_per_epoch or max(1, math.ceil(fold / preset.data.batch_size))
        asha = section.asha
        milestones = (asha_milestones(asha.grace_period, asha.reduction_factor, section.epochs)
                      if asha.enabled else set())  # fmt: skip
        overlap = preset.retrain.sw_overlap if stage == "retrain" else 0.25
        windows = window_forwards(tuple(2 * p for p in retrain_patch), stage_patch, overlap)
        # one cost per distinct candidate network (coarse: every cluster has its own size but
        # one calibration; retrain: the searched stand-in and each baseline)
        costs: dict[str, TrialCost] = {}
        for cand in trials:
            name = cand["key"] if stage == "retrain" else stage
            if name in costs:
                continue
            if stage in assume:
                costs[name] = _assumed(
                    assume[stage], stage=stage, section=section, preset=preset, steps=steps,
                    val_cases=val_cases, windows=windows, patches_per_step=per_step,
                )  # fmt: skip
            else:  # on CPU, the trials that will share the cores train beside it
                beside = 0 if gpt > 0 else min(slots, len(trials)) - 1
                costs[name] = calibrate_trial(stage, setup.spec(stage), cand, threads=int(cpus),
                                              steps=steps, neighbours=beside)  # fmt: skip
        per_trial, starts = [], []
        for i, cand in enumerate(trials):
            cost = costs[cand["key"] if stage == "retrain" else stage]
            cluster = clusters[i] if stage == "coarse" else 1
            per_trial.append(_epochs(stage, section, cost, milestones, cluster))
            worker = 0.0
            if cost.source != "--assume-step-s":
                worker = RAY_FRESH_WORKER_S + fresh_s if i < slots else RAY_REUSED_WORKER_S
            starts.append(worker + cost.setup_s + cost.patches_s)
        concurrency = min(slots, len(trials))
        sharing = None  # measured slow-down with 1..concurrency trials on the cores
        measured = [c.sharing for c in costs.values() if c.neighbours]
        if measured and concurrency > 1:
            f = sum(measured) / len(measured)
            sharing = [1 + (f - 1) * (n - 1) / (concurrency - 1)
                       for n in range(1, concurrency + 1)]
        sim = simulate_asha(
            trials=len(trials), concurrency=concurrency, max_t=section.epochs,
            grace_period=asha.grace_period if asha.enabled else None,
            reduction_factor=asha.reduction_factor, epoch_s=per_trial, start_s=starts,
            cores=None if gpt > 0 else cores, threads=cpus, sharing=sharing, seed=preset.seed,
        )  # fmt: skip
        first = costs[trials[0]["key"] if stage == "retrain" else stage]
        scorings = _scorings(stage, section, milestones, clusters[0] if stage == "coarse" else 1)
        n_score = sum(scorings)
        if getattr(section, "scoring", "sliding_window") == "patches" and stage != "retrain":
            patches = n_score * section.patches_per_case * val_cases
            forwards, scoring = math.ceil(patches / _PATCH_EVAL_BATCH), "patches"
        else:
            sw_batch = preset.retrain.sw_batch_size if stage == "retrain" else 2
            patches, scoring = 0, "sliding_window"
            forwards = n_score * val_cases * math.ceil(windows / sw_batch)
        flops = model_cost(nets[stage], stage_patch, in_channels=dataset.in_channels,
                           device="cpu").flops
        plan.stages[stage] = StagePlan(
            stage=stage, trials=len(trials), concurrency=concurrency, epochs=section.epochs,
            steps_per_epoch=steps, patches_per_step=per_step,
            steps_per_trial=steps * section.epochs, scoring=scoring,
            scorings_per_trial=n_score, scoring_forwards_per_trial=forwards,
            scoring_patches_per_trial=patches, flops_forward=int(flops),
            flops_per_step=int(3 * flops * per_step), step_s=round(first.step_s, 5),
            step_source=first.source,
            costs={k: round(v, 5) for k, v in asdict(first).items()
                   if isinstance(v, float)},
            sharing=[round(x, 3) for x in sharing] if sharing else None,
            trial_s=round(starts[0] + sum(per_trial[0]), 3),
            asha={"milestones": sim.milestones, "grace_period": asha.grace_period,
                  "reduction_factor": asha.reduction_factor, "enabled": asha.enabled,
                  "expected_stopped": round(sim.stopped, 2),
                  "expected_epochs": round(sim.epochs_run, 1)},
            utilisation=sim.utilisation, wall_s=round(sim.wall_s, 2),
            wall_h=round(sim.wall_s / 3600, 3),
            gpu_hours=round(sim.wall_s * concurrency * gpt / 3600, 3),
            busy_gpu_hours=round(sim.busy_slot_s * gpt / 3600, 3),
        )  # fmt: skip
    return plan


def print_plan(options: Any, *, assume_step_s: list[str], as_json: bool = False,
               json_file: Any = None) -> SearchPlan:
    """``raynas search --plan``: the plan as text (or JSON with ``as_json``), and as JSON in
    ``json_file`` when given."""
    from pathlib import Path

    from raynas.errors import UserError

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
