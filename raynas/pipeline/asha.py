"""The ``asha`` coarse stage on its own, for benchmarks: :func:`run_coarse_asha`.

It runs the coarse stage exactly as ``raynas search --set coarse.strategy=asha`` does - the same
option checks (:func:`raynas.pipeline.setup.load_run_preset`, the space, the dataset), the same
candidates (:func:`raynas.pipeline.coarse.coarse_candidates`), the same Tuner request
(:func:`raynas.pipeline.running.stage_request`: ASHA's grace period, reduction factor and
``max_t = coarse.epochs``, resources, retries) and the same survivor rule
(:func:`raynas.pipeline.coarse.select_survivors`) - on a local Ray, with no MLflow run and no
search folder. The whole search (``asha`` coarse -> fine -> retrain) is
:func:`raynas.pipeline.run_search` with ``overrides=["coarse.strategy=asha", ...]``.

Example:
    >>> from raynas.pipeline.setup import SearchOptions
    >>> result = run_coarse_asha(SearchOptions(space="c2f_small", dataset="synthetic",
    ...     preset="smoke", overrides=["coarse.asha_samples=4"]),
    ...     storage_path=tmp, num_cpus=2)  # doctest: +SKIP
    >>> [s.topology for s in result.survivors], result.trial_seconds  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["AshaCoarseResult", "AshaTrial", "run_coarse_asha", "trial_seconds"]


@dataclass(frozen=True)
class AshaTrial:
    """One stand-alone coarse trial as the benchmark reads it (validation figures only)."""

    trial: str  # <candidate>#<sample>
    topology: str  # the choice's label (C2F: "0-1-...-0"; Thrifty: "depth=3,width=16")
    choice: dict[str, Any]  # what the fine stage searches on (``choice_json``, parsed)
    val_dice: float  # the trial's best validation Dice (coarse.scoring)
    rank_score: float  # its best coarse_score (coarse.rank_by): what survivors are ranked by
    params: int
    epochs: int  # epochs it ran (fewer than coarse.epochs: stopped by ASHA)
    status: str  # "done" | "stopped" | "failed"
    seconds: float  # Ray's time_total_s of the trial

    @classmethod
    def of(cls, record: Any) -> AshaTrial:
        last = record.last
        choice = last.get("choice_json")
        return cls(
            trial=record.trial,
            topology=str(last.get("topology", record.candidate)),
            choice=json.loads(choice) if choice else {},
            val_dice=float(record.best_dice),
            rank_score=float(last.get("best_rank_score", math.nan)),
            params=int(last.get("params", 0) or 0),
            epochs=int(record.iterations),
            status=str(record.status),
            seconds=float(last.get("time_total_s", 0.0) or 0.0),
        )


@dataclass
class AshaCoarseResult:
    """What :func:`run_coarse_asha` returns."""

    survivors: list[AshaTrial]  # coarse.top_k, best first (the fine stage's inputs)
    trials: list[AshaTrial]  # every trial, in Ray's order
    trial_seconds: float  # summed Ray time_total_s over all trials: the stage's compute cost
    stopped_early: int  # trials ASHA stopped before coarse.epochs
    preset: Any  # the resolved preset (coarse.strategy = asha)
    records: list[Any] = field(default_factory=list, repr=False)  # raynas.tune.TrialRecord
    folder: Path | None = None  # Ray's stage folder (result.json per trial)


def trial_seconds(records: list[Any]) -> float:
    """Summed ``time_total_s`` (Ray's per-trial wall seconds, its setup included) of a stage's
    trial records: the stage's compute cost on its slots."""
    return float(sum(float(r.last.get("time_total_s", 0.0) or 0.0) for r in records))


def run_coarse_asha(
    options: Any, *, num_cpus: int = 2, storage_path: str | Path | None = None
) -> AshaCoarseResult:
    """Runs the ``asha`` coarse stage on a local Ray and returns its survivors and its cost.

    Args:
        options: a :class:`raynas.pipeline.setup.SearchOptions` (``space``, ``dataset``,
            ``data_root``, ``preset`` / ``config``, ``overrides``, ``seed``,
            ``cpus_per_trial``); ``coarse.strategy=asha`` is applied before its overrides, so
            ``coarse.asha_samples``, ``coarse.top_k``, ``coarse.rank_by``, ``coarse.epochs`` and
            ``coarse.asha.*`` may be set there.
        num_cpus: CPUs of the local Ray it starts (a Ray already initialised is used as is).
        storage_path: where Ray's stage folder goes (a new ``coarse-asha-*`` folder inside;
            default: ``options.storage_path``, else a temporary folder).

    Returns:
        :class:`AshaCoarseResult`: ``survivors`` (ranked by the pipeline's
        :func:`~raynas.pipeline.coarse.select_survivors`), every trial with its validation
        Dice, rank score, parameters, epochs and seconds, and ``trial_seconds``, their summed
        Ray ``time_total_s``.

    Raises:
        raynas.errors.UserError: bad options (one line, as ``raynas search`` says it).
        RuntimeError: every trial failed.
    """
    from raynas.pipeline.coarse import coarse_candidates, coarse_score_of, select_survivors
    from raynas.pipeline.preflight import check_search_values
    from raynas.pipeline.running import stage_request
    from raynas.pipeline.setup import (
        SearchSetup,
        _resources,
        load_run_preset,
        open_run_dataset,
        preset_blame,
    )
    from raynas.spaces import load_stage_space
    from raynas.tune import init_ray, run_stage, shutdown_ray

    preset = load_run_preset(options, ["coarse.strategy=asha"])
    space = load_stage_space(options.space, clusters=preset.coarse.clusters)
    space_path = Path(options.space)
    space_ref = (
        str(space_path.absolute()) if space_path.suffix in (".yaml", ".yml") else options.space
    )
    dataset = open_run_dataset(options, preset)
    check_search_values(preset, space, dataset, preset_blame(options, ["coarse.strategy=asha"]))
    root = Path(storage_path or options.storage_path or tempfile.mkdtemp(prefix="raynas-asha-"))
    root.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="coarse-asha-", dir=root))
    setup = SearchSetup(options=options, preset=preset, space=space, space_ref=space_ref,
                        dataset=dataset, target=None, folder=None, seed=preset.seed)  # fmt: skip
    candidates = coarse_candidates(space, preset)
    labels = {k: v["label"] for k, v in candidates.items()}
    runtime = init_ray(None, num_cpus=num_cpus)
    try:
        setup.runtime = runtime
        _resources(setup, options)
        request = stage_request(setup, "coarse", candidates, callbacks=[], storage_path=folder)
        records = run_stage(request)
    finally:
        shutdown_ray(runtime)
    survivors = select_survivors("coarse", records, preset.coarse.top_k, labels, "choice_json",
                                 score=coarse_score_of(preset))  # fmt: skip
    return AshaCoarseResult(
        survivors=[AshaTrial.of(r) for r in survivors],
        trials=[AshaTrial.of(r) for r in records],
        trial_seconds=trial_seconds(records),
        stopped_early=sum(r.status == "stopped" for r in records),
        preset=preset,
        records=records,
        folder=folder / "coarse",
    )
