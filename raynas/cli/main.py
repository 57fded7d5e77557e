"""The ``raynas`` command: a thin typer app. Each command parses options and calls one function.

Heavy imports (torch, MONAI, Ray, MLflow) happen inside the commands, so ``raynas --help`` and
listing commands stay fast. A :class:`raynas.errors.UserError` and a usage error (unknown or
missing option, a value of the wrong type, an unknown command) become one line on stderr and exit
code 2; a :class:`raynas.errors.RunError` (a full disk, a tracking store deleted mid-run) one
line and exit code 1; anything else is a bug and exits 1 with its traceback.
"""

from __future__ import annotations

import importlib
import logging
import sys

import typer

from raynas import __version__
from raynas.errors import RunError, UserError
from raynas.interrupts import Interrupted, interrupted_line

__all__ = ["app", "main", "run"]

app = typer.Typer(
    name="raynas",
    help="Neural architecture search for medical image segmentation, run as Ray Tune trials.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"raynas {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """raynas: C2FNAS + PC-DARTS and Thrifty NAS searches on Ray Tune, tracked in MLflow."""


def _register() -> None:
    from raynas.cli import datasets, evaluate, pareto, retrain, search, spaces, summary

    app.add_typer(datasets.app, name="datasets")
    app.add_typer(spaces.app, name="spaces")
    app.command("summary")(summary.summary)
    app.command("pareto")(pareto.pareto)
    app.command("search")(search.search)
    app.command("retrain")(retrain.retrain)
    app.command("baseline")(retrain.baseline)
    app.command("evaluate")(evaluate.evaluate)


_register()


class _WarningsToStderr(logging.Handler):
    """``warning: ...`` lines on the *current* ``sys.stderr`` (rich's live view swaps it for a
    proxy that prints above the view), so a user sees warnings that also go to ``search.log``."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.setFormatter(logging.Formatter("warning: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            print(self.format(record), file=sys.stderr, flush=True)
        except Exception:  # noqa: BLE001 - logging must never break the command
            self.handleError(record)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code.

    raynas's log goes to the run's ``search.log`` and its warnings to stderr; it does not
    propagate to the root logger, where a library may have installed a handler of its own
    (one appears while MLflow logs a model) that would print every INFO line too."""
    log = logging.getLogger("raynas")
    handler, propagate = _WarningsToStderr(), log.propagate
    log.addHandler(handler)
    log.propagate = False
    try:
        return _main(argv)
    finally:
        log.removeHandler(handler)
        log.propagate = propagate


def _click_classes(name: str) -> tuple[type[BaseException], ...]:
    """``name`` (``ClickException``, ``UsageError``, ``NoArgsIsHelpError``, ``Exit``, ``Abort``)
    from typer's vendored click (typer >= 0.20: ``typer._click``, not a ``click`` subclass) and
    from plain click (older typer), whichever are installed."""
    found: list[type[BaseException]] = []
    for module in ("typer._click.exceptions", "typer.exceptions", "click.exceptions"):
        try:
            cls = getattr(importlib.import_module(module), name, None)
        except ImportError:
            continue
        if isinstance(cls, type) and issubclass(cls, BaseException) and cls not in found:
            found.append(cls)
    return tuple(found)


def _usage_line(exc: BaseException) -> str:
    """A click usage error as one line: ``COMMAND: message (see 'COMMAND --help')``."""
    ctx = getattr(exc, "ctx", None)
    text = " ".join(str(exc.format_message()).split())  # type: ignore[attr-defined]
    if ctx is None:
        return f"{_PROG}: {text} (see '{_PROG} --help')"
    return f"{ctx.command_path}: {text} (see '{ctx.command_path} --help')"


_PROG = "raynas"


def _main(argv: list[str] | None) -> int:
    try:
        code = app(args=argv, prog_name=_PROG, standalone_mode=False)
    except (UserError, RunError) as exc:  # bad input (2); a full disk, a vanished store (1)
        typer.echo(f"error: {' '.join(str(exc).split())}", err=True)
        return exc.exit_code
    except _click_classes("Exit") as exc:
        return int(getattr(exc, "exit_code", 0) or 0)
    except _click_classes("Abort"):
        typer.echo("aborted", err=True)
        return 1
    except Interrupted as exc:  # SIGINT / SIGTERM through raynas.interrupts: 130 / 143
        typer.echo(interrupted_line(argv, resumable=exc.resumable), err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        return 130
    except _click_classes("NoArgsIsHelpError") as exc:
        typer.echo(exc.ctx.get_help(), err=True)  # type: ignore[attr-defined]
        return int(exc.exit_code)  # type: ignore[attr-defined]
    except _click_classes("UsageError") as exc:
        typer.echo(f"error: {_usage_line(exc)}", err=True)
        return int(exc.exit_code)  # type: ignore[attr-defined]
    except _click_classes("ClickException") as exc:
        text = " ".join(str(exc.format_message()).split())  # type: ignore[attr-defined]
        typer.echo(f"error: {text}", err=True)
        return int(exc.exit_code)  # type: ignore[attr-defined]
    # Without standalone mode, typer returns a command's value, or the code of an Exit it
    # caught (130 for a Ctrl-C it turned into Exit(130)): pass the code on.
    if isinstance(code, int) and not isinstance(code, bool):
        return code
    return 0


if __name__ == "__main__":
    sys.exit(main())


def run() -> None:
    """Console-script wrapper: exits with :func:`main`'s code."""
    sys.exit(main())
