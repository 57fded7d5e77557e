"""What a search (or a ``retrain`` / ``baseline`` run) prepares before its first trial, once its
options are resolved (:mod:`raynas.pipeline.validate`): the output folder, Ray, the trials'
resources, the worker pre-flight check and the MLflow parent run, held in a
:class:`SearchSetup`. :func:`prepare_search` is the search's entry; :func:`open_run` is shared
with :mod:`raynas.pipeline.retrain`.

Each step has its module: :mod:`~raynas.pipeline.folders` (output folder, resume checks),
:mod:`~raynas.pipeline.cluster` (``--address``, trial sizes), :mod:`~raynas.pipeline.cache`
(preprocessed cases), :mod:`~raynas.pipeline.parent_run` (``search.log``, the parent run),
:mod:`~raynas.pipeline.specs` (trial specs), :mod:`~raynas.pipeline.baselines`."""

from __future__ import annotations

import logging
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from raynas.interrupts import active_guard
from raynas.pipeline.cache import preprocess_cache
from raynas.pipeline.folders import check_parent_run, check_resume_fingerprint, find_folder
from raynas.pipeline.options import Resolved
from raynas.pipeline.outputs import SearchFolder
from raynas.pipeline.preflight import check_storage

__all__ = ["SearchSetup", "open_run", "prepare_search"]

logger = logging.getLogger("raynas.search")


@dataclass
class SearchSetup:
    """Everything the stages of one run share: what was resolved, its folder, Ray and MLflow."""

    preset: Any
    space: Any
    space_ref: str
    dataset: Any
    target: Any
    folder: SearchFolder
    seed: int
    runtime: Any = None
    experiment: str = "raynas"
    experiment_id: str = ""
    parent_run_id: str = ""
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    max_concurrent: int = 1
    resume: bool = False
    log_handler: Any = field(default=None, repr=False)
    preprocessed: str | None = None  # the shared preprocessed cache folder (see preprocess_cache)
    cleanups: list[Any] = field(default_factory=list)  # force-exit cleanups of this run

    def close(self, *, failed: bool) -> None:
        """Ends the run's hold on things: the parent run FAILED (when ``failed``), Ray stopped or
        left, the force-exit cleanups and ``search.log`` removed."""
        from raynas.tracking import finish_run
        from raynas.tune import shutdown_ray

        if self.parent_run_id and failed:
            finish_run(self.target, self.parent_run_id, "FAILED")
        if self.runtime is not None:
            shutdown_ray(self.runtime)
        for cleanup in self.cleanups:  # they live as long as the run
            cleanup.remove()
        self.cleanups.clear()
        if (guard := active_guard()) is not None:
            logger.info("force-exit cleanups left: %s", ", ".join(guard.cleanups) or "none")
        if self.log_handler is not None:
            from raynas.logs import release_library_logs

            release_library_logs()
            logging.getLogger("raynas").removeHandler(self.log_handler)
            self.log_handler.close()


def prepare_search(run: Resolved) -> SearchSetup:
    """Starts Ray (joins ``--address`` first), builds the preprocess cache, then opens the run
    (:func:`open_run`) under the search's fingerprint."""
    from raynas.pipeline.fingerprint import search_fingerprint
    from raynas.tune import init_ray, shutdown_ray

    space, preset, dataset = run.space, run.preset, run.dataset
    # a cluster given by --address is joined before anything is written, the preprocess cache
    # included (a wrong address, or a port another program took, leaves nothing behind)
    runtime = init_ray(run.address) if run.address else None
    try:
        # built and verified before the fingerprint, which covers the digests of its files
        cache = preprocess_cache(run.storage, preset, dataset)
        return open_run(
            run,
            name=f"{space.config.name}_{dataset.info.name}_s{preset.seed}",
            tags={"space": space.config.name},
            fingerprint=search_fingerprint(preset=preset, space=space, dataset=dataset,
                                           cache=cache),
            preprocessed=cache,
            runtime=runtime,
        )
    except BaseException:
        if runtime is not None:  # disconnecting twice is harmless
            shutdown_ray(runtime)
        raise


def _open_folder(run: Resolved, name: str, fingerprint: dict[str, Any] | None) -> SearchFolder:
    """The run's folder (not created yet); on ``--resume`` verified (its state, architectures,
    weights and Ray's pickles, before Ray starts or anything is taken from them) and checked
    against ``fingerprint``."""
    check_storage(run.storage)
    folder = find_folder(run.storage, run.experiment, name, resume=run.resume)
    if run.resume:
        from raynas.tune.guard import verify_search

        folder.verify()
        verify_search(folder.ray_dir, folder.search_seal())
    if fingerprint is not None:
        check_resume_fingerprint(folder, fingerprint)
    return folder


