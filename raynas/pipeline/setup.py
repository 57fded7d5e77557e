"""Everything a search (or a ``retrain`` / ``baseline`` run) checks and prepares before its first
trial: config, space, dataset, tracking store, output folder, Ray, resources, the worker
pre-flight check, the parent run. :func:`prepare_search` is the search's entry; the validation
steps and :func:`open_run` are shared with :mod:`raynas.pipeline.retrain`."""

from __future__ import annotations

import errno
import json
import logging
import math
import signal
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from raynas.errors import UserError
from raynas.interrupts import active_guard
from raynas.pipeline.outputs import SearchFolder, slug
from raynas.pipeline.preflight import Blame, check_run_options, check_search_values, check_storage

__all__ = [
    "RunOptions",
    "SearchOptions",
    "SearchSetup",
    "baseline_architecture",
    "load_run_preset",
    "open_run",
    "open_run_dataset",
    "preset_blame",
    "prepare_search",
    "resolve_run_target",
    "set_trial_resources",
    "storage_root",
    "validate_search",
]

logger = logging.getLogger("raynas.search")


@dataclass(kw_only=True)
class RunOptions:
    """Options every run command shares (``search``, ``retrain``, ``baseline``)."""

    dataset: str
    data_root: Path | None = None
    gpus: int | None = None
    cpus_per_trial: float | None = None
    preset: str | None = None
    config: Path | None = None
    address: str | None = None
    tracking_uri: str | None = None
    experiment: str | None = None
    storage_path: Path | None = None
    seed: int | None = None
    overrides: list[str] = field(default_factory=list)
    workdir: Path = field(default_factory=Path.cwd)


@dataclass(kw_only=True)
class SearchOptions(RunOptions):
    """The options of ``raynas search`` (see DESIGN.md, "The user's contract")."""

    space: str
    resume: bool = False


@dataclass
class SearchSetup:
    options: RunOptions
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

    def spec(self, stage: str) -> dict[str, Any]:
        """The JSON-able trial spec of a stage (see :class:`raynas.stages.TrialSpec`)."""
        info = self.dataset.info
        return {
            "stage": stage,
            "space": self.space_ref,
            "dataset": self.dataset.ref,  # a built-in name, or a user's folder / datalist path
            # Synthetic data is regenerated (deterministically) on each worker.
            "data_root": None if info.synthetic else str(self.dataset.root),
            "plan": self.dataset.plan_file,  # a user dataset's plan (raynas.data.plan)
            "seed": self.seed,
            "preset": self.preset.model_dump(mode="json"),
            "device": "auto" if self.gpus_per_trial > 0 else "cpu",
            "preprocessed": self.preprocessed,
        }

    def baselines(self) -> dict[str, str]:
        """Architecture JSON of each baseline the preset asks to retrain."""
        dims = self.space.config.spatial_dims
        return {
            f"baseline-{name}": baseline_architecture(
                name, preset=self.preset, dataset=self.dataset, spatial_dims=dims
            ).to_json()
            for name in self.preset.retrain.baselines
        }

    def close(self, *, failed: bool) -> None:
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


def baseline_architecture(name: str, *, preset: Any, dataset: Any, spatial_dims: int) -> Any:
    """The Architecture of baseline ``name`` (unet | unetpp | dynunet) for ``dataset``, at the
    preset's retrain width (DynUNet planned from the target spacing and retrain patch)."""
    from raynas.nets.baselines import dynunet_plan, unet_architecture, unetpp_architecture

    dims = spatial_dims
    info = dataset.info
    channels = {"in_channels": dataset.in_channels, "out_channels": dataset.num_classes}
    if name == "dynunet":
        patch = preset.data.retrain_patch_size or list(info.retrain_patch)
        spacing = tuple(preset.data.spacing or info.target_spacing)
        return dynunet_plan(
            spacing[:dims], tuple(patch)[:dims], base_width=preset.retrain.width, **channels
        )
    if name not in ("unet", "unetpp"):
        raise UserError(f"--model {name}: unknown baseline; valid: unet, unetpp, dynunet")
    make = unet_architecture if name == "unet" else unetpp_architecture
    return make(spatial_dims=dims, width=preset.retrain.width, **channels)


