"""The trial spec of a stage: the JSON-able description every Ray trial of that stage receives
and rebuilds its data and network from (see :class:`raynas.stages.TrialSpec`)."""

from __future__ import annotations

from typing import Any

__all__ = ["trial_spec"]


def trial_spec(setup: Any, stage: str) -> dict[str, Any]:
    """The trial spec of ``stage`` for a run's :class:`raynas.pipeline.setup.SearchSetup`
    (its space reference, dataset, seed, preset, trial GPUs and preprocess cache)."""
    dataset = setup.dataset
    return {
        "stage": stage,
        "space": setup.space_ref,
        "dataset": dataset.ref,  # a built-in name, or a user's folder / datalist path
        # Synthetic data is regenerated (deterministically) on each worker.
        "data_root": None if dataset.info.synthetic else str(dataset.root),
        "plan": dataset.plan_file,  # a user dataset's plan (raynas.data.plan)
        "seed": setup.seed,
        "preset": setup.preset.model_dump(mode="json"),
        "device": "auto" if setup.gpus_per_trial > 0 else "cpu",
        "preprocessed": setup.preprocessed,
    }
