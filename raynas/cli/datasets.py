"""``raynas datasets``: list the built-in datasets, check a task folder, prepare synthetic data.

Listing imports only the metadata (no numpy-heavy work, no torch, no MONAI). Each command is a
thin wrapper over one function of :mod:`raynas.data`.

Example:
    $ raynas datasets
    $ raynas datasets check msd_task02 --data-root /data/Task02_Heart
    $ raynas datasets prepare synthetic --out ./synthetic --cases 16 --seed 0
"""

from __future__ import annotations

from pathlib import Path

import typer

from raynas.errors import DataError

__all__ = ["app", "list_command", "check_command", "prepare_command"]

app = typer.Typer(
    help="Built-in datasets: list them, check a local MSD task folder, prepare synthetic data.",
    no_args_is_help=False,
    invoke_without_command=True,
    add_completion=False,
)


def _positive(value: int | None, option: str) -> None:
    if value is not None and value <= 0:
        raise DataError(f"{option} must be a positive number, got {value}")


@app.callback(invoke_without_command=True)
def list_command(ctx: typer.Context) -> None:
    """List the built-in datasets (name, organ, modality, classes) when no subcommand is given."""
    if ctx.invoked_subcommand is not None:
        return
    from raynas.data.tasks import list_datasets

    infos = list_datasets()
    width = max(len(i.name) for i in infos)
    for info in infos:
        where = info.task_folder or (
            "generated, 2D mode" if info.default_mode == "2d" else "generated"
        )
        typer.echo(
            f"{info.name:<{width}}  {info.organ:<26} {info.modality:<4} "
            f"{info.num_classes} classes  {info.in_channels} ch  ({where})"
        )


@app.command("check")
def check_command(
    name: str = typer.Argument(..., help="Dataset name (see `raynas datasets`)."),
    data_root: Path | None = typer.Option(
        None, "--data-root", help="The MSD task folder (optional for synthetic datasets)."
    ),
    cases: int | None = typer.Option(None, "--cases", help="Check only the first N cases."),
    seed: int = typer.Option(0, "--seed", help="Seed of a synthetic dataset."),
    synthetic_cases: int = typer.Option(
        16, "--synthetic-cases", help="Number of cases of a generated synthetic dataset."
    ),
) -> None:
    """Validate every case (shapes, affines, NaN/inf, label values) and print a table."""
    from rich.console import Console
    from rich.table import Table

    from raynas.data.msd import open_dataset
    from raynas.data.validate import check_dataset

    _positive(cases, "--cases")
    _positive(synthetic_cases, "--synthetic-cases")
    ds = open_dataset(
        name,
        data_root,
        seed=seed,
        synthetic_cases=synthetic_cases,
        limit_cases=cases,
        validate="none",
    )
    reports = check_dataset(ds, deep=True, strict=False)
    table = Table(title=f"{ds.name} ({ds.info.organ}, {ds.modality})")
    for col in ("case", "shape", "channels", "spacing (mm)", "label values", "status"):
        table.add_column(col)
    for r in reports:
        table.add_row(
            r.name,
            "x".join(map(str, r.shape)) if r.shape else "-",
            str(r.channels) if r.ok else "-",
            "x".join(f"{s:g}" for s in r.spacing) if r.spacing else "-",
            ",".join(map(str, r.label_values or ())) or "-",
            "ok" if r.ok else "[red]bad[/red]",
        )
    console = Console(width=max(Console().width, 100))
    console.print(table)
    bad = [r for r in reports if not r.ok]
    labels = ", ".join(f"{k}={v}" for k, v in ds.labels.items())
    typer.echo(f"root: {ds.root}")
    typer.echo(
        f"{len(reports)} case(s), {len(reports) - len(bad)} ok, {len(bad)} bad; "
        f"{ds.in_channels} channel(s) {list(ds.channels)}; {ds.num_classes} classes ({labels})"
    )
    if bad:
        more = f" (and {len(bad) - 1} more bad case(s))" if len(bad) > 1 else ""
        raise DataError(f"{bad[0].problem}{more}")


@app.command("prepare")
def prepare_command(
    name: str = typer.Argument(..., help="synthetic or synthetic2d."),
    out: Path = typer.Option(..., "--out", help="Folder to write (must not exist or be empty)."),
    cases: int = typer.Option(16, "--cases", help="Number of cases to generate."),
    seed: int = typer.Option(0, "--seed", help="Generator seed (same seed, same data)."),
) -> None:
    """Write a synthetic dataset as an MSD task folder (dataset.json, imagesTr/, labelsTr/)."""
    from raynas.data.synthetic import SPECS, write_synthetic
    from raynas.data.tasks import get_dataset_info

    info = get_dataset_info(name, option="NAME")
    if not info.synthetic:
        raise DataError(
            f"NAME: prepare writes generated datasets only ({', '.join(SPECS)}), got {name!r}"
        )
    _positive(cases, "--cases")
    root = write_synthetic(out, name=name, cases=cases, seed=seed)
    typer.echo(f"wrote {cases} {name} case(s) (seed {seed}) to {root}")
