"""``raynas search``: coarse -> select -> fine -> select -> retrain -> frontier, one Tuner per
stage. This module only orchestrates: trials run in :mod:`raynas.tune`, tracking goes through
:mod:`raynas.tracking`, and every input is validated before Ray starts."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from raynas.pipeline.outputs import slug
from raynas.pipeline.running import run_tracked_stage, stage_time_split
from raynas.pipeline.setup import RunOptions, SearchSetup, prepare_search

__all__ = ["SearchOptions", "SearchResult", "run_search", "rank_records"]

logger = logging.getLogger("raynas.search")


@dataclass(kw_only=True)
class SearchOptions(RunOptions):
    """The options of ``raynas search`` (see DESIGN.md, "The user's contract")."""

    space: str
    resume: bool = False


@dataclass
class SearchResult:
    folder: Path
    tracking_uri: str
    experiment: str
    parent_run_id: str
    points: list[Any]
    front: list[Any]
    stopped_early: int
    time_split: dict[str, Any] = field(default_factory=dict)  # stage -> split (see stages.timing)


def rank_records(records: list[Any]) -> list[Any]:
    """Ranks trials by best Dice (higher first), ties broken by fewer parameters; failed last."""
    ok = [r for r in records if r.status != "failed" and math.isfinite(r.best_dice)]
    return sorted(ok, key=lambda r: (-r.best_dice, int(r.last.get("params", 0)), r.candidate))


def _select(stage: str, records: list[Any], k: int, labels: dict[str, str]) -> list[Any]:
    ranked = rank_records(records)
    chosen = ranked[:k]
    for i, r in enumerate(ranked):
        verdict = "selected" if r in chosen else "dropped"
        logger.info(
            "%s selection: #%d %s dice=%.4f params=%s status=%s -> %s",
            stage,
            i + 1,
            labels.get(r.candidate, r.candidate),
            r.best_dice,
            r.last.get("params"),
            r.status,
            verdict,
        )
    for r in records:
        if r not in ranked:
            logger.info("%s selection: %s failed (%s) -> dropped", stage, r.candidate, r.error)
    if not chosen:
        raise RuntimeError(f"{stage} stage: every trial failed; see the log and the MLflow runs")
    return chosen


def _stage(
    setup: SearchSetup,
    stage: str,
    candidates: dict[str, dict[str, Any]],
    kinds: dict[str, str] | None = None,
) -> list[Any]:
    """Runs a stage unless a resumed search already finished it."""
    from raynas.tune import TrialRecord

    folder = setup.folder
    if folder.stage_done(stage):
        logger.info("%s stage: finished earlier, skipped", stage)
        return [TrialRecord(**r) for r in folder.state["records"][stage]]
    records = run_tracked_stage(setup, stage, candidates, kinds)
    folder.mark_done(stage, records, {"candidates": candidates})
    return records


def run_search(options: SearchOptions) -> SearchResult:
    """Runs a whole search (or resumes one) and returns its frontier."""
    from raynas.pipeline.finish import finish_search

    setup = prepare_search(options)
    try:
        space = setup.space
        # 1. coarse: one trial per candidate of the space
        coarse_candidates = {
            c.key: {"label": c.key, "params": c.params} for c in space.coarse_candidates()
        }
        coarse = _stage(setup, "coarse", coarse_candidates)
        labels = {k: v["label"] for k, v in coarse_candidates.items()}
        survivors = _select("coarse", coarse, setup.preset.coarse.top_k, labels)

        # 2. fine: one PC-DARTS search per surviving topology
        fine_candidates = {
            f"fine{i}-{slug(r.candidate)}": {
                "label": str(r.last.get("topology", r.candidate)),
                "choice_json": str(r.last["choice_json"]),
            }
            for i, r in enumerate(survivors)
        }
        fine = _stage(setup, "fine", fine_candidates)
        labels = {k: v["label"] for k, v in fine_candidates.items()}
        derived = _select("fine", fine, setup.preset.fine.top_k, labels)

        # 3. retrain: derived architectures (+ baselines) from scratch at full width
        retrain_candidates: dict[str, dict[str, Any]] = {}
        kinds: dict[str, str] = {}
        for i, r in enumerate(derived):
            name = f"searched{i}-{slug(labels.get(r.candidate, r.candidate))}"
            arch_json = str(r.last["arch_json"])
            setup.folder.write_architecture(name, arch_json)
            retrain_candidates[name] = {"label": name, "arch_json": arch_json}
            kinds[name] = "searched"
        for name, arch_json in setup.baselines().items():
            setup.folder.write_architecture(name, arch_json)
            retrain_candidates[name] = {"label": name, "arch_json": arch_json}
            kinds[name] = "baseline"
        retrain = _stage(setup, "retrain", retrain_candidates, kinds)

        # 4. frontier
        records = {"coarse": coarse, "fine": fine, "retrain": retrain}
        from raynas.stages.timing import format_split

        splits = {stage: stage_time_split(recs) for stage, recs in records.items()}
        for stage, split in splits.items():
            logger.info("summary: %s", format_split(stage, split))
        result = finish_search(setup, records, retrain_candidates, kinds)
        result.time_split = {k: v for k, v in splits.items() if v is not None}
        return result
    except BaseException:
        setup.close(failed=True)
        raise
