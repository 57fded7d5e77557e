"""``raynas retrain ARCH.json`` and ``raynas baseline --model NAME``: parse the contract's options,
call :func:`raynas.pipeline.run_retrain`, print Dice, parameters and where the outputs are."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from raynas.cli.common import DATA_ROOT_HELP, DATASET_HELP

__all__ = ["baseline", "retrain"]

_DATASET = typer.Option(..., "--dataset", help=DATASET_HELP)
_DATA_ROOT = typer.Option(None, "--data-root", help=DATA_ROOT_HELP)
_EPOCHS = typer.Option(None, "--epochs", help="Training epochs (default: the preset's).")
_WIDTH = typer.Option(None, "--width", help="Base width C (default: the preset's / the JSON's).")
_GPUS = typer.Option(None, "--gpus", help="GPU budget (default: all visible).")
_CPUS = typer.Option(None, "--cpus-per-trial")
_PRESET = typer.Option(None, "--preset", help="smoke | default | NAME")
_CONFIG = typer.Option(None, "--config", help="A preset YAML file.")
_ADDRESS = typer.Option(None, "--address", help="auto | ray://HOST:10001")
_TRACKING = typer.Option(None, "--tracking-uri")
_EXPERIMENT = typer.Option(None, "--experiment")
_STORAGE = typer.Option(None, "--storage-path")
_SEED = typer.Option(None, "--seed")
_SET = typer.Option([], "--set", help="key.path=value (repeatable)")


def _run(**kwargs: Any) -> None:
    from rich.console import Console

    from raynas.cli.common import where_in_mlflow
    from raynas.pipeline import RetrainOptions, run_retrain
    from raynas.tracking.names import network_name
    from raynas.tracking.pareto import learned

    overrides = list(kwargs.pop("overrides"))
    result = run_retrain(RetrainOptions(**kwargs, overrides=overrides, workdir=Path.cwd()))
    console = Console(soft_wrap=True)
    name = network_name(result.name, result.kind)  # as MLflow names its run and model
    if not learned(result.val_dice):
        console.print(
            f"{name}: did not learn (validation Dice {result.val_dice:.4f}, 0.00 on every "
            f"one of {result.epochs} epochs; its test Dice {result.dice:.4f} is no result)"
        )
    else:
        console.print(
            f"{name}: test Dice {result.dice:.4f} (held-out cases; validation Dice "
            f"{result.val_dice:.4f}, best of {result.epochs} epochs)"
        )
    for label, value in result.per_class.items():
        console.print(f"  {label}: {value:.4f} (test)")
    console.print(f"params:   {result.params:,}")
    console.print(f"model:    {result.model_path}")
    console.print(f"outputs:  {result.folder}")
    link = where_in_mlflow(result.tracking_uri, result.experiment, result.parent_run_id)
    console.print(link, soft_wrap=True, markup=False, highlight=False)


def retrain(
    architecture: Path = typer.Argument(..., help="ARCH.json (e.g. from a search's outputs)."),
    dataset: str = _DATASET,
    data_root: Path | None = _DATA_ROOT,
    epochs: int | None = _EPOCHS,
    width: int | None = _WIDTH,
    gpus: int | None = _GPUS,
    cpus_per_trial: float | None = _CPUS,
    preset: str | None = _PRESET,
    config: Path | None = _CONFIG,
    address: str | None = _ADDRESS,
    tracking_uri: str | None = _TRACKING,
    experiment: str | None = _EXPERIMENT,
    storage_path: Path | None = _STORAGE,
    seed: int | None = _SEED,
    overrides: list[str] = _SET,
) -> None:
    """Train an architecture from scratch (one Ray trial, tracked in MLflow); save its weights."""
    _run(**locals())


def baseline(
    model: str = typer.Option(..., "--model", help="unet | unetpp | dynunet"),
    dataset: str = _DATASET,
    data_root: Path | None = _DATA_ROOT,
    epochs: int | None = _EPOCHS,
    width: int | None = _WIDTH,
    gpus: int | None = _GPUS,
    cpus_per_trial: float | None = _CPUS,
    preset: str | None = _PRESET,
    config: Path | None = _CONFIG,
    address: str | None = _ADDRESS,
    tracking_uri: str | None = _TRACKING,
    experiment: str | None = _EXPERIMENT,
    storage_path: Path | None = _STORAGE,
    seed: int | None = _SEED,
    overrides: list[str] = _SET,
) -> None:
    """Train a baseline (U-Net, UNet++, DynUNet) with the retrain recipe, in the same experiment."""
    _run(**locals())