def open_run(
    run: Resolved,
    *,
    name: str,
    tags: dict[str, str],
    kind: str = "search",
    fingerprint: dict[str, Any] | None = None,
    preprocessed: Path | None = None,
    runtime: Any = None,
) -> SearchSetup:
    """Creates the output folder ``<storage>/<experiment>/<name>``, starts (or joins) Ray, sizes
    the trials, checks a worker, and opens (or, on ``--resume``, finds) the parent run.

    ``tags`` go on the parent run (at least ``space``); ``kind`` is its ``raynas.kind`` tag
    (``search``, ``retrain`` or ``baseline``). ``fingerprint`` (see
    :mod:`raynas.pipeline.fingerprint`) is saved in ``state.json``; on ``--resume`` a folder
    saved with another one stops the run (UserError naming what differs) before Ray starts.
    ``preprocessed``: the verified preprocess cache folder, built here when not given.
    """
    from raynas.pipeline.cluster import size_trials
    from raynas.pipeline.parent_run import log_to_file, open_parent_run
    from raynas.pipeline.split import run_split, write_split
    from raynas.tracking import ensure_experiment, prepare_store
    from raynas.tune import init_ray, preflight_on_worker, shutdown_ray

    preset, dataset, resume = run.preset, run.dataset, run.resume
    split = run_split(dataset, preset)  # DataError (exit 2) before any folder or Ray
    folder = _open_folder(run, name, fingerprint)
    # a cluster given by --address is joined before anything is written (a wrong address
    # leaves no store and no output folder); a local Ray starts below, once the output folder
    # logs it
    if runtime is None and run.address:
        runtime = init_ray(run.address)  # (prepare_search joins it earlier)
    try:
        # the store created (once, under its lock) or refused before the local Ray starts; a
        # resumed search's parent run must be in it
        target = prepare_store(run.target, create=not resume)
        if resume and folder.state.get("parent_run_id"):
            check_parent_run(target, folder)
        folder.create()
        if fingerprint is not None and folder.state.get("fingerprint") != fingerprint:
            folder.state["fingerprint"] = fingerprint
            folder.save_state()
        write_split(folder.root, split)
    except BaseException:
        if runtime is not None:
            shutdown_ray(runtime)
        raise
    setup = SearchSetup(
        runtime=runtime,
        preset=preset,
        space=run.space,
        space_ref=run.space_ref,
        dataset=dataset,
        target=target,
        folder=folder,
        seed=preset.seed,
        experiment=run.experiment,
        resume=resume,
    )
    setup.log_handler = log_to_file(folder)
    try:
        logger.info("output folder: %s", folder.root)
        from raynas.data.plan import save_plan

        save_plan(dataset)  # a user dataset's plan.json, beside the preprocess cache
        # before any trial starts, so every trial reads it instead of re-resampling the dataset
        if preprocessed is None:
            preprocessed = preprocess_cache(run.storage, preset, dataset)
        else:
            logger.info("preprocessed cases: %s (verified)", preprocessed)
        setup.preprocessed = str(preprocessed)
        setup.runtime = runtime or init_ray(run.address)
        slots = size_trials(setup.runtime, cpus_per_trial=run.cpus_per_trial,
                            gpus_per_trial=preset.resources.gpus_per_trial, gpus=run.gpus)
        setup.cpus_per_trial, setup.gpus_per_trial = slots.cpus_per_trial, slots.gpus_per_trial
        setup.max_concurrent = slots.max_concurrent
        data_root = None if dataset.info.synthetic else dataset.root
        preflight_on_worker(
            data_root, target.uri, target.artifact_root, cache=setup.preprocessed
        )
        setup.experiment_id = ensure_experiment(target, run.experiment)
        setup.parent_run_id = open_parent_run(
            target, setup.experiment_id, folder, preset=preset, dataset=dataset,
            space_ref=run.space_ref, tags=tags, kind=kind, split=split,
        )  # fmt: skip
    except BaseException as exc:
        guard = active_guard()
        if isinstance(exc, KeyboardInterrupt) and guard is not None:  # Ctrl-C while Ray starts
            folder.mark_interrupted(signal.Signals(guard.signum or 2).name)
            guard.resumable = True  # --resume goes on from here
        setup.close(failed=False)
        raise
    return setup
