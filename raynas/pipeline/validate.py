"""Every user input of a run command, checked once before any work starts (a bad one is one
line, exit 2): the shared options, the preset (loaded once), the space, the dataset, the output
root and the tracking store. :func:`resolve_search` turns ``raynas search``'s options into a
:class:`raynas.pipeline.options.Resolved`; ``retrain`` / ``baseline`` and ``evaluate`` use the
steps one by one."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from raynas.errors import UserError
from raynas.pipeline.cluster import check_address
from raynas.pipeline.options import Resolved, RunOptions, SearchOptions, storage_root
from raynas.pipeline.preflight import Blame, check_run_options, check_search_values, check_storage

__all__ = [
    "make_resolved",
    "open_run_dataset",
    "resolve_preset",
    "resolve_search",
    "resolve_target",
    "run_dataset",
    "user_plan_cache",
]

logger = logging.getLogger("raynas.search")

# Overrides that a command's own flag stands for (``raynas retrain --epochs 3``).
_FLAG_KEYS = {"retrain.epochs": "--epochs", "retrain.width": "--width", "seed": "--seed"}


def resolve_preset(options: Any, extra_overrides: list[str] | None = None) -> tuple[Any, Blame]:
    """Checks the options every run command shares and loads the preset once (``--preset`` or
    ``--config``, then ``extra_overrides``, ``--set`` and ``--seed``): ``(preset, blame)``, where
    ``blame`` names what set each key (the last ``--set`` or flag that did, else the file)."""
    from raynas.config import load_preset
    from raynas.config.presets import preset_path

    check_run_options(options)
    if options.config is not None and options.preset is not None:
        raise UserError("--preset and --config: give one, not both")
    check_address(getattr(options, "address", None))  # evaluate's options have none
    overrides = [*(extra_overrides or []), *options.overrides]
    labels = {}
    for text in extra_overrides or []:
        key, _, value = text.partition("=")
        if key in _FLAG_KEYS:
            labels[text] = f"{_FLAG_KEYS[key]} {value}"
    if options.seed is not None:
        overrides.append(f"seed={options.seed}")
        labels[f"seed={options.seed}"] = f"--seed {options.seed}"
    path = preset_path(options.config or options.preset or "default")
    blame = Blame(source=str(path), overrides=overrides, labels=labels)
    return load_preset(path, list(overrides), labels=labels), blame


def user_plan_cache() -> Path:
    """Where a command with no output folder (``evaluate``) caches a user dataset's plan: the
    raynas cache (``$RAYNAS_CACHE_DIR/plans``). The run commands cache it in
    ``<storage>/cache``, beside the preprocess cache."""
    from raynas.data.synthetic import cache_root

    return cache_root() / "plans"


def open_run_dataset(
    ref: str,
    data_root: Path | None,
    *,
    preset: Any,
    workdir: Path,
    plan_cache: Path,
    write_plan: bool,
    validate: str = "full",
) -> Any:
    """Opens (and by default fully validates) ``--dataset`` / ``--data-root``, relative paths
    against ``workdir``. A user's folder or datalist is planned (plan cached in ``plan_cache``;
    written at once with ``write_plan``, else when the run starts, see :func:`open_run`)."""
    from raynas.data import DATASETS, get_dataset_info, open_dataset
    from raynas.data.layouts import is_path_ref

    cache = None
    given_root = data_root
    if data_root is not None:  # absolute: Ray workers run in other working directories
        data_root = Path(workdir, Path(data_root).expanduser())
    if ref not in DATASETS and is_path_ref(ref):  # a user's folder or datalist: planned
        ref = str(Path(workdir, Path(ref).expanduser()))
        cache = plan_cache
    else:
        info = get_dataset_info(ref)
        if not info.synthetic and given_root is None:
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
        plan_cache=cache,
        write_plan=write_plan,
    )
    if ds.plan_file:
        logger.info("dataset plan: %s", ds.plan_file)
    return ds


def resolve_target(tracking_uri: str | None, workdir: Path) -> Any:
    """The MLflow store of ``--tracking-uri`` (default ``./mlflow.db``), checked reachable."""
    from raynas.tracking import check_tracking_reachable, resolve_tracking_uri

    target = resolve_tracking_uri(tracking_uri, workdir=workdir)
    check_tracking_reachable(target)
    return target


def run_dataset(options: RunOptions, preset: Any) -> Any:
    """A run command's dataset: its plan cached under ``<storage>/cache``, written once every
    option has passed (see :func:`raynas.pipeline.setup.open_run`)."""
    return open_run_dataset(
        options.dataset,
        options.data_root,
        preset=preset,
        workdir=options.workdir,
        plan_cache=storage_root(options) / "cache",
        write_plan=False,
    )


def make_resolved(options: RunOptions, preset: Any, blame: Blame, dataset: Any, target: Any,
                  **more: Any) -> Resolved:  # fmt: skip
    """The :class:`Resolved` of a run command whose preset, dataset and store are checked;
    ``more``: its space and space reference."""
    cpus = options.cpus_per_trial
    return Resolved(
        preset=preset,
        blame=blame,
        dataset=dataset,
        target=target,
        storage=storage_root(options),
        experiment=options.experiment or preset.tracking.experiment,
        address=options.address,
        gpus=options.gpus,
        cpus_per_trial=float(preset.resources.cpus_per_trial if cpus is None else cpus),
        resume=bool(getattr(options, "resume", False)),
        **more,
    )


def resolve_search(options: SearchOptions) -> Resolved:
    """All user input of a search, checked before any work starts (raises UserError with one
    line). ``raynas search --plan`` resolves with it too."""
    from raynas.spaces import load_stage_space

    preset, blame = resolve_preset(options)
    check_storage(storage_root(options))
    space = load_stage_space(options.space, clusters=preset.coarse.clusters)
    space_path = Path(options.space)
    space_ref = (
        str(space_path.absolute()) if space_path.suffix in (".yaml", ".yml") else options.space
    )
    dataset = run_dataset(options, preset)
    check_search_values(preset, space, dataset, blame)
    target = resolve_target(options.tracking_uri, options.workdir)
    return make_resolved(options, preset, blame, dataset, target, space=space, space_ref=space_ref)
