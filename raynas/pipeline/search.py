"""``raynas search``: coarse -> select -> fine -> select -> retrain -> frontier, one Tuner per
stage. This module only orchestrates: trials run in :mod:`raynas.tune`, tracking goes through
:mod:`raynas.tracking`, and every input is validated before Ray starts."""

from __future__ import annotations

import logging
from typing import Any

from raynas.interrupts import InterruptGuard, active_guard
from raynas.pipeline.coarse import coarse_candidates, coarse_score_of, select_survivors
from raynas.pipeline.faults import run_fault, stop_on_fault
from raynas.pipeline.outputs import slug
from raynas.pipeline.results import SearchResult, rank_records
from raynas.pipeline.running import run_tracked_stage, stage_time_split
from raynas.pipeline.setup import SearchOptions, SearchSetup, prepare_search, storage_root

__all__ = ["SearchOptions", "SearchResult", "run_search", "rank_records"]

logger = logging.getLogger("raynas.search")

_select = select_survivors  # the name tests and benchmarks imported before it moved


def _random_controls(setup: SearchSetup) -> dict[str, str]:
    """The preset's random controls (:mod:`raynas.pipeline.controls`), at the retrain width."""
    from raynas.pipeline.controls import random_controls

    space = setup.space
    keep = getattr(space, "keeps_searched_width", False)
    return random_controls(
        space,
        count=setup.preset.retrain.random_controls,
        search_seed=setup.preset.seed,
        in_channels=setup.dataset.in_channels,
        out_channels=setup.dataset.num_classes,
        width=None if keep else setup.preset.retrain.width,
    )


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
        return [TrialRecord(**r) for r in folder.stage_records(stage)]
    folder.mark_running(stage)
    records = run_tracked_stage(setup, stage, candidates, kinds)
    folder.mark_done(stage, records, {"candidates": candidates})
    return records


def run_search(options: SearchOptions) -> SearchResult:
    """Runs a whole search (or resumes one) and returns its frontier.

    SIGINT / SIGTERM raise :class:`raynas.interrupts.Interrupted` once the running stage is
    marked interrupted, the MLflow runs KILLED and the local Ray stopped (a second signal ends
    the process at once, see :mod:`raynas.interrupts`)."""
    with InterruptGuard() as guard:
        try:
            return _search(options)
        except KeyboardInterrupt:  # SignalReceived, or Ray's own after a signal
            raise guard.interrupted() from None
        except Exception as exc:  # a full disk or a vanished store: one line (exit 1)
            fault = run_fault(exc, storage_root(options))
            if fault is not None and fault is not exc:
                raise fault from None
            raise


def _mark_state_interrupted(setup: SearchSetup, signum: int) -> None:
    """The running stage interrupted in state.json (a local write: always finishes)."""
    import signal

    setup.folder.mark_interrupted(signal.Signals(signum).name)
    if (guard := active_guard()) is not None:
        guard.resumable = True


def _kill_runs(setup: SearchSetup) -> None:
    """The parent and its open runs KILLED (the store may be slow or gone: bounded)."""
    from raynas.tracking import kill_open_runs

    try:
        kill_open_runs(setup.target, setup.experiment_id, setup.parent_run_id)
    except Exception as exc:  # noqa: BLE001 - an unreachable store must not hide the interrupt
        logger.warning("could not mark the MLflow runs KILLED (%s)", " ".join(str(exc).split()))


def _mark_interrupted(setup: SearchSetup, signum: int) -> None:
    """The running stage interrupted in state.json; the parent and its open runs KILLED."""
    import signal

    _mark_state_interrupted(setup, signum)
    _kill_runs(setup)
    logger.info("search interrupted (%s)", signal.Signals(signum).name)


def _search(options: SearchOptions) -> SearchResult:
    from raynas.pipeline.finish import finish_search
    from raynas.tracking import reopen_run

    guard = active_guard()
    setup = prepare_search(options)
    if guard is not None:  # for as long as the search runs (setup.close removes them)
        setup.cleanups += [
            guard.on_force_exit(
                lambda: _mark_state_interrupted(setup, guard.signum or 2),
                name="mark search interrupted",
                finish=True,
            ),
            guard.on_force_exit(lambda: _kill_runs(setup), name="mark runs KILLED"),
        ]
    try:
        if setup.resume:
            reopen_run(setup.target, setup.parent_run_id)  # KILLED by an interrupt
        space = setup.space
        # 1. coarse: one trial per candidate of the space (coarse.strategy supernet), or per
        # sampled choice trained stand-alone (asha; see raynas.pipeline.coarse)
        first = coarse_candidates(space, setup.preset)
        coarse = _stage(setup, "coarse", first)
        labels = {k: v["label"] for k, v in first.items()}
        survivors = select_survivors("coarse", coarse, setup.preset.coarse.top_k, labels,
                                     "choice_json", score=coarse_score_of(setup.preset))

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
        derived = select_survivors("fine", fine, setup.preset.fine.top_k, labels, "arch_json")

        # 3. retrain: derived architectures (+ baselines, + random controls) from scratch at
        # full width, one recipe for all
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
        for name, arch_json in _random_controls(setup).items():  # retrain.random_controls
            setup.folder.write_architecture(name, arch_json)
            retrain_candidates[name] = {"label": name, "arch_json": arch_json}
            kinds[name] = "random"
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
    except KeyboardInterrupt:
        _mark_interrupted(setup, (guard.signum if guard else None) or 2)
        setup.close(failed=False)
        raise
    except BaseException as exc:
        fault = run_fault(exc, setup.folder.root)
        if fault is not None:  # the stage marked interrupted, its runs KILLED, Ray stopped
            stop_on_fault(setup, fault)
            raise fault from None
        setup.close(failed=True)
        raise
