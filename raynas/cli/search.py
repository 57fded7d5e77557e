"""``raynas search``: parse the contract's options, call :func:`raynas.pipeline.run_search`,
print the frontier and where to look in MLflow."""

from __future__ import annotations

from pathlib import Path

import typer

from raynas.cli.common import DATA_ROOT_HELP, DATASET_HELP

__all__ = ["search"]


def search(
    space: str = typer.Option(..., "--space", help="c2f | thrifty | a space YAML file"),
    dataset: str = typer.Option(..., "--dataset", help=DATASET_HELP),
    data_root: Path | None = typer.Option(None, "--data-root", help=DATA_ROOT_HELP),
    gpus: int | None = typer.Option(None, "--gpus", help="GPU budget (default: all visible)."),
    cpus_per_trial: float | None = typer.Option(None, "--cpus-per-trial"),
    preset: str | None = typer.Option(None, "--preset", help="smoke | default | NAME"),
    config: Path | None = typer.Option(None, "--config", help="A preset YAML file."),
    address: str | None = typer.Option(None, "--address", help="auto | ray://HOST:10001"),
    tracking_uri: str | None = typer.Option(None, "--tracking-uri"),
    experiment: str | None = typer.Option(None, "--experiment"),
    storage_path: Path | None = typer.Option(None, "--storage-path"),
    resume: bool = typer.Option(False, "--resume", help="Continue the last interrupted search."),
    seed: int | None = typer.Option(None, "--seed"),
    overrides: list[str] = typer.Option([], "--set", help="key.path=value (repeatable)"),
    plan: bool = typer.Option(
        False, "--plan", help="Validate and project the cost per stage; start nothing."
    ),
    plan_json: Path | None = typer.Option(None, "--plan-json", help="--plan, also as JSON here."),
    as_json: bool = typer.Option(False, "--json", help="With --plan: print the plan as JSON."),
    assume_step_s: list[str] = typer.Option(
        [], "--assume-step-s", help="With --plan: SECONDS or STAGE=SECONDS instead of calibrating."
    ),
) -> None:
    """Run the two-stage search (coarse topology, fine PC-DARTS, retrain, Pareto frontier)."""
    from rich.console import Console

    from raynas.cli.common import where_in_mlflow
    from raynas.pipeline import SearchOptions, run_search
    from raynas.tracking import frontier_table

    options = SearchOptions(
        space=space,
        dataset=dataset,
        data_root=data_root,
        gpus=gpus,
        cpus_per_trial=cpus_per_trial,
        preset=preset,
        config=config,
        address=address,
        tracking_uri=tracking_uri,
        experiment=experiment,
        storage_path=storage_path,
        resume=resume,
        seed=seed,
        overrides=list(overrides),
        workdir=Path.cwd(),
    )
    if plan or plan_json is not None or as_json or assume_step_s:
        from raynas.pipeline.plan import print_plan

        print_plan(options, assume_step_s=list(assume_step_s), as_json=as_json, json_file=plan_json)
        return
    result = run_search(options)
    console = Console()
    console.print(frontier_table(result.points))
    console.print(f"outputs:  {result.folder}")
    console.print(f"frontier: {result.folder / 'frontier.png'}")
    console.print(f"ASHA stopped {result.stopped_early} trial(s) early")
    from raynas.stages.timing import format_split

    for stage, split in result.time_split.items():
        console.print(format_split(stage, split), highlight=False)
    link = where_in_mlflow(result.tracking_uri, result.experiment, result.parent_run_id)
    console.print(link, soft_wrap=True, markup=False, highlight=False)
