"""Errors that the CLI turns into one line on stderr and an exit code."""

from __future__ import annotations

__all__ = ["UserError", "ConfigError", "DataError", "RunError"]


class UserError(Exception):
    """Bad input from the user: printed as one line, exit code 2.

    The message must name the file or option at fault and, where there is a closed set, the
    allowed values.

    Example:
        >>> raise UserError("--dataset: unknown 'msd_task11'; valid: msd_task01, ..., synthetic")
        Traceback (most recent call last):
        ...
        raynas.errors.UserError: --dataset: unknown 'msd_task11'; valid: msd_task01, ..., synthetic
    """

    exit_code = 2


class ConfigError(UserError):
    """A YAML preset or space definition is invalid (file, key, allowed values)."""


class DataError(UserError):
    """A dataset on disk is missing, malformed or inconsistent (names the file)."""


class RunError(Exception):
    """The run could not go on for a reason outside the program (a full disk, a tracking store
    deleted mid-run): printed as one line, exit code 1, no traceback.

    The message names the file at fault and what to do; where the run's state allows it, the
    stage is marked interrupted first, so ``--resume`` continues once the cause is fixed.

    Example:
        >>> raise RunError("cannot write /runs/x/state.json (No space left on device)")
        Traceback (most recent call last):
        ...
        raynas.errors.RunError: cannot write /runs/x/state.json (No space left on device)
    """

    exit_code = 1
