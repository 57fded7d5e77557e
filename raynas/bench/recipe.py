"""One seed's stage programs, driven Ray-free exactly as the search's Ray trials drive them.

A :class:`Recipe` scales the ``smoke`` preset to a benchmark's budget (cases, width, epochs,
steps, patch); :class:`Specs` turns it into the :class:`raynas.stages.TrialSpec` of each trial of
one seed. :func:`run_coarse` and :func:`run_fine` run a stage's trials to the end and return
their records; :func:`survivors` picks a stage's ``top_k`` with the one selection module
(:func:`raynas.strategy.selection.top_k`, as ``raynas.pipeline.search`` does);
:func:`train_alone` trains one architecture with the retrain recipe (the retrain stage's
program) and reports its validation Dice, test Dice, parameters and seconds.

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

__all__ = [
    "Recipe",
    "Specs",
    "StageRecord",
    "run_coarse",
    "run_fine",
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
        overrides = [*recipe.overrides(spatial_dims), *(extra or [])]
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

    @property
    def trial(self) -> str:
        return f"{self.candidate}#0"


def _run(program: Any) -> dict[str, Any]:
    """Runs a stage program to its end; its last epoch's metrics."""
    metrics: dict[str, Any] = {}
    while not program.finished:
        metrics = program.run_epoch()
    return metrics


def run_coarse(specs: Specs, keys: list[str],
               on_epoch: Callable[[str, Any], None] | None = None) -> list[StageRecord]:
    """Every coarse candidate in ``keys`` trained to ``coarse.epochs`` (no ASHA: every trial
    runs to the end, the search's cost with no early stop); ``on_epoch(key, program)`` after
    each epoch."""
    from raynas.stages import CoarseProgram

    out = []
    for key in keys:
        t0, metrics = time.perf_counter(), {}
        program = CoarseProgram(specs("coarse", {"key": key}))
        while not program.finished:
            metrics = program.run_epoch()
            if on_epoch is not None:
                on_epoch(key, program)
        out.append(StageRecord(key, float(metrics["best_dice"]), metrics,
                               time.perf_counter() - t0))
    return out


def run_fine(specs: Specs, coarse: list[StageRecord]) -> list[StageRecord]:
    """One PC-DARTS search per surviving coarse record, keyed as the pipeline keys them."""
    from raynas.stages import FineProgram

    out = []
    for i, r in enumerate(coarse):
        key, t0 = f"fine{i}-{r.candidate}", time.perf_counter()
        program = FineProgram(specs("fine", {"key": key,
                                             "choice_json": str(r.last["choice_json"])}))
        metrics = _run(program)
        out.append(StageRecord(key, float(metrics["best_dice"]),
                               {**metrics, "arch_json": program.arch_json},
                               time.perf_counter() - t0))
    return out


def survivors(records: list[StageRecord], k: int, needs: str,
              rule: str = "val") -> list[StageRecord]:
    """A stage's ``top_k`` survivors: :func:`raynas.strategy.selection.top_k` on the trials'
    best validation Dice and parameters (what ``raynas.pipeline.search`` selects; ``rule=
    "pareto"``: :func:`~raynas.strategy.selection.top_k_pareto`, a parameter-aware pick); a
    record without ``needs`` in its last report is never selected."""
    from raynas.strategy.selection import Candidate, top_k, top_k_pareto

    if rule not in ("val", "pareto"):
        raise ValueError(f"rule must be 'val' or 'pareto'; got {rule!r}")
    pick = top_k if rule == "val" else top_k_pareto

    ready = [Candidate(name=r.trial, val_dice=r.best_dice,
                       params=int(r.last.get("params", 0) or 0), ref=r)
             for r in records if r.last.get(needs)]
    return [c.ref for c in pick(ready, k)]


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

    t0 = time.perf_counter()
    arch_json = arch if isinstance(arch, str) else json.dumps(arch, sort_keys=True)
    program = RetrainProgram(specs("retrain", {"key": key, "label": key, "arch_json": arch_json}))
    metrics = _run(program)
    return {
        "key": key,
        "arch_json": arch_json,
        "params": int(program.params),
        "val_dice": float(metrics.get("val_dice", program.best_dice)),
        "test_dice": float(metrics.get("test_dice", float("nan"))),
        "seconds": round(time.perf_counter() - t0, 2),
    }
