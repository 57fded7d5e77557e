"""Command-line interface (typer). See :mod:`raynas.cli.main`."""
