"""``raynas evaluate``: sliding-window Dice of a trained network on whole volumes of the held-out
test cases (default) or of the validation fold.

A checkpoint is ``models/<name>.pt`` (a state dict, as ``retrain``, ``baseline`` and ``search``
write it) with ``<name>.json`` (its Architecture) beside it, or a Ray checkpoint folder holding
``state.pt`` (a retrain trial's state; its best weights are used) and ``architecture.json``.
The split is the preset's, as in training: the test cases (``data.test_fraction`` /
``data.test_cases``, drawn with the preset's seed) or the validation volumes of its fold
(``data.folds`` / ``data.fold``, made from the other cases). No Ray and no MLflow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from raynas.errors import UserError
from raynas.pipeline.validate import open_run_dataset, resolve_preset, user_plan_cache

__all__ = [
    "SPLITS",
    "EvaluateOptions",
    "EvaluateResult",
    "load_checkpoint",
    "run_evaluate",
    "score_network",
]

SPLITS = ("test", "val")

_STATE_FILE = "state.pt"  # see raynas.tune.trainables.STATE_FILE (not imported: no Ray here)
_ARCH_FILE = "architecture.json"


@dataclass
class EvaluateOptions:
    """The options of ``raynas evaluate``.

    Example:
        >>> EvaluateOptions(checkpoint=Path("models/searched0.pt"), dataset="synthetic")
    """

    checkpoint: Path
    dataset: str
    data_root: Path | None = None
    preset: str | None = None
    config: Path | None = None
    seed: int | None = None
    overrides: list[str] = field(default_factory=list)
    device: str = "auto"
    split: str = "test"  # "test" (held-out cases) | "val" (the validation fold)


@dataclass
class EvaluateResult:
    checkpoint: Path
    architecture: Path
    space: str
    dice: float  # mean foreground Dice
    per_class: dict[str, float]  # by label name (NaN where a class is in no label)
    cases: int
    params: int
    seconds: float
    split: str = "test"

    def to_dict(self) -> dict[str, Any]:
        return {
            "checkpoint": str(self.checkpoint),
            "architecture": str(self.architecture),
            "space": self.space,
            "split": self.split,
            "dice": self.dice,
            "per_class": self.per_class,
            "cases": self.cases,
            "params": self.params,
            "seconds": self.seconds,
        }


def _paths(checkpoint: Path) -> tuple[Path, Path]:
    if checkpoint.is_dir():
        weights, arch = checkpoint / _STATE_FILE, checkpoint / _ARCH_FILE
    elif checkpoint.is_file():
        weights, arch = checkpoint, checkpoint.with_suffix(".json")
    else:
        raise UserError(f"{checkpoint}: checkpoint not found")
    if not weights.is_file():
        raise UserError(f"{weights}: not found (a Ray checkpoint folder holds {_STATE_FILE})")
    if not arch.is_file():
        raise UserError(f"{arch}: architecture JSON not found beside the checkpoint {weights}")
    return weights, arch


def _state_dict(weights: Path) -> dict[str, Any]:
    import torch

    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is a user error here
        raise UserError(
            f"{weights}: cannot be read as a PyTorch state dict of tensors ({type(exc).__name__})"
        ) from None
    if not isinstance(state, dict):
        raise UserError(f"{weights}: expected a state dict, got {type(state).__name__}")
    if "model" in state and "epoch" in state:  # a stage program's checkpoint state
        extra = state.get("extra") or {}
        state = extra.get("best_state", state["model"])
    return state


def load_checkpoint(checkpoint: Path) -> tuple[Any, Any, Path, Path]:
    """``(network with the weights loaded, Architecture, weights path, JSON path)``.

    Raises:
        UserError: missing files, an unreadable file, or weights that do not fit the network
            (one line naming the file).
        ConfigError: an invalid architecture JSON (one line naming the file).
    """
    from raynas.nets import build_network, load_architecture

    weights, arch_path = _paths(Path(checkpoint))
    arch = load_architecture(arch_path)
    state = _state_dict(weights)
    model = build_network(arch)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        detail = lines[1] if len(lines) > 1 else (lines[0] if lines else "mismatch")
        raise UserError(
            f"{weights}: weights do not fit the architecture in {arch_path.name} ({detail[:200]})"
        ) from None
    return model, arch, weights, arch_path


def score_network(
    model: Any,
    arch: Any,
    *,
    preset: Any,
    dataset: Any,
    split: str = "test",
    device: str = "auto",
) -> Any:
    """Sliding-window Dice (:class:`raynas.engine.EvalResult`) of ``model`` on the whole
    volumes of ``split`` (``test`` | ``val``) of ``dataset``, split as the preset splits it."""
    from raynas.engine import evaluate, resolve_device, seed_everything
    from raynas.stages import TrialSpec, build_trial_data

    if split not in SPLITS:
        raise UserError(f"--split {split}: unknown; valid: {', '.join(SPLITS)}")
    seed_everything(preset.seed)
    spec = TrialSpec(
        stage="retrain",
        space=arch.space,
        dataset=dataset.ref,
        data_root=None if dataset.info.synthetic else str(dataset.root),
        plan=dataset.plan_file,
        seed=preset.seed,
        preset=preset.model_dump(mode="json"),
    )
    data = build_trial_data(spec, spatial_dims=int(arch.spatial_dims), retrain=True)
    loader = data.bundle.test if split == "test" else data.bundle.val
    if loader is None:
        raise UserError("--split test: the preset holds out no test cases (data.test_fraction)")
    target = resolve_device(device)
    return evaluate(
        model.to(target),
        loader,
        num_classes=dataset.num_classes,
        roi_size=data.roi_size,
        spatial_dims=data.spatial_dims,
        device=target,
        sw_batch_size=preset.retrain.sw_batch_size,
        overlap=preset.retrain.sw_overlap,
    )


def run_evaluate(options: EvaluateOptions) -> EvaluateResult:
    """Loads the checkpoint and scores it on the test cases (or the validation fold) of
    ``options.dataset``."""
    from raynas.nets import count_parameters

    if options.split not in SPLITS:
        raise UserError(f"--split {options.split}: unknown; valid: {', '.join(SPLITS)}")
    preset, _ = resolve_preset(options)  # every option resolved once, here
    model, arch, weights, arch_path = load_checkpoint(options.checkpoint)
    dataset = open_run_dataset(options.dataset, options.data_root, preset=preset,
                               workdir=Path.cwd(), plan_cache=user_plan_cache(),
                               write_plan=True, validate="header")  # fmt: skip
    expected = (dataset.in_channels, dataset.num_classes)
    if (arch.in_channels, arch.out_channels) != expected:
        raise UserError(
            f"{arch_path}: in_channels={arch.in_channels}, out_channels={arch.out_channels}, "
            f"but {dataset.info.name} has {expected[0]} input channel(s) and {expected[1]} classes"
        )
    result = score_network(
        model, arch, preset=preset, dataset=dataset, split=options.split, device=options.device
    )
    per_class = {
        str(dataset.labels.get(i, i)): float(v) for i, v in enumerate(result.per_class, start=1)
    }
    return EvaluateResult(
        checkpoint=weights,
        architecture=arch_path,
        space=arch.space,
        dice=float(result.dice),
        per_class=per_class,
        cases=result.cases,
        params=count_parameters(model),
        seconds=result.seconds,
        split=options.split,
    )
