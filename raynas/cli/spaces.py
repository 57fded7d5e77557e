"""``raynas spaces``: list the built-in spaces, show one, or sample a random valid architecture.

Example:
    raynas spaces
    raynas spaces show c2f
    raynas spaces sample c2f --seed 3 --width 16 --classes 2
"""

from __future__ import annotations

import json

import typer

__all__ = ["app", "list_command", "show", "sample"]

app = typer.Typer(help="List search spaces, show one, or sample a random architecture.",
                  invoke_without_command=True, no_args_is_help=False)


@app.callback(invoke_without_command=True)
def list_command(ctx: typer.Context) -> None:
    """One line per built-in space: name, type, dims, description."""
    if ctx.invoked_subcommand is not None:
        return
    from raynas.config import builtin_names, load_space_config

    for name in builtin_names("search_spaces"):
        cfg = load_space_config(name)
        typer.echo(f"{name:<12} {cfg.type:<8} {cfg.spatial_dims}D  {cfg.description}")


def _fmt(value: object) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


@app.command()
def show(
    space: str = typer.Argument(..., help="A built-in space name or a path to a .yaml file."),
    as_json: bool = typer.Option(False, "--json", help="Print the facts as JSON."),
) -> None:
    """Levels, cells, operations, number of topologies and clusters of a space."""
    from raynas.spaces import load_space

    facts = load_space(space).describe()
    if as_json:
        typer.echo(json.dumps(facts, indent=2))
        return
    for key, value in facts.items():
        typer.echo(f"{key + ':':<14} {_fmt(value)}")


@app.command()
def sample(
    space: str = typer.Argument(..., help="A built-in space name or a path to a .yaml file."),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    width: int = typer.Option(16, "--width", min=1, max=1024, help="Base width C."),
    in_channels: int = typer.Option(1, "--in-channels", min=1, help="Input channels."),
    classes: int = typer.Option(2, "--classes", min=1, help="Output classes (with background)."),
) -> None:
    """Print a uniformly random valid Architecture JSON (the random-search baseline)."""
    from raynas.spaces import load_space

    arch = load_space(space).sample_architecture(
        seed=seed, in_channels=in_channels, out_channels=classes, width=width
    )
    typer.echo(arch.to_json())
