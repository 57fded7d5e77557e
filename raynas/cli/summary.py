"""raynas summary (filled in by its owner)."""
from __future__ import annotations


def summary(target: str) -> None:
    """Exact parameters, FLOPs and activation memory of a model."""
