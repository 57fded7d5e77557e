"""How a stage's trials are named: ``<candidate>#<sample>`` (a retrain trial, its weights, its
MLflow run and its frontier row all carry this name)."""

from __future__ import annotations

__all__ = ["trial_name"]


def trial_name(candidate: str, sample: int) -> str:
    """``<candidate>#<sample>``, e.g. ``searched0-a1b2#1``."""
    return f"{candidate}#{int(sample)}"
