"""Orchestration: coarse -> select -> fine -> select -> retrain -> frontier, one Tuner per stage;
``retrain`` / ``baseline`` (one retrain trial) and ``evaluate`` (no Ray) on the same setup.

Imports Ray and MLflow only through :mod:`raynas.tune` and :mod:`raynas.tracking`, lazily.
"""

from __future__ import annotations

from raynas.pipeline.evaluate import EvaluateOptions, EvaluateResult, run_evaluate
from raynas.pipeline.retrain import RetrainOptions, RetrainResult, run_retrain
from raynas.pipeline.search import SearchOptions, SearchResult, rank_records, run_search

__all__ = [
    "EvaluateOptions",
    "EvaluateResult",
    "RetrainOptions",
    "RetrainResult",
    "SearchOptions",
    "SearchResult",
    "rank_records",
    "run_evaluate",
    "run_retrain",
    "run_search",
]