def preprocess_cache(options: RunOptions, preset: Any, dataset: Any) -> Path:
    """Builds (once; later searches reuse it) the resampled, normalised volumes every trial reads:
    ``<storage>/cache/<dataset>-<digest>/`` (see :mod:`raynas.data.preprocess`)."""
    from raynas.data.preprocess import preprocess_dataset

    t0 = time.perf_counter()
    spacing = tuple(preset.data.spacing or dataset.info.target_spacing)
    folder = preprocess_dataset(dataset, spacing=spacing, root=storage_root(options) / "cache")
    logger.info("preprocessed cases: %s (%.1f s)", folder, time.perf_counter() - t0)
    return folder


def _last_active(folder: Path) -> float:
    """When a search folder was last written: ``state.json``'s ``updated`` time (kept through a
    copy), else the file's mtime."""
    state_file = folder / "state.json"
    try:
        updated = json.loads(state_file.read_text()).get("updated")
    except (OSError, ValueError, AttributeError):
        updated = None
    if isinstance(updated, int | float) and not isinstance(updated, bool):
        return float(updated)
    return state_file.stat().st_mtime


def storage_root(options: RunOptions) -> Path:
    """``--storage-path`` (default ``./raynas_runs``), absolute."""
    return Path(options.workdir, options.storage_path or "raynas_runs").expanduser().absolute()


def _folder(options: RunOptions, experiment: str, name: str) -> SearchFolder:
    storage = (options.storage_path or options.workdir / "raynas_runs").absolute()
    base = storage / slug(experiment) / slug(name)
    existing = [base, *base.parent.glob(base.name + "_*")]
    existing = [p for p in existing if (p / "state.json").is_file()]
    if getattr(options, "resume", False):
        if not existing:
            raise UserError(f"--resume: no earlier search found under {base.parent}")
        # the most recent search by time (not by folder name: _10 sorts before _2)
        return SearchFolder(max(existing, key=lambda p: (_last_active(p), p.name)))
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}_{n}")
    return SearchFolder(path)


def _check_resume_fingerprint(folder: SearchFolder, fingerprint: dict[str, Any]) -> None:
    """On ``--resume``: the folder's saved fingerprint must match this run's."""
    from raynas.pipeline.fingerprint import resume_mismatch

    if not folder.state:  # a new folder
        return
    saved = folder.state.get("fingerprint")
    if saved is None:
        logger.warning(
            "--resume: %s has no configuration fingerprint (a search from an older raynas); "
            "cannot check that it used the same preset, space and data",
            folder.root,
        )
        return
    diff = resume_mismatch(saved, fingerprint)
    if diff is not None:
        raise UserError(
            f"--resume: {folder.root} was searched with another configuration: {diff}; "
            "pass the same options, or leave out --resume to start a new search"
        )


def _check_parent_run(target: Any, folder: SearchFolder) -> None:
    """On ``--resume``: the parent run recorded in ``state.json`` is in the store (a store that
    was deleted and recreated, or another ``--tracking-uri``, does not hold it)."""
    from mlflow.exceptions import MlflowException

    from raynas.tracking import client_for

    parent = folder.state["parent_run_id"]
    try:
        client_for(target).get_run(parent)
    except MlflowException:
        raise UserError(
            f"--resume: the MLflow store {target.uri} has no run {parent} (the parent run of "
            f"{folder.root}): put back the store this search used, or give its --tracking-uri"
        ) from None


