"""Orchestration: coarse -> select -> fine -> select -> retrain -> frontier, one Tuner per stage;
``retrain`` / ``baseline`` (one retrain trial) and ``evaluate`` (no Ray) on the same setup.

Imports Ray and MLflow only through :mod:`raynas.tune` and :mod:`raynas.tracking`, lazily.
"""

from __future__ import annotations

from raynas.pipeline.evaluate import EvaluateOptions, EvaluateResult, run_evaluate
from raynas.pipeline.options import Resolved, RunOptions, SearchOptions
from raynas.pipeline.results import SearchResult, rank_records
from raynas.pipeline.retrain import RetrainOptions, RetrainResult, run_retrain
from raynas.pipeline.search import run_search

__all__ = [
    "EvaluateOptions",
    "EvaluateResult",
    "RetrainOptions",
    "Resolved",
    "RetrainResult",
    "RunOptions",
    "SearchOptions",
    "SearchResult",
    "rank_records",
    "run_evaluate",
    "run_retrain",
    "run_search",
]
