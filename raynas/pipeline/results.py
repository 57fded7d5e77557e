"""What a search returns, and how a stage's trials are ranked (a pure rule, no Ray).

:func:`rank_records` is the selection rule of every stage (coarse -> fine -> retrain) and of the
retrain command; :class:`SearchResult` is what :func:`raynas.pipeline.run_search` returns.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["SearchResult", "rank_records"]


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


def rank_records(records: list[Any]) -> list[Any]:
    """Ranks trials by best Dice (higher first), ties broken by fewer parameters; failed last."""
    ok = [r for r in records if r.status != "failed" and math.isfinite(r.best_dice)]
    return sorted(ok, key=lambda r: (-r.best_dice, int(r.last.get("params", 0)), r.candidate))
