"""``raynas datasets``: list the built-in datasets, check a task folder (or a user's MSD or
nnU-Net folder, or MONAI datalist), plan a user's dataset from its data, prepare synthetic data.

Listing imports only the metadata (no numpy-heavy work, no torch, no MONAI). Each command is a
thin wrapper over one function of :mod:`raynas.data`.

Example:
    $ raynas datasets
    $ raynas datasets check msd_task02 --data-root /data/Task02_Heart
    $ raynas datasets check /data/Dataset501_Prostate
    $ raynas datasets plan /data/Dataset501_Prostate --memory-gb 8
    $ raynas datasets prepare synthetic --out ./synthetic --cases 16 --seed 0
"""

from __future__ import annotations

from pathlib import Path

import typer

from raynas.errors import DataError

__all__ = ["app", "list_command", "check_command", "plan_command", "prepare_command"]

app = typer.Typer(
    help="Datasets: list the built-in ones, check or plan a folder, prepare synthetic data.",
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
    name: str = typer.Argument(
        ..., help="Dataset name (see `raynas datasets`), or an MSD / nnU-Net folder or a MONAI "
        "datalist .json."
    ),
    data_root: Path | None = typer.Option(
        None, "--data-root", help="The MSD task folder of a name; a datalist's base folder."
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
    kind = f"{ds.info.organ}, {ds.modality}" if not ds.source else f"{ds.source}, {ds.modality}"
    table = Table(title=f"{ds.name} ({kind})")
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


@app.command("plan")
def plan_command(
    path: str = typer.Argument(..., help="An MSD or nnU-Net folder, or a MONAI datalist .json."),
    data_root: Path | None = typer.Option(
        None, "--data-root", help="The folder a datalist's paths are relative to."
    ),
    out: Path = typer.Option(Path("plan.json"), "--out", help="Where to write the plan."),
    memory_gb: float = typer.Option(
        8.0, "--memory-gb", help="Activation memory budget per patch batch, GiB."
    ),
    space: str = typer.Option(
        "c2f", "--space", help="The space whose total stride the patches must fit."
    ),
    cases: int | None = typer.Option(None, "--cases", help="Plan from the first N cases only."),
    as_json: bool = typer.Option(False, "--json", help="Print the plan as JSON."),
) -> None:
    """Fingerprint a dataset (spacings, shapes, foreground intensities, classes) and plan its
    target spacing, normalisation and search / retrain patches; print it and write plan.json."""
    import json

    from raynas.data.layouts import is_path_ref, read_layout
    from raynas.data.plan import make_plan

    _positive(cases, "--cases")
    if not (memory_gb > 0):
        raise DataError(f"--memory-gb must be a positive number, got {memory_gb}")
    if not is_path_ref(path):
        raise DataError(f"PATH: {path!r} is not a folder or datalist .json (built-in datasets "
                        "have their values in raynas/data/tasks.py)")
    stride = _space_stride(space)
    layout = read_layout(path, data_root, limit_cases=cases)
    from raynas.data.userdata import open_user_dataset
    from raynas.data.validate import check_dataset

    check_dataset(open_user_dataset(path, data_root, limit_cases=cases), deep=True)
    plan = make_plan(layout, stride=stride, memory_gb=memory_gb)
    out = out.expanduser()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(plan, indent=1) + "\n")
    if as_json:
        typer.echo(json.dumps(plan, indent=1))
        return
    for line in plan_lines(plan):
        typer.echo(line)
    typer.echo(f"wrote {out}")


def _space_stride(space: str) -> int:
    from raynas.pipeline.preflight import space_strides
    from raynas.spaces import load_stage_space

    return max([s for _, s, _ in space_strides(load_stage_space(space))] or [1])


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def plan_lines(plan: dict) -> list[str]:
    """The plan as text: what was measured, and what training will use."""
    sp, patch, norm = plan["spacing"], plan["patch"], plan["normalization"]
    cases = plan["fingerprint"]["cases"]
    x = "x".join
    lines = [
        f"dataset:   {plan['dataset']} ({plan['layout']} layout, {len(cases)} case(s)) "
        f"at {plan['source']}",
        f"channels:  {', '.join(plan['channels'])} -> modality {norm['modality']}",
        f"classes:   {', '.join(f'{k}={v}' for k, v in plan['labels'].items())}",
        f"spacing:   median {x(_num(v) for v in sp['median'])} mm -> target "
        f"{x(_num(v) for v in sp['target'])} mm"
        + (" (anisotropic: low-resolution axis at its 10th percentile)" if sp["anisotropic"]
           else ""),
        f"shape:     median {x(_num(v) for v in plan['median_shape_at_target'])} voxels at the "
        "target spacing",
    ]
    for ch in plan["fingerprint"]["intensity"] or []:
        f = ch["foreground"]
        lines.append(
            f"intensity: {ch['channel']}: foreground mean {_num(f['mean'])}, std {_num(f['std'])}, "
            f"0.5-99.5% {_num(f['percentile_00_5'])}..{_num(f['percentile_99_5'])} "
            f"({f['n']} sampled voxels)"
        )
    lines.append(f"normalise: {norm['scheme']}")
    for key, c in (plan["fingerprint"]["classes"] or {}).items():
        frac = c["voxel_fraction"]
        lines.append(
            f"class {key}:   {c['name']}: {'-' if frac is None else f'{100 * frac:.3g}'}% of "
            f"voxels, in {c['cases_with']} of {len(cases)} case(s)"
        )
    lines.append(
        f"patches:   search {x(map(str, patch['search']))}, retrain "
        f"{x(map(str, patch['retrain']))} (stride {patch['stride']}, {patch['memory_gb']:g} GiB "
        f"at {patch['bytes_per_voxel']['search']} / {patch['bytes_per_voxel']['retrain']} "
        "bytes per voxel)"
    )
    return lines


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
