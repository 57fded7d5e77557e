"""Benchmark instruments: provenance stamps, timers, null-safe statistics and dataset digests.

Every script under ``benchmarks/`` writes its result through :func:`write_result`, with a
:func:`stamp` (code, config, data, seeds) and :class:`Timer` seconds per part, and reuses an
earlier result only when :func:`check_reusable` holds. Pure python: no ray, mlflow or torch.

What the scripts run lives here too, importable and tested (the scripts only parse their
arguments; tests never load a script by path), and like :mod:`raynas.stages` it imports neither
Ray nor MLflow:

- :mod:`raynas.bench.recipe`: one seed's trial specs (the ``smoke`` preset scaled to the
  benchmark), the coarse and fine stages driven Ray-free as the search's trials run them, and
  stand-alone training with the retrain recipe;
- :mod:`raynas.bench.stats`: percentiles, rank agreement, hypervolume and a seeded paired
  bootstrap, each undefined figure ``None``;
- :mod:`raynas.bench.equal_cost` and :mod:`raynas.bench.experiment`: the search against random
  search at equal cost (``benchmarks/equal_cost.py``).

Example:
    >>> from raynas.bench import mean_valid
    >>> mean_valid([None, None])
    {'mean': None, 'n_valid': 0, 'n': 2}
"""

from __future__ import annotations

from raynas.bench.datasets import (
    dataset_digest,
    joint_digest,
    preset_dataset_digest,
    synthetic_digest,
)
from raynas.bench.provenance import (
    STAMP_KEYS,
    Timer,
    check_reusable,
    code_digest,
    git_state,
    is_current,
    json_ready,
    mean_valid,
    stamp,
    why_not_reusable,
    write_labelled,
    write_result,
)

__all__ = [
    "STAMP_KEYS",
    "Timer",
    "check_reusable",
    "code_digest",
    "dataset_digest",
    "git_state",
    "is_current",
    "joint_digest",
    "json_ready",
    "mean_valid",
    "preset_dataset_digest",
    "stamp",
    "synthetic_digest",
    "why_not_reusable",
    "write_labelled",
    "write_result",
]
