"""Orchestration: coarse -> select -> fine -> select -> retrain -> frontier, one Tuner per stage.

Imports Ray and MLflow only through :mod:`raynas.tune` and :mod:`raynas.tracking`, lazily.
"""

from __future__ import annotations

from raynas.pipeline.search import SearchOptions, SearchResult, rank_records, run_search

__all__ = ["SearchOptions", "SearchResult", "rank_records", "run_search"]
