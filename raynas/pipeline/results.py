"""What a search returns, and how a stage's trials are ranked (a pure rule, no Ray).

:func:`rank_records` is the selection rule of every stage (coarse -> fine -> retrain) and of the
retrain command; :class:`SearchResult` is what :func:`raynas.pipeline.run_search` returns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["SearchResult", "candidates", "rank_records"]


@dataclass
class SearchResult:
    folder: Path
    tracking_uri: str
    experiment: str
    parent_run_id: str
    points: list[Any]
    front: list[Any]
    stopped_early: int
    time_split: dict[str, Any] = field(default_factory=dict)  # stage -> split (stages.timing)


def candidates(records: list[Any]) -> list[Any]:
    """Trial records as :class:`raynas.strategy.selection.Candidate` (``ref``: the record): name
    ``<candidate>#<sample>``, validation Dice = the trial's best validation Dice, its parameter
    count; failed trials are left out."""
    from raynas.strategy.selection import Candidate

    return [
        Candidate(
            name=getattr(r, "trial", r.candidate),
            val_dice=float(r.best_dice),
            params=int(r.last.get("params", 0) or 0),
            ref=r,
        )
        for r in records
        if r.status != "failed"
    ]


def rank_records(records: list[Any]) -> list[Any]:
    """Trial records ranked by :func:`raynas.strategy.selection.rank`: best validation Dice
    first, ties broken by fewer parameters, then name; failed trials and trials without a finite
    Dice left out."""
    from raynas.strategy.selection import rank

    return [c.ref for c in rank(candidates(records))]
