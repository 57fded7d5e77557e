"""``raynas evaluate CHECKPOINT``: sliding-window Dice on whole volumes of the held-out test
cases (``--split test``, the default) or the validation fold (``--split val``); calls
:func:`raynas.pipeline.run_evaluate` (no Ray, no MLflow)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import typer

from raynas.cli.common import DATA_ROOT_HELP, DATASET_HELP

__all__ = ["evaluate"]


def evaluate(
    checkpoint: Path = typer.Argument(
        ..., help="models/NAME.pt (with NAME.json beside it) or a Ray checkpoint folder."
    ),
    dataset: str = typer.Option(..., "--dataset", help=DATASET_HELP),
    data_root: Path | None = typer.Option(None, "--data-root", help=DATA_ROOT_HELP),
    preset: str | None = typer.Option(None, "--preset", help="smoke | default | NAME"),
    config: Path | None = typer.Option(None, "--config", help="A preset YAML file."),
    seed: int | None = typer.Option(None, "--seed"),
    overrides: list[str] = typer.Option([], "--set", help="key.path=value (repeatable)"),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda | cuda:N"),
    split: str = typer.Option(
        "test", "--split", help="test (the held-out cases) | val (the validation fold)"
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Mean foreground and per-class Dice of a trained network on the test cases (or --split
    val: the validation fold)."""
    from raynas.pipeline import EvaluateOptions, run_evaluate

    result = run_evaluate(
        EvaluateOptions(
            checkpoint=checkpoint,
            dataset=dataset,
            data_root=data_root,
            preset=preset,
            config=config,
            seed=seed,
            overrides=list(overrides),
            device=device,
            split=split,
        )
    )
    if as_json:
        data = result.to_dict()
        data["per_class"] = {
            k: (None if math.isnan(v) else v) for k, v in data["per_class"].items()
        }
        typer.echo(json.dumps(data, indent=2))
        return
    typer.echo(f"model:     {result.checkpoint} ({result.space}, {result.params:,} params)")
    what = "test" if result.split == "test" else "validation"
    typer.echo(f"Dice:      {result.dice:.4f} (mean foreground, {result.cases} {what} volumes)")
    for label, value in result.per_class.items():
        typer.echo(f"  {label}: {value:.4f}")
