"""``raynas pareto``: rebuild the Dice/parameters frontier of a search from MLflow.

Thin wrapper over :func:`raynas.tracking.rebuild_pareto`; MLflow is imported inside the command
so ``raynas --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path

import typer

__all__ = ["pareto"]


def pareto(
    experiment: str = typer.Option("raynas", "--experiment", help="MLflow experiment name."),
    tracking_uri: str | None = typer.Option(
        None,
        "--tracking-uri",
        help="MLflow store: folder, .db file, sqlite:///FILE.db or http(s)://HOST:PORT "
        "(default: ./mlflow.db).",
    ),
    out: Path = typer.Option(
        Path("."), "--out", help="Folder for pareto.csv, pareto.json and pareto.png."
    ),
) -> None:
    """Frontier table of the latest search (Dice up, parameters down); writes csv + json + png."""
    from rich.console import Console

    from raynas.tracking import (
        check_tracking_reachable,
        frontier_table,
        pareto_front,
        rebuild_pareto,
        resolve_tracking_uri,
    )
    from raynas.tracking.frontier import ARTIFACT_STEM

    target = resolve_tracking_uri(tracking_uri, workdir=Path.cwd())
    if target.is_server:
        check_tracking_reachable(target)
    out_dir = out.expanduser().absolute()
    points = rebuild_pareto(target, experiment, out_dir=out_dir)
    console = Console(soft_wrap=True)
    console.print(frontier_table(points, title=f"Pareto frontier: {experiment}"))
    front = pareto_front(points)
    console.print(f"{len(front)} of {len(points)} retrained networks on the frontier")
    for ext in ("csv", "json", "png"):
        console.print(f"wrote {out_dir / f'{ARTIFACT_STEM}.{ext}'}")
    from raynas.cli.common import where_in_mlflow

    link = where_in_mlflow(target.uri, experiment, None)
    console.print(link, soft_wrap=True, markup=False, highlight=False)
