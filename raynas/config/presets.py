"""Run presets (``tune_configs/*.yaml``): pydantic models and the loader.

A preset is inert YAML. It may name another preset in ``inherits:`` (a built-in name or a path
relative to the file); ``--set key.path=value`` overrides are applied last.

Example:
    >>> preset = load_preset("smoke", overrides=["coarse.epochs=2"])
    >>> preset.coarse.epochs
    2
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveFloat,
    PositiveInt,
    StrictInt,
    field_validator,
    model_validator,
)

from raynas.config.loader import apply_overrides, deep_merge, read_yaml, validate_model
from raynas.config.resources import builtin_file, builtin_names
from raynas.errors import ConfigError

__all__ = [
    "SEED_MAX",
    "Strict",
    "Distribution",
    "AshaSection",
    "DataSection",
    "CoarseSection",
    "FineSection",
    "RetrainSection",
    "ResourcesSection",
    "TrackingSection",
    "Preset",
    "load_preset",
    "preset_path",
    "resolve_preset_data",
]


SEED_MAX = 2**32 - 1  # numpy's seed range; torch takes more, every library takes this


class Strict(BaseModel):
    """Base for config sections: unknown keys are errors, numbers are strict (``true`` is no
    number, nor is ``"3"``; an int is a valid float) and finite (no ``.nan`` / ``.inf``)."""

    # a field's docstring (the string literal under it) is its description: the generated
    # reference (docs/reference/presets.md) shows it
    model_config = ConfigDict(
        extra="forbid", frozen=True, strict=True, allow_inf_nan=False, use_attribute_docstrings=True
    )


class Distribution(Strict):
    """A training hyper-parameter that Optuna samples in the retrain stage."""

    type: Literal["loguniform", "uniform", "int", "choice"]
    """How Optuna samples it: `loguniform`, `uniform`, `int` (between `low` and `high`) or `choice`
    (from `values`)."""
    low: float | None = None
    """Lower bound (loguniform: > 0)."""
    high: float | None = None
    """Upper bound (> low)."""
    values: list[float | str] | None = Field(default=None, max_length=1000)
    """The choices of a `choice` distribution."""

    @model_validator(mode="after")
    def _check(self) -> Distribution:
        if self.type == "choice":
            if not self.values:
                raise ValueError("a 'choice' distribution needs a non-empty 'values' list")
        else:
            if self.low is None or self.high is None or not self.low < self.high:
                raise ValueError(f"a '{self.type}' distribution needs low < high")
            if self.type == "loguniform" and self.low <= 0:
                raise ValueError("a 'loguniform' distribution needs low > 0")
        return self


class AshaSection(Strict):
    """ASHA on validation Dice (``training_iteration``; ``max_t`` = the stage's epochs)."""

    enabled: bool = True
    """Whether ASHA stops weak trials of this stage."""
    grace_period: PositiveInt = 1
    """Epochs every trial runs before ASHA may stop it (the first rung)."""
    reduction_factor: float = Field(default=3.0, gt=1.0)
    """ASHA keeps 1 in this many trials at each rung."""


class DataSection(Strict):
    folds: int = Field(default=5, ge=2)
    """Folds of the train/validation split (made from the cases left after the test cases)."""
    fold: int = Field(default=0, ge=0)
    """The fold used for validation (< folds)."""
    # held-out test cases (never seen by search, selection or best-epoch choice): a fraction of
    # the cases (at least one), or an explicit list of case names, which wins
    test_fraction: float = Field(default=0.2, gt=0, lt=1)
    """Share of the cases held out as test cases (at least one), drawn with the search seed; never
    seen by any pick."""
    test_cases: list[str] | None = Field(default=None, min_length=1)
    """Explicit held-out test cases by name; wins over test_fraction."""
    cases: PositiveInt | None = None
    """Use only the first N cases of the dataset (smoke runs)."""
    synthetic_cases: PositiveInt = 16
    """Cases generated for the synthetic datasets."""
    patch_size: list[PositiveInt] | None = None
    """Search-stage patch (voxels per side); default from the dataset (its table or plan)."""
    retrain_patch_size: list[PositiveInt] | None = None
    """Retrain patch; default from the dataset (its table or plan)."""
    spacing: list[PositiveFloat] | None = None
    """Target spacing in mm; default from the dataset (its table or plan)."""
    samples_per_case: PositiveInt = 2
    """Patches cropped from each case of a batch: a step trains on batch_size x samples_per_case
    patches."""
    batch_size: PositiveInt = 2
    """Cases per training batch."""
    cache: Literal["memory", "disk", "none"] = "memory"
    """What each trial keeps of its (preprocessed) cases: in RAM (`memory`), on disk (`disk`) or
    nothing (`none`)."""
    num_workers: int = Field(default=0, ge=0)
    """Data-loader worker processes per trial (0: in the trial's process)."""

    @model_validator(mode="after")
    def _check(self) -> DataSection:
        if self.fold >= self.folds:
            raise ValueError(f"fold must be < folds ({self.folds}), got fold={self.fold}")
        return self


class _Training(Strict):
    epochs: PositiveInt = 10
    """Epochs of a trial of this stage."""
    width: PositiveInt = 16
    """C: the base channel count of the networks this stage trains."""
    optimizer: Literal["sgd", "adamw"] = "sgd"
    """Weight optimizer: `sgd` (Nesterov momentum) or `adamw`."""
    lr: PositiveFloat = 0.01
    """Learning rate of the weights."""
    weight_decay: float = Field(default=3e-5, ge=0)
    """Weight decay of the weights."""
    schedule: Literal["cosine", "poly", "constant"] = "cosine"
    """Learning-rate schedule over the epochs: `cosine`, `poly` or `constant`."""
    # steps per epoch, the loader cycling when the fold is smaller; None = one pass over the fold
    steps_per_epoch: PositiveInt | None = None
    """Training steps per epoch, the loader cycling when the fold is smaller; unset: one pass over
    the fold."""
    checkpoint_every: PositiveInt = 1
    """Epochs between checkpoints (also at every ASHA rung and at the end)."""
    asha: AshaSection = Field(default_factory=AshaSection)


class _Scoring(Strict):
    """How a search stage scores: the cached patch proxy or whole-volume sliding window."""

    scoring: Literal["patches", "sliding_window"] = "patches"
    """How this search stage scores: the cached patch proxy (`patches`) or whole volumes
    (`sliding_window`)."""
    patches_per_case: PositiveInt = 8
    """Validation patches per case of the patch proxy."""
    # share of those patches centred on a background voxel (the rest on foreground, classes in
    # turn), so false positives away from the organs cost score too; 0.5 ranked a supernet's
    # topologies by loss closest to sliding window (benchmarks/results/proxy_agreement.json)
    background_share: float = Field(default=0.5, ge=0, lt=1)
    """Share of the proxy's patches centred on background, so false positives cost (the rest on
    foreground)."""
    eval_every: PositiveInt = 1
    """Score every N epochs (and at every ASHA rung and the last epoch)."""


class CoarseSection(_Training, _Scoring):
    """C2F: one trial per topology cluster; Thrifty: one trial per (depth, width) candidate."""

    eval_topologies: PositiveInt = 4
    """Topologies scored each epoch (half the previous leaders, half new)."""
    # C2F: replaces the space's ``clusters.count`` (one coarse trial per cluster); a multiple
    # of the GPU count keeps every GPU busy
    clusters: PositiveInt | None = None
    """C2F: coarse trials (clusters of topologies); replaces the space's clusters.count. A multiple
    of the GPU count keeps every GPU busy."""
    population: PositiveInt = 8
    """Population of the final evolutionary search over the cluster."""
    generations: int = Field(default=2, ge=0)
    """Generations of that evolutionary search (population / 2 new scores each)."""
    top_k: PositiveInt = 2
    """Coarse survivors that go on to the fine stage (ranked by validation Dice; ties: fewer
    parameters)."""
    # the topology trained at each supernet step: "fair" evens out the updates of the shared
    # cells (raynas.strategy.sampling), "uniform" draws each step's topology independently
    path_sampling: Literal["uniform", "fair"] = "fair"
    """The topology trained at each supernet step: `fair` evens out the updates of the shared
    cells, `uniform` draws it at random."""
    # what orders a cluster's topologies (leaders, evolution, the pick): "loss" = the training
    # loss (Dice + CE) on the scoring patches or volumes, lower is better; "dice" = their Dice.
    # The trial reports the pick's Dice either way.
    rank_by: Literal["loss", "dice"] = "loss"
    """What orders a cluster's topologies: `loss` (Dice + CE on the scoring patches, lower is
    better) or `dice`. The trial reports its pick's Dice either way."""
    # "supernet": one weight-sharing supernet per cluster (C2FNAS); "asha": asha_samples
    # topologies (Thrifty: depth/width choices) of the space, each trained stand-alone as its own
    # Ray trial (coarse op, width and recipe), ASHA stopping the weak ones at its rungs
    strategy: Literal["supernet", "asha"] = "supernet"
    """How the coarse stage scores topologies: `supernet` (one weight-sharing supernet per
    cluster) or `asha` (asha_samples topologies of the space, each trained stand-alone as one Ray
    trial; ASHA stops the weak ones; survivors ranked by rank_by)."""
    asha_samples: PositiveInt = 16
    """Strategy `asha`: distinct topologies (Thrifty: depth/width choices) drawn from the space
    with the search seed, one stand-alone trial each (all of them if the space has fewer)."""


class FineSection(_Training, _Scoring):
    """PC-DARTS: warm-up with frozen architecture, then first-order bi-level updates."""

    epochs: PositiveInt = 50
    """Epochs of a fine (PC-DARTS) trial."""
    warmup_epochs: int = Field(default=15, ge=0)
    """Epochs with the architecture frozen before the bi-level updates (< epochs)."""
    arch_lr: PositiveFloat = 6e-4
    """Learning rate of the architecture weights (Adam)."""
    arch_betas: Annotated[list[float], Field(min_length=2, max_length=2)] = [0.5, 0.999]
    """Adam betas of the architecture weights."""
    arch_weight_decay: float = Field(default=1e-3, ge=0)
    """Weight decay of the architecture weights."""
    top_k: PositiveInt = 2
    """Derived architectures that go on to retraining (best by validation Dice)."""

    @model_validator(mode="after")
    def _check(self) -> FineSection:
        if self.warmup_epochs >= self.epochs:
            raise ValueError(f"warmup_epochs must be < epochs ({self.epochs})")
        return self


class RetrainSection(_Training):
    # epochs of linear learning-rate warm-up before ``schedule``, for every retrained network
    # alike; capped at ``epochs - 1`` (a 2-epoch retrain warms up for 1)
    lr_warmup_epochs: int = Field(default=0, ge=0)
    """Linear learning-rate warm-up before the schedule, the same for every retrained network
    (capped at epochs - 1)."""
    baselines: list[Literal["unet", "unetpp", "dynunet"]] = []
    """Baselines retrained with the same recipe beside the searched networks."""
    # architectures drawn at random from the searched space (seeded by the search seed) and
    # retrained next to the searched ones with the same recipe: did the search beat chance?
    random_controls: StrictInt = Field(default=0, ge=0, le=64)
    """Architectures drawn at random from the searched space (seeded by the search seed) and
    retrained with the same recipe: did the search beat chance?"""
    num_samples: PositiveInt = 1
    """Trials per retrained network (Optuna samples where hparams are declared; sample 0 at the
    centre)."""
    hparams: dict[Literal["lr", "weight_decay", "optimizer"], Distribution] = {}
    """Training hyper-parameters Optuna samples per network (lr, weight_decay, optimizer)."""
    sw_batch_size: PositiveInt = 2
    """Windows per forward pass of sliding-window evaluation."""
    sw_overlap: float = Field(default=0.25, ge=0, lt=1)
    """Overlap of neighbouring sliding windows."""


class ResourcesSection(Strict):
    gpus_per_trial: float = Field(default=1.0, ge=0)
    """GPUs per trial (fractions allowed); 0 on CPU-only machines."""
    cpus_per_trial: PositiveFloat = 1.0
    """CPUs per trial (torch threads follow it)."""
    max_failures: int = Field(default=2, ge=0)
    """Restarts of a failed trial from its last checkpoint."""
    reuse_actors: bool = True
    """Reuse Ray workers between trials (faster trial starts)."""


class TrackingSection(Strict):
    experiment: str = Field(default="raynas", min_length=1)
    """The MLflow experiment of the runs."""


class Preset(Strict):
    name: str
    """The preset's name."""
    description: str = ""
    """One line about the preset."""
    seed: int = Field(default=0, ge=0, le=SEED_MAX)
    """The search seed: the split, every trial's seed and the random controls derive from it."""
    # mixed precision (raynas.engine.amp): auto = bf16 on CUDA where supported, else fp16 with a
    # grad scaler, float32 on CPU; bf16 / fp16 on any device; off = float32. Old booleans map:
    # true = auto, false = off.
    amp: Literal["auto", "bf16", "fp16", "off"] = "auto"
    """Precision: `auto` (bf16 where the GPU supports it, else fp16 with a grad scaler; float32 on
    CPU), `bf16`, `fp16` or `off`."""
    # cuDNN: deterministic kernels and no autotuning (a resumed trial continues exactly), or
    # false = autotuned kernels (cudnn.benchmark: faster convolutions, reruns may differ)
    deterministic: bool = True
    """cuDNN deterministic with autotuning off (a resumed trial continues as it would have); false
    turns autotuning on."""
    data: DataSection = Field(default_factory=DataSection)
    coarse: CoarseSection = Field(default_factory=CoarseSection)
    fine: FineSection = Field(default_factory=FineSection)
    retrain: RetrainSection = Field(default_factory=RetrainSection)
    resources: ResourcesSection = Field(default_factory=ResourcesSection)
    tracking: TrackingSection = Field(default_factory=TrackingSection)

    @field_validator("amp", mode="before")
    @classmethod
    def _amp_from_bool(cls, value: Any) -> Any:
        """The old boolean setting: ``true`` = ``auto``, ``false`` = ``off``."""
        return {True: "auto", False: "off"}[value] if isinstance(value, bool) else value


def _locate(ref: str, *, relative_to: Path | None) -> Path:
    """A preset reference is a built-in name or a path (relative to the including file)."""
    if ref.endswith((".yaml", ".yml")) or "/" in ref:
        path = Path(ref)
        if not path.is_absolute() and relative_to is not None:
            path = relative_to.parent / path
        return path
    if relative_to is not None and (relative_to.parent / f"{ref}.yaml").is_file():
        return relative_to.parent / f"{ref}.yaml"
    found = builtin_file("tune_configs", ref)
    if found is None:
        where = f"{relative_to}: inherits" if relative_to else "--preset"
        raise ConfigError(
            f"{where}: unknown preset {ref!r}; valid: {', '.join(builtin_names('tune_configs'))}"
        )
    return found


def resolve_preset_data(path: Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Reads a preset file and the chain of presets it inherits from, merged (child wins)."""
    path = path.resolve()
    if path in _seen:
        chain = " -> ".join(str(p) for p in (*_seen, path))
        raise ConfigError(f"{path}: inherits: cycle ({chain})")
    data = read_yaml(path)
    parent = data.pop("inherits", None)
    if parent is None:
        return data
    if not isinstance(parent, str):
        raise ConfigError(f"{path}: inherits: expected a preset name or path")
    base = resolve_preset_data(_locate(parent, relative_to=path), (*_seen, path))
    return deep_merge(base, data)


def preset_path(ref: str | Path) -> Path:
    """The file of a preset reference (a built-in name or a path)."""
    path = Path(ref) if isinstance(ref, Path) else _locate(ref, relative_to=None)
    if not path.is_file():
        raise ConfigError(f"{path}: file not found")
    return path


def load_preset(
    ref: str | Path,
    overrides: list[str] | tuple[str, ...] = (),
    *,
    labels: Mapping[str, str] | None = None,
) -> Preset:
    """Loads a built-in preset by name or a YAML file by path, then applies ``--set`` overrides.

    An error names the last override that set the bad key (``--set key=value``, or the flag
    ``labels`` gives for that override text, e.g. ``{"seed=3": "--seed 3"}``), else the file."""
    path = preset_path(ref)
    data = resolve_preset_data(path)
    # The name is the file's own, never one inherited from a parent preset.
    data["name"] = read_yaml(path).get("name", path.stem)
    data = apply_overrides(data, overrides)
    return validate_model(Preset, data, source=str(path), overrides=overrides, labels=labels)
