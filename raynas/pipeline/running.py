"""Running one stage of a run: the Tuner request built from the preset and the setup, MLflow
and progress callbacks, and the stage table. Shared by ``search``, ``retrain`` and ``baseline``."""

from __future__ import annotations

import logging
from typing import Any

from raynas.pipeline.faults import trial_fault
from raynas.pipeline.setup import SearchSetup

__all__ = ["run_tracked_stage", "stage_request", "stage_time_split"]

logger = logging.getLogger("raynas.search")


def _rows(records: list[Any], labels: dict[str, str]) -> list[dict[str, Any]]:
    rows = []
    for r in records:
        rows.append(
            {
                "trial_id": r.trial_id,
                "trial": r.trial,  # <candidate>#<sample>
                "candidate": labels.get(r.candidate, r.candidate),
                "status": r.status,
                "epochs": r.iterations,
                "best_dice": r.best_dice,
                "last_dice": r.last.get("dice"),
                "params": r.last.get("params"),
                "val_dice": r.last.get("val_dice"),  # retrain: of the best epoch
                "test_dice": r.last.get("test_dice"),  # retrain: held-out cases
                "topology": r.last.get("topology", ""),
                "error": r.error or "",
                **{k: v for k, v in r.config.items() if k != "candidate"},
            }
        )
    return rows


def run_tracked_stage(
    setup: SearchSetup,
    stage: str,
    candidates: dict[str, dict[str, Any]],
    kinds: dict[str, str] | None = None,
) -> list[Any]:
    """Runs one stage as a Tuner (see :func:`raynas.tune.run_stage`) with the MLflow trial
    callback (runs nested under the setup's parent run, tagged ``stage`` and ``kind``) and the
    live progress view, and writes ``<stage>.csv`` in the output folder.

    ``candidates`` maps a key to the candidate's data (``label`` and the stage's fields, e.g.
    ``arch_json`` for retrain); ``kinds`` maps a key to ``searched`` or ``baseline``.
    """
    from raynas.tune import MlflowTrialCallback, ProgressCallback, run_stage

    section = getattr(setup.preset, stage)
    labels = {k: v.get("label", k) for k, v in candidates.items()}
    callbacks = [
        MlflowTrialCallback(
            setup.target,
            experiment_id=setup.experiment_id,
            parent_run_id=setup.parent_run_id,
            stage=stage,
            labels=labels,
            kinds=kinds,
            architectures={k: v["arch_json"] for k, v in candidates.items() if "arch_json" in v},
        ),
        ProgressCallback(stage=stage, epochs=section.epochs, labels=labels),
    ]
    request = stage_request(setup, stage, candidates, callbacks=callbacks)
    logger.info("%s stage: %d candidates", stage, len(candidates))
    records = run_stage(request)
    if (fault := trial_fault(records, setup.folder.root)) is not None:  # a full disk: no result
        raise fault
    setup.folder.write_table(stage, _rows(records, labels))
    from raynas.stages.timing import format_split

    logger.info("%s", format_split(stage, stage_time_split(records)))
    return records


def stage_request(
    setup: SearchSetup,
    stage: str,
    candidates: dict[str, dict[str, Any]],
    *,
    callbacks: list[Any],
    storage_path: Any = None,
) -> Any:
    """The :class:`raynas.tune.StageRequest` of a stage, from the preset and the setup (its
    resources, seed, resume flag and seal; ``storage_path`` defaults to the search's Ray
    folder): what :func:`run_tracked_stage` runs, and what
    :func:`raynas.pipeline.asha.run_coarse_asha` runs without MLflow."""
    from raynas.pipeline.coarse import STAGE_METRIC, coarse_metric
    from raynas.tune import StageRequest

    section = getattr(setup.preset, stage)
    asha = section.asha
    folder = setup.folder
    return StageRequest(
        stage=stage,
        spec=setup.spec(stage),
        candidates=candidates,
        epochs=section.epochs,
        storage_path=storage_path if storage_path is not None else folder.ray_dir,
        cpus_per_trial=setup.cpus_per_trial,
        gpus_per_trial=setup.gpus_per_trial,
        max_concurrent=setup.max_concurrent,
        max_failures=setup.preset.resources.max_failures,
        reuse_actors=setup.preset.resources.reuse_actors,
        asha=(
            {"grace_period": asha.grace_period, "reduction_factor": asha.reduction_factor}
            if asha.enabled
            else None
        ),
        hparams=(
            {k: v.model_dump() for k, v in setup.preset.retrain.hparams.items()}
            if stage == "retrain"
            else {}
        ),
        num_samples=setup.preset.retrain.num_samples if stage == "retrain" else 1,
        seed=setup.seed,
        callbacks=callbacks,
        resume=setup.resume,
        metric=coarse_metric(setup.preset) if stage == "coarse" else STAGE_METRIC,
        # the stage folder's digests bound to the search (none outside a search folder)
        **({"seal": folder.search_seal()} if folder is not None else {}),
    )


def stage_time_split(records: list[Any]) -> dict[str, Any] | None:
    """The stage's time split: train/data/eval/ckpt/other seconds summed over its trials."""
    from raynas.stages.timing import split_of

    return split_of([r.last for r in records])
