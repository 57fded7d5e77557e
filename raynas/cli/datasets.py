"""raynas datasets (filled in by its owner)."""
from __future__ import annotations
import typer
app = typer.Typer(help="datasets", no_args_is_help=False)
