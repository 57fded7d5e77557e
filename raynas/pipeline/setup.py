"""Everything a search checks and prepares before its first trial: config, space, dataset,
tracking store, output folder, Ray, resources, the worker pre-flight check, the parent run."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from raynas.errors import UserError
from raynas.pipeline.outputs import SearchFolder, slug

if TYPE_CHECKING:
    from raynas.pipeline.search import SearchOptions

__all__ = ["SearchSetup", "prepare_search"]

logger = logging.getLogger("raynas.search")


@dataclass
class SearchSetup:
    options: Any
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

    def spec(self, stage: str) -> dict[str, Any]:
        """The JSON-able trial spec of a stage (see :class:`raynas.stages.TrialSpec`)."""
        info = self.dataset.info
        return {
            "stage": stage,
            "space": self.space_ref,
            "dataset": info.name,
            # Synthetic data is regenerated (deterministically) on each worker.
            "data_root": None if info.synthetic else str(self.dataset.root),
            "seed": self.seed,
            "preset": self.preset.model_dump(mode="json"),
            "device": "auto" if self.gpus_per_trial > 0 else "cpu",
        }

    def baselines(self) -> dict[str, str]:
        """Architecture JSON of each baseline the preset asks to retrain."""
        from raynas.nets.baselines import dynunet_plan, unet_architecture, unetpp_architecture

        dims = self.space.config.spatial_dims
        info = self.dataset.info
        patch = self.preset.data.retrain_patch_size or list(info.retrain_patch)
        spacing = tuple(self.preset.data.spacing or info.target_spacing)
        channels = {
            "in_channels": self.dataset.in_channels,
            "out_channels": self.dataset.num_classes,
        }
        out = {}
        for name in self.preset.retrain.baselines:
            if name == "dynunet":
                arch = dynunet_plan(
                    spacing[:dims],
                    tuple(patch)[:dims],
                    base_width=self.preset.retrain.width,
                    **channels,
                )
            else:
                make = unet_architecture if name == "unet" else unetpp_architecture
                arch = make(spatial_dims=dims, width=self.preset.retrain.width, **channels)
            out[f"baseline-{name}"] = arch.to_json()
        return out

    def close(self, *, failed: bool) -> None:
        from raynas.tracking import finish_run
        from raynas.tune import shutdown_ray

        if self.parent_run_id and failed:
            finish_run(self.target, self.parent_run_id, "FAILED")
        if self.runtime is not None:
            shutdown_ray(self.runtime)
        if self.log_handler is not None:
            logging.getLogger("raynas").removeHandler(self.log_handler)
            self.log_handler.close()


def _folder(options: SearchOptions, experiment: str, space: str, seed: int) -> SearchFolder:
    storage = (options.storage_path or options.workdir / "raynas_runs").absolute()
    base = storage / slug(experiment) / slug(f"{space}_{options.dataset}_s{seed}")
    existing = [base] + sorted(base.parent.glob(base.name + "_*"), key=lambda p: p.stat().st_mtime)
    existing = [p for p in existing if (p / "state.json").is_file()]
    if options.resume:
        if not existing:
            raise UserError(f"--resume: no earlier search found under {base.parent}")
        return SearchFolder(existing[-1])
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}_{n}")
    return SearchFolder(path)


def _resources(setup: SearchSetup, options: SearchOptions) -> None:
    runtime = setup.runtime
    cpus = options.cpus_per_trial or setup.preset.resources.cpus_per_trial
    if cpus <= 0:
        raise UserError("--cpus-per-trial: must be > 0")
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


def _validate(options: SearchOptions) -> tuple[Any, Any, str, Any, Any]:
    """All user input, checked before any work starts (raises UserError with one line)."""
    from raynas.config import load_preset
    from raynas.data import get_dataset_info, open_dataset
    from raynas.spaces import load_space
    from raynas.tracking import check_tracking_reachable, resolve_tracking_uri

    if options.gpus is not None and options.gpus < 0:
        raise UserError(f"--gpus {options.gpus}: must be >= 0")
    if options.seed is not None and options.seed < 0:
        raise UserError(f"--seed {options.seed}: must be >= 0")
    if options.config is not None and options.preset is not None:
        raise UserError("--preset and --config: give one, not both")
    overrides = list(options.overrides)
    if options.seed is not None:
        overrides.append(f"seed={options.seed}")
    preset = load_preset(options.config or options.preset or "default", overrides)
    space = load_space(options.space)
    space_path = Path(options.space)
    space_ref = (
        str(space_path.absolute()) if space_path.suffix in (".yaml", ".yml") else options.space
    )
    info = get_dataset_info(options.dataset)
    if not info.synthetic and options.data_root is None:
        raise UserError(f"--data-root: required for {info.name} (the {info.task_folder} folder)")
    dataset = open_dataset(
        info.name,
        options.data_root,
        seed=preset.seed,
        synthetic_cases=preset.data.synthetic_cases,
        limit_cases=preset.data.cases,
        validate="full",  # shapes, affines, labels, NaN: every case, before any trial starts
    )
    target = resolve_tracking_uri(options.tracking_uri, workdir=options.workdir)
    check_tracking_reachable(target)
    return preset, space, space_ref, dataset, target


def _log_to_file(folder: SearchFolder) -> logging.Handler:
    handler = logging.FileHandler(folder.root / "search.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("raynas")
    root.setLevel(logging.INFO)
    root.addHandler(handler)
    return handler


def prepare_search(options: SearchOptions) -> SearchSetup:
    """Validates everything, then starts Ray, checks a worker, and opens the parent run."""
    from raynas.tracking import ensure_experiment, run_tags, start_parent_run
    from raynas.tune import init_ray, preflight_on_worker

    preset, space, space_ref, dataset, target = _validate(options)
    experiment = options.experiment or preset.tracking.experiment
    folder = _folder(options, experiment, space.config.name, preset.seed)
    folder.create()
    setup = SearchSetup(
        options=options,
        preset=preset,
        space=space,
        space_ref=space_ref,
        dataset=dataset,
        target=target,
        folder=folder,
        seed=preset.seed,
        experiment=experiment,
        resume=options.resume,
    )
    setup.log_handler = _log_to_file(folder)
    try:
        logger.info("search folder: %s", folder.root)
        setup.runtime = init_ray(options.address)
        _resources(setup, options)
        data_root = None if dataset.info.synthetic else dataset.root
        preflight_on_worker(data_root, target.uri, target.artifact_root)
        setup.experiment_id = ensure_experiment(target, experiment)
        parent = folder.state.get("parent_run_id")
        if parent is None:
            parent = start_parent_run(
                target,
                setup.experiment_id,
                run_name=folder.root.name,
                params=preset.model_dump(mode="json"),
                tags=run_tags(space=space.config.name, dataset=dataset.info.name, seed=preset.seed),
            )
            folder.state.update(
                parent_run_id=parent, space=space_ref, dataset=dataset.info.name, seed=preset.seed
            )
            folder.save_state()
        setup.parent_run_id = parent
    except BaseException:
        setup.close(failed=False)
        raise
    return setup
