"""What one trial needs to know, as plain JSON-able data, and the objects built from it.

A :class:`TrialSpec` travels inside the Ray trial config (so it must stay small and JSON-able);
:func:`build_trial_data` turns it into a dataset and loaders on whichever worker runs the trial.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["TrialSpec", "TrialData", "build_trial_data", "stage_section"]


@dataclass(frozen=True)
class TrialSpec:
    """Everything a stage program needs; ``preset`` is the resolved preset as a dict.

    Example:
        >>> spec = TrialSpec(stage="coarse", space="c2f_small", dataset="synthetic",
        ...                  data_root=None, seed=0, preset={}, candidate={"cluster": 0})
    """

    stage: str  # "coarse" | "fine" | "retrain"
    space: str  # built-in space name or an absolute path to a space YAML
    dataset: str
    data_root: str | None
    seed: int
    preset: dict[str, Any]
    candidate: dict[str, Any] = field(default_factory=dict)
    device: str = "auto"
    # the search's shared preprocessed cache (raynas.data.preprocess), None = read the NIfTI files
    preprocessed: str | None = None
    # a user dataset's plan.json (raynas.data.plan): its spacing, patches and normalisation
    plan: str | None = None

    @property
    def trial_key(self) -> str:
        """The trial's key: ``candidate["trial"]`` (e.g. ``<candidate>#<n>``), else the
        candidate's ``key``."""
        return str(self.candidate.get("trial") or self.candidate.get("key") or "")

    @property
    def trial_seed(self) -> int:
        """This trial's own seed, derived from the search seed and :attr:`trial_key`."""
        from raynas.engine.seeding import derive_seed

        return derive_seed(self.seed, self.trial_key)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrialSpec:
        return cls(**data)


@dataclass
class TrialData:
    dataset: Any  # raynas.data.MSDDataset
    bundle: Any  # raynas.data.DataBundle
    spatial_dims: int
    roi_size: tuple[int, ...]


def stage_section(spec: TrialSpec) -> Any:
    """The preset's section for this stage (a pydantic model)."""
    from raynas.config import Preset

    preset = Preset.model_validate(spec.preset)
    return preset, getattr(preset, spec.stage)


def build_trial_data(
    spec: TrialSpec, *, spatial_dims: int, retrain: bool = False, pin_memory: bool = False
) -> TrialData:
    """Opens the dataset and builds loaders for a ``spatial_dims``-D network (``pin_memory``:
    for a trial that trains on CUDA); the held-out test cases' loader only with ``retrain`` (a
    search stage never loads their volumes)."""
    from raynas.data import build_loaders, open_dataset

    preset, _ = stage_section(spec)
    ds = open_dataset(
        spec.dataset,
        Path(spec.data_root) if spec.data_root else None,
        seed=spec.seed,
        synthetic_cases=preset.data.synthetic_cases,
        limit_cases=preset.data.cases,
        plan=spec.plan,
    )
    info = ds.info
    patch = preset.data.retrain_patch_size if retrain else preset.data.patch_size
    if patch is None:
        patch = list(info.retrain_patch if retrain else info.search_patch)
    mode = "2d" if spatial_dims == 2 else "3d"
    roi = tuple(patch[:2]) if spatial_dims == 2 else tuple(patch)
    bundle = build_loaders(
        ds,
        mode=mode,
        patch_size=tuple(patch),
        spacing=tuple(preset.data.spacing or info.target_spacing),
        batch_size=preset.data.batch_size,
        samples_per_case=preset.data.samples_per_case,
        cache=preset.data.cache,
        num_workers=preset.data.num_workers,
        folds=preset.data.folds,
        fold=preset.data.fold,
        seed=spec.seed,
        test_fraction=preset.data.test_fraction,
        test_cases=preset.data.test_cases,
        check=False,  # the driver validated the dataset before the search started
        preprocessed=spec.preprocessed,
        with_test=retrain,  # only the retrain stage (and evaluate) scores the test cases
        pin_memory=pin_memory,
    )
    return TrialData(dataset=ds, bundle=bundle, spatial_dims=spatial_dims, roi_size=roi)