def set_trial_resources(setup: SearchSetup, options: RunOptions) -> None:
    """The setup's CPUs and GPUs per trial and its concurrency, from the options, the preset and
    the Ray cluster of ``setup.runtime`` (a request the cluster cannot meet: UserError)."""
    runtime = setup.runtime
    cpus = options.cpus_per_trial
    if cpus is None:
        cpus = setup.preset.resources.cpus_per_trial
    if not (math.isfinite(cpus) and cpus > 0):
        raise UserError(f"--cpus-per-trial {cpus}: must be a finite number > 0")
    if cpus > runtime.cpus:
        raise UserError(
            f"--cpus-per-trial {cpus:g}: the Ray cluster has only {runtime.cpus:g} CPUs"
        )
    gpus_per_trial = setup.preset.resources.gpus_per_trial if runtime.gpus > 0 else 0.0
    budget = runtime.gpus if options.gpus is None else min(options.gpus, runtime.gpus)
    if options.gpus is not None and options.gpus > runtime.gpus:
        logger.warning(
            "--gpus %d: the cluster has %g GPUs; using those", options.gpus, runtime.gpus
        )
    if gpus_per_trial > 0 and budget >= gpus_per_trial:
        concurrent = int(math.floor(budget / gpus_per_trial + 1e-9))
    else:
        gpus_per_trial = 0.0  # no GPU: everything runs on CPU
        concurrent = int(max(1, math.floor(runtime.cpus / cpus)))
    setup.cpus_per_trial, setup.gpus_per_trial = float(cpus), float(gpus_per_trial)
    setup.max_concurrent = max(1, concurrent)
    logger.info(
        "resources: %g CPUs, %g GPUs; %g CPU + %g GPU per trial; up to %d trials at once",
        runtime.cpus,
        runtime.gpus,
        cpus,
        gpus_per_trial,
        setup.max_concurrent,
    )


_resources = set_trial_resources  # the name tests imported


def _check_address(address: str | None, timeout: float = 5.0) -> None:
    """Checks ``--address`` before any work starts: for ``ray://HOST:PORT``, that something
    listens there (Ray Client itself retries for ~30 s before it gives up)."""
    if not address or not address.startswith("ray://"):
        return
    hostport = address[len("ray://") :].split("/", 1)[0]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise UserError(f"--address {address}: expected ray://HOST:PORT (e.g. ray://head:10001)")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout) as sock:
            if sock.getsockname() == sock.getpeername():
                # a connect to a free local port of the ephemeral range can meet itself (TCP
                # simultaneous open): nothing listens there
                raise ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise UserError(
            f"--address {address}: cannot connect to Ray (no Ray client server at {hostport}: "
            f"{reason})"
        ) from None


# Overrides that a command's own flag stands for (``raynas retrain --epochs 3``).
_FLAG_KEYS = {"retrain.epochs": "--epochs", "retrain.width": "--width", "seed": "--seed"}


def preset_blame(options: RunOptions, extra_overrides: list[str] | None = None) -> Blame:
    """What set each preset key, for error messages: the last ``--set`` or flag that set it,
    else the preset file (:class:`raynas.pipeline.preflight.Blame`)."""
    from raynas.config.presets import preset_path

    overrides = [*(extra_overrides or []), *options.overrides]
    labels = {}
    for text in extra_overrides or []:
        key, _, value = text.partition("=")
        if key in _FLAG_KEYS:
            labels[text] = f"{_FLAG_KEYS[key]} {value}"
    if options.seed is not None:
        overrides.append(f"seed={options.seed}")
        labels[f"seed={options.seed}"] = f"--seed {options.seed}"
    source = str(preset_path(options.config or options.preset or "default"))
    return Blame(source=source, overrides=overrides, labels=labels)


def load_run_preset(options: RunOptions, extra_overrides: list[str] | None = None) -> Any:
    """Checks the options every run command shares and loads the preset (``--preset`` or
    ``--config``, then ``extra_overrides``, ``--set`` and ``--seed``)."""
    from raynas.config import load_preset

    check_run_options(options)
    if options.config is not None and options.preset is not None:
        raise UserError("--preset and --config: give one, not both")
    _check_address(getattr(options, "address", None))
    who = preset_blame(options, extra_overrides)
    ref = options.config or options.preset or "default"
    return load_preset(ref, list(who.overrides), labels=who.labels)


