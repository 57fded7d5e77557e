"""The options of the run commands as the CLI parses them, and :class:`Resolved`: the same
options resolved once (preset loaded, dataset opened, tracking store found) at the top of a
command and passed down, so that nothing below reads an option again.

Example:
    >>> options = SearchOptions(space="c2f_small", dataset="synthetic", preset="smoke")
    >>> run = resolve_search(options)  # doctest: +SKIP  (raynas.pipeline.validate)
    >>> run.preset.name, run.space_ref  # doctest: +SKIP
    ('smoke', 'c2f_small')
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from raynas.pipeline.preflight import Blame

__all__ = ["Resolved", "RunOptions", "SearchOptions", "storage_root"]


@dataclass(kw_only=True)
class RunOptions:
    """Options every run command shares (``search``, ``retrain``, ``baseline``)."""

    dataset: str
    data_root: Path | None = None
    gpus: int | None = None
    cpus_per_trial: float | None = None
    preset: str | None = None
    config: Path | None = None
    address: str | None = None
    tracking_uri: str | None = None
    experiment: str | None = None
    storage_path: Path | None = None
    seed: int | None = None
    overrides: list[str] = field(default_factory=list)
    workdir: Path = field(default_factory=Path.cwd)


@dataclass(kw_only=True)
class SearchOptions(RunOptions):
    """The options of ``raynas search`` (see DESIGN.md, "The user's contract")."""

    space: str
    resume: bool = False


def storage_root(options: RunOptions) -> Path:
    """``--storage-path`` (default ``./raynas_runs``), absolute (relative to the working
    directory)."""
    return Path(options.workdir, options.storage_path or "raynas_runs").expanduser().absolute()


@dataclass(frozen=True, kw_only=True)
class Resolved:
    """A run command's options, resolved and checked once (see :mod:`raynas.pipeline.validate`).

    Attributes:
        preset: The loaded preset (``--preset`` / ``--config``, flags, ``--set``, ``--seed``).
        blame: What set each preset key, for error messages.
        dataset: The opened (validated) dataset.
        target: The MLflow store (:class:`raynas.tracking.TrackingTarget`), checked reachable.
        storage: The output root (``--storage-path``), absolute and checked writable.
        experiment: The MLflow experiment (``--experiment``, else the preset's).
        space: The search space (``None`` for ``retrain`` / ``baseline``).
        space_ref: The space as trials name it (a built-in name or an absolute YAML path; the
            architecture's space for ``retrain`` / ``baseline``).
        address: ``--address`` (``None``: a local Ray).
        gpus: ``--gpus`` (``None``: every GPU of the cluster).
        cpus_per_trial: ``--cpus-per-trial``, else the preset's.
        resume: ``--resume``.
    """

    preset: Any
    blame: Blame
    dataset: Any
    target: Any
    storage: Path
    experiment: str
    space: Any = None
    space_ref: str = ""
    address: str | None = None
    gpus: int | None = None
    cpus_per_trial: float = 1.0
    resume: bool = False

    @property
    def seed(self) -> int:
        """The search seed (the preset's, after ``--seed``)."""
        return int(self.preset.seed)
