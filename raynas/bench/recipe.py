"""One seed's stage programs, driven Ray-free exactly as the search's Ray trials drive them.

A :class:`Recipe` scales the ``smoke`` preset to a benchmark's budget (cases, width, epochs,
steps, patch); :class:`Specs` turns it into the :class:`raynas.stages.TrialSpec` of each trial of
one seed. :func:`run_coarse` and :func:`run_fine` run a stage's trials (the pipeline's
candidates, for either ``coarse.strategy``) one after another under the stage's ASHA rule and
return their records; :func:`survivors` picks a stage's ``top_k`` with the pipeline's own rule
(:func:`raynas.pipeline.coarse.select_survivors`, over :mod:`raynas.strategy.selection`);
:func:`train_alone` trains one architecture with the retrain recipe (the retrain stage's
program) and reports its validation Dice, test Dice, parameters and seconds.

Cost is counted in **CPU seconds of the trial's process** (``time.process_time``: torch runs one
thread, data loading runs in-process, ``data.num_workers=0``), not wall seconds: the search and
random search are charged the same for the same work even when other jobs load the machine.

Example:
    >>> r = Recipe(space="c2f_small", dataset="synthetic_hard", cases=6, width=4)
    >>> "retrain.width=4" in r.overrides(3)
    True
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

#: The clock a trial's cost is read from (see the module doc).
COST_CLOCK = "process_time"

__all__ = [
    "Recipe",
    "Specs",
    "StageRecord",
    "coarse_candidates",
    "run_coarse",
    "run_fine",
    "run_stage",
    "survivors",
    "train_alone",
]


@dataclass(frozen=True)
class Recipe:
    """The scaled task and every stage's budget (one recipe for every network retrained)."""

    space: str = "c2f_small"
    dataset: str = "synthetic_hard"
    data_root: str | None = None
    cases: int = 12
    width: int = 8
    supernet_epochs: int = 8
    fine_epochs: int = 6
    epochs: int = 20
    steps: int = 6
    lr: float = 0.01
    patch: tuple[int, int, int] | None = None
    top_k: int = 2
    # "val": the pipeline's top_k; "pareto": selection.top_k_pareto (a parameter-aware pick)
    survivor_rule: str = "val"
    extra: tuple[str, ...] = field(default_factory=tuple)

    def overrides(self, spatial_dims: int) -> list[str]:
        """The ``--set`` overrides of the ``smoke`` preset this recipe stands for."""
        w, s, e = self.width, self.steps, self.fine_epochs
        out = [
            f"data.cases={self.cases}", f"data.synthetic_cases={self.cases}", "data.folds=2",
            "data.batch_size=2", "data.samples_per_case=1", "data.num_workers=0",
            "coarse.optimizer=adamw", f"coarse.lr={self.lr}", "fine.optimizer=adamw",
            f"fine.lr={self.lr}", "retrain.optimizer=adamw", f"retrain.lr={self.lr}",
            f"coarse.width={w}", f"coarse.epochs={self.supernet_epochs}",
            f"coarse.steps_per_epoch={s}", "coarse.eval_topologies=2", "coarse.population=3",
            "coarse.generations=1", f"coarse.top_k={self.top_k}",
            f"fine.width={w}", f"fine.epochs={e}", f"fine.top_k={self.top_k}",
            f"fine.warmup_epochs={max(0, min(e - 1, e // 3))}", f"fine.steps_per_epoch={s}",
            f"retrain.width={w}", f"retrain.epochs={self.epochs}", f"retrain.steps_per_epoch={s}",
        ]  # fmt: skip
        if self.patch:
            patch = list(self.patch) if spatial_dims == 3 else [*self.patch[:2], 1]
            out += [f"data.patch_size={patch}", f"data.retrain_patch_size={patch}"]
        return [*out, *self.extra]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (what a result file's ``config.recipe`` records)."""
        d = asdict(self)
        d["patch"] = list(self.patch) if self.patch else None
        d["extra"] = list(self.extra)
        return d


class Specs:
    """The :class:`raynas.stages.TrialSpec` of every trial of one seed (``smoke`` + recipe).

    Example:
        >>> specs = Specs(Recipe(cases=6), seed=0, spatial_dims=3)  # doctest: +SKIP
        >>> specs("retrain", {"key": "x", "arch_json": "{...}"}).seed  # doctest: +SKIP
        0
    """

    def __init__(self, recipe: Recipe, seed: int, spatial_dims: int,
                 extra: list[str] | None = None) -> None:
        from raynas.config import load_preset

        self.recipe, self.seed = recipe, seed
        overrides = [*recipe.overrides(spatial_dims), f"seed={seed}", *(extra or [])]
        self.preset = load_preset("smoke", overrides).model_dump(mode="json")

    def __call__(self, stage: str, candidate: dict[str, Any]) -> Any:
        from raynas.stages import TrialSpec

        r = self.recipe
        return TrialSpec(stage=stage, space=r.space, dataset=r.dataset, data_root=r.data_root,
                         seed=self.seed, preset=self.preset, candidate=candidate, device="cpu")


@dataclass
class StageRecord:
    """One finished trial as the pipeline's selection sees it (``best_dice``, ``last``)."""

    candidate: str
    best_dice: float
    last: dict[str, Any]
    seconds: float
    status: str = "done"  # "stopped": ASHA stopped it at a rung
    epochs: int = 0
    error: str | None = None

    @property
    def trial(self) -> str:
        return f"{self.candidate}#0"


def _run(program: Any) -> dict[str, Any]:
    """Runs a stage program to its end; its last epoch's metrics."""
    metrics: dict[str, Any] = {}
    while not program.finished:
        metrics = program.run_epoch()
    return metrics


def run_stage(specs: Specs, stage: str, candidates: dict[str, dict[str, Any]], metric: str,
              on_epoch: Callable[[str, Any], None] | None = None) -> list[StageRecord]:
    """A search stage's trials, one after another (one slot), under the stage's ASHA as Ray
    Tune's ``ASHAScheduler`` applies it (``<stage>.asha``: rungs of
    :func:`raynas.stages.timing.asha_milestones`; at a rung a trial whose ``metric`` is below
    the ``1 - 1/reduction_factor`` quantile of the scores recorded there is stopped). Each
    trial's seconds (CPU seconds of this process, see :data:`COST_CLOCK`) include building
    its program; ``on_epoch(key, program)`` after each epoch."""
    import numpy as np

    from raynas.stages import make_program
    from raynas.stages.timing import asha_milestones

    section = specs.preset[stage]
    asha = section.get("asha") or {}
    rf = float(asha.get("reduction_factor", 3.0))
    rungs = (asha_milestones(int(asha.get("grace_period", 1)), rf, int(section["epochs"]))
             if asha.get("enabled", True) else set())
    recorded: dict[int, list[float]] = {}
    out = []
    for key, candidate in candidates.items():
        t0, metrics, stopped = time.process_time(), {}, False
        program = make_program(specs(stage, {"key": key, **candidate}))
        while not program.finished and not stopped:
            metrics = program.run_epoch()
            if on_epoch is not None:
                on_epoch(key, program)
            if program.epoch in rungs and not program.finished:
                value = float(metrics.get(metric, float("nan")))
                seen = recorded.setdefault(program.epoch, [])
                stopped = bool(seen) and value < float(np.nanpercentile(seen, (1 - 1 / rf) * 100))
                seen.append(value)
        last = {**metrics, **({"arch_json": program.arch_json} if stage == "fine" else {})}
        out.append(StageRecord(key, float(metrics["best_dice"]), last, time.process_time() - t0,
                               "stopped" if stopped else "done", int(program.epoch)))
    return out


def coarse_candidates(specs: Specs, space: Any) -> dict[str, dict[str, Any]]:
    """The coarse stage's trials for the preset's ``coarse.strategy`` (the pipeline's)."""
    from raynas.config import Preset
    from raynas.pipeline.coarse import coarse_candidates as of_preset

    return of_preset(space, Preset.model_validate(specs.preset))


def run_coarse(specs: Specs, space: Any) -> list[StageRecord]:
    """The coarse stage: every candidate of ``coarse.strategy`` under ASHA on its metric."""
    from raynas.config import Preset
    from raynas.pipeline.coarse import coarse_metric

    metric = coarse_metric(Preset.model_validate(specs.preset))
    return run_stage(specs, "coarse", coarse_candidates(specs, space), metric)


def run_fine(specs: Specs, coarse: list[StageRecord]) -> list[StageRecord]:
    """One PC-DARTS search per surviving coarse record, keyed as the pipeline keys them."""
    from raynas.pipeline.outputs import slug

    candidates = {f"fine{i}-{slug(r.candidate)}": {
        "label": str(r.last.get("topology", r.candidate)),
        "choice_json": str(r.last["choice_json"])} for i, r in enumerate(coarse)}
    return run_stage(specs, "fine", candidates, "dice")


def survivors(specs: Specs, stage: str, records: list[StageRecord], needs: str,
              rule: str = "val") -> list[StageRecord]:
    """A stage's ``top_k`` survivors by the pipeline's own rule
    (:func:`raynas.pipeline.coarse.select_survivors`: validation Dice, or for the ``asha``
    coarse strategy its best rank score). ``rule="pareto"``: the idea tried instead,
    :func:`raynas.strategy.selection.top_k_pareto` (a parameter-aware pick)."""
    from raynas.config import Preset
    from raynas.pipeline.coarse import coarse_score_of, select_survivors
    from raynas.pipeline.results import candidates
    from raynas.strategy.selection import top_k_pareto

    if rule not in ("val", "pareto"):
        raise ValueError(f"rule must be 'val' or 'pareto'; got {rule!r}")
    preset = Preset.model_validate(specs.preset)
    k = int(specs.preset[stage]["top_k"])
    if rule == "pareto":
        ready = [c for c in candidates(records) if c.ref.last.get(needs)]
        return [c.ref for c in top_k_pareto(ready, k)]
    score = coarse_score_of(preset) if stage == "coarse" else None
    return select_survivors(stage, records, k, {}, needs, score)


def train_alone(specs: Specs, key: str, arch: dict[str, Any] | str,
                trainings: int = 1) -> dict[str, Any]:
    """Trains ``arch`` alone with the retrain recipe, ``trainings`` times (trial keys ``key``,
    ``key#t1``, ...: other trial seeds). The row holds the mean over them (validation Dice of
    the best epoch, test Dice of its weights), the summed seconds and, for 2 or more, each
    training in ``runs``."""
    runs = [_train_once(specs, key if r == 0 else f"{key}#t{r}", arch)
            for r in range(max(1, trainings))]
    if len(runs) == 1:
        return runs[0]
    mean = statistics.fmean
    return {
        "key": key, "arch_json": runs[0]["arch_json"], "params": runs[0]["params"],
        "val_dice": mean(r["val_dice"] for r in runs),
        "test_dice": mean(r["test_dice"] for r in runs),
        "test_dice_sd": statistics.stdev(r["test_dice"] for r in runs),
        "seconds": round(sum(r["seconds"] for r in runs), 2), "runs": runs,
    }  # fmt: skip


def _train_once(specs: Specs, key: str, arch: dict[str, Any] | str) -> dict[str, Any]:
    from raynas.stages import RetrainProgram

    t0 = time.process_time()
    arch_json = arch if isinstance(arch, str) else json.dumps(arch, sort_keys=True)
    program = RetrainProgram(specs("retrain", {"key": key, "label": key, "arch_json": arch_json}))
    metrics = _run(program)
    return {
        "key": key,
        "arch_json": arch_json,
        "params": int(program.params),
        "val_dice": float(metrics.get("val_dice", program.best_dice)),
        "test_dice": float(metrics.get("test_dice", float("nan"))),
        "seconds": round(time.process_time() - t0, 2),
    }