def open_run_dataset(options: RunOptions, preset: Any, *, validate: str = "full") -> Any:
    """Opens (and by default fully validates) ``--dataset`` / ``--data-root``."""
    from raynas.data import DATASETS, get_dataset_info, open_dataset
    from raynas.data.layouts import is_path_ref

    ref, plan_cache = options.dataset, None
    workdir = getattr(options, "workdir", None) or Path.cwd()  # evaluate's options have none
    data_root = options.data_root
    if data_root is not None:  # absolute: Ray workers run in other working directories
        data_root = Path(workdir, Path(data_root).expanduser())
    if ref not in DATASETS and is_path_ref(ref):  # a user's folder or datalist: planned
        ref = str(Path(workdir, Path(ref).expanduser()))
        plan_cache = plan_cache_dir(options)
    else:
        info = get_dataset_info(ref)
        if not info.synthetic and options.data_root is None:
            raise UserError(
                f"--data-root: required for {info.name} (the {info.task_folder} folder)"
            )
        ref = info.name
    ds = open_dataset(
        ref,
        data_root,
        seed=preset.seed,
        synthetic_cases=preset.data.synthetic_cases,
        limit_cases=preset.data.cases,
        validate=validate,  # shapes, affines, labels, NaN: every case, before any trial starts
        plan_cache=plan_cache,
        # a run command writes the plan once every option has passed (see open_run)
        write_plan=not hasattr(options, "storage_path"),
    )
    if ds.plan_file:
        logger.info("dataset plan: %s", ds.plan_file)
    return ds


def plan_cache_dir(options: Any) -> Path:
    """Where a user dataset's plan is cached: beside the preprocess cache (``<storage>/cache``)
    for the run commands, the raynas cache (``$RAYNAS_CACHE_DIR/plans``) for the others."""
    if hasattr(options, "storage_path"):
        return storage_root(options) / "cache"
    from raynas.data.synthetic import cache_root

    return cache_root() / "plans"


def resolve_run_target(options: RunOptions) -> Any:
    """The MLflow store of ``--tracking-uri`` (default ``./mlflow.db``), checked reachable."""
    from raynas.tracking import check_tracking_reachable, resolve_tracking_uri

    target = resolve_tracking_uri(options.tracking_uri, workdir=options.workdir)
    check_tracking_reachable(target)
    return target


def validate_search(options: SearchOptions) -> tuple[Any, Any, str, Any, Any]:
    """All user input of a search, checked before any work starts (raises UserError with one
    line): ``(preset, space, space_ref, dataset, target)``. ``raynas search --plan`` checks
    with it too."""
    from raynas.spaces import load_stage_space

    preset = load_run_preset(options)
    check_storage(storage_root(options))
    space = load_stage_space(options.space, clusters=preset.coarse.clusters)
    space_path = Path(options.space)
    space_ref = (
        str(space_path.absolute()) if space_path.suffix in (".yaml", ".yml") else options.space
    )
    dataset = open_run_dataset(options, preset)
    check_search_values(preset, space, dataset, preset_blame(options))
    target = resolve_run_target(options)
    return preset, space, space_ref, dataset, target


class _RunLog(logging.FileHandler):
    """``search.log``: a line that cannot be written (a full disk) is dropped, not printed on
    stderr as logging's own traceback; the run's error says what failed."""

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's name
        return


def _log_to_file(folder: SearchFolder) -> logging.Handler:
    handler = _RunLog(folder.root / "search.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("raynas")
    root.setLevel(logging.INFO)
    root.addHandler(handler)
    from raynas.logs import capture_library_logs

    capture_library_logs(handler)  # Ray's and MLflow's own log lines go to search.log too
    return handler


def _log_dataset(target: Any, run_id: str, dataset: Any, preset: Any) -> None:
    """The dataset as an MLflow input of the parent run: name, case digest, fold, test split."""
    from raynas.tracking.inputs import log_dataset_input

    data = preset.data
    split = {"fold": data.fold, "folds": data.folds}
    for key in ("test_fraction", "test_cases"):  # the held-out test split, where the preset has it
        if getattr(data, key, None) is not None:
            split[key] = getattr(data, key)
    info = dataset.info
    try:
        log_dataset_input(
            target, run_id, name=info.name, case_names=[c.name for c in dataset.cases],
            source=f"synthetic:{info.name}" if info.synthetic else str(dataset.root),
            split=split, seed=preset.seed if info.synthetic else None,
        )  # fmt: skip
    except Exception as exc:  # noqa: BLE001 - a missing input must never stop a run
        logger.warning("could not log the dataset as an MLflow input (%s)", exc)


def prepare_search(options: SearchOptions) -> SearchSetup:
    """Validates everything, then starts Ray, checks a worker, and opens the parent run."""
    from raynas.pipeline.fingerprint import search_fingerprint
    from raynas.tune import init_ray, shutdown_ray

    preset, space, space_ref, dataset, target = validate_search(options)
    # a cluster given by --address is joined before anything is written, the preprocess cache
    # included (a wrong address, or a port another program took, leaves nothing behind)
    runtime = init_ray(options.address) if options.address else None
    try:
        # built and verified before the fingerprint, which covers the digests of its files
        cache = preprocess_cache(options, preset, dataset)
        return open_run(
            options,
            preset=preset,
            space=space,
            space_ref=space_ref,
            dataset=dataset,
            target=target,
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


def open_run(
    options: RunOptions,
    *,
    preset: Any,
    space: Any,
    space_ref: str,
    dataset: Any,
    target: Any,
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
    from raynas.pipeline.split import log_split, run_split, write_split
    from raynas.tracking import ensure_experiment, prepare_store, run_tags, start_parent_run
    from raynas.tune import init_ray, preflight_on_worker, shutdown_ray

    split = run_split(dataset, preset)  # DataError (exit 2) before any folder or Ray
    experiment = options.experiment or preset.tracking.experiment
    check_storage(storage_root(options))
    folder = _folder(options, experiment, name)
    resume = getattr(options, "resume", False)
    if resume:
        from raynas.tune.guard import verify_search

        # state.json (records, selections, counters) and the architectures and weights it
        # lists, then Ray's pickles: all before Ray starts or anything is taken from them
        folder.verify()
        verify_search(folder.ray_dir, folder.search_seal())
    if fingerprint is not None:
        _check_resume_fingerprint(folder, fingerprint)
    # a cluster given by --address is joined before anything is written (a wrong address
    # leaves no store and no output folder); a local Ray starts below, once the output folder
    # logs it
    if runtime is None and options.address:
        runtime = init_ray(options.address)  # (prepare_search joins it earlier)
    try:
        # the store created (once, under its lock) or refused before the local Ray starts; a
        # resumed search's parent run must be in it
        target = prepare_store(target, create=not resume)
        if resume and folder.state.get("parent_run_id"):
            _check_parent_run(target, folder)
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
        options=options,
        preset=preset,
        space=space,
        space_ref=space_ref,
        dataset=dataset,
        target=target,
        folder=folder,
        seed=preset.seed,
        experiment=experiment,
        resume=getattr(options, "resume", False),
    )
    setup.log_handler = _log_to_file(folder)
    try:
        logger.info("output folder: %s", folder.root)
        from raynas.data.plan import save_plan

        save_plan(dataset)  # a user dataset's plan.json, beside the preprocess cache
        # before any trial starts, so every trial reads it instead of re-resampling the dataset
        if preprocessed is None:
            preprocessed = preprocess_cache(options, preset, dataset)
        else:
            logger.info("preprocessed cases: %s (verified)", preprocessed)
        setup.preprocessed = str(preprocessed)
        setup.runtime = runtime or init_ray(options.address)
        set_trial_resources(setup, options)
        data_root = None if dataset.info.synthetic else dataset.root
        preflight_on_worker(
            data_root, target.uri, target.artifact_root, cache=setup.preprocessed
        )
        setup.experiment_id = ensure_experiment(target, experiment)
        parent = folder.state.get("parent_run_id")
        if parent is None:
            extra = {k: v for k, v in tags.items() if k != "space"}
            parent = start_parent_run(
                target,
                setup.experiment_id,
                run_name=folder.root.name,
                params=preset.model_dump(mode="json"),
                tags=run_tags(
                    space=tags["space"], dataset=dataset.info.name, seed=preset.seed, extra=extra
                ),
                kind=kind,
            )
            _log_dataset(target, parent, dataset, preset)
            folder.state.update(
                parent_run_id=parent, space=space_ref, dataset=dataset.info.name, seed=preset.seed
            )
            folder.save_state()
            log_split(target, parent, split)
        setup.parent_run_id = parent
    except BaseException as exc:
        guard = active_guard()
        if isinstance(exc, KeyboardInterrupt) and guard is not None:  # Ctrl-C while Ray starts
            folder.mark_interrupted(signal.Signals(guard.signum or 2).name)
            guard.resumable = True  # --resume goes on from here
        setup.close(failed=False)
        raise
    return setup
