"""The coarse stage's candidates and survivors, for either ``coarse.strategy`` (no Ray here).

- ``supernet`` (default): one candidate per space candidate (a C2F cluster, a Thrifty
  depth/width); each trial trains the candidate's weight-sharing supernet and reports its pick.
- ``asha``: ``coarse.asha_samples`` distinct choices of the space
  (:meth:`raynas.spaces.SearchSpace.coarse_choices`), drawn with the search seed by
  :func:`raynas.strategy.sample_choices`; each trial trains one stand-alone
  (:class:`raynas.stages.StandaloneCoarseProgram`) and ASHA compares their ``rank_score``.

Survivors (``coarse.top_k``) come from :func:`raynas.strategy.selection.top_k` in both cases:
by the trial's validation Dice (``supernet``, as before), or by its best
:func:`~raynas.strategy.selection.coarse_score` (``asha``: ``coarse.rank_by`` of the
stand-alone network).

Example:
    >>> from raynas.config import load_preset
    >>> from raynas.spaces import load_space
    >>> preset = load_preset("smoke", ["coarse.strategy=asha", "coarse.asha_samples=3"])
    >>> sorted(coarse_candidates(load_space("c2f_small"), preset))  # doctest: +ELLIPSIS
    ['asha0-...', 'asha1-...', 'asha2-...']
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from raynas.pipeline.outputs import slug

__all__ = [
    "STAGE_METRIC",
    "asha_candidates",
    "coarse_candidates",
    "coarse_metric",
    "coarse_score_of",
    "select_survivors",
]

logger = logging.getLogger("raynas.search")

STAGE_METRIC = "dice"  # what ASHA compares in every stage but an asha-strategy coarse stage


def asha_candidates(space: Any, *, samples: int, seed: int) -> dict[str, dict[str, Any]]:
    """``samples`` distinct coarse choices of ``space`` (seeded), keyed ``asha<i>-<label>``;
    each holds its ``label`` and ``choice_json`` (what the fine stage takes of a survivor)."""
    from raynas.stages.coarse import choice_key, choice_label
    from raynas.strategy import sample_choices

    chosen = sample_choices(space.coarse_choices(), samples, seed=seed)
    return {
        f"asha{i}-{slug(choice_label(c))}": {"label": choice_label(c), "choice_json": choice_key(c)}
        for i, c in enumerate(chosen)
    }


def coarse_candidates(space: Any, preset: Any) -> dict[str, dict[str, Any]]:
    """The coarse stage's trials for the preset's ``coarse.strategy``."""
    if preset.coarse.strategy == "asha":
        return asha_candidates(space, samples=preset.coarse.asha_samples, seed=preset.seed)
    return {c.key: {"label": c.key, "params": c.params} for c in space.coarse_candidates()}


def coarse_metric(preset: Any) -> str:
    """The metric ASHA compares in the coarse stage: the stand-alone trials' ``rank_score``
    (``coarse.rank_by``) for ``asha``, else the trials' validation Dice."""
    return "rank_score" if preset.coarse.strategy == "asha" else STAGE_METRIC


def coarse_score_of(preset: Any) -> Callable[[Any], float] | None:
    """What the coarse survivors are ranked by (``None``: the validation Dice): for ``asha``,
    a trial's best ``rank_score`` (missing: never selected)."""
    if preset.coarse.strategy != "asha":
        return None

    def score(candidate: Any) -> float:
        value = candidate.ref.last.get("best_rank_score")
        return float(value) if isinstance(value, int | float) else float("nan")

    return score


def select_survivors(
    stage: str,
    records: list[Any],
    k: int,
    labels: dict[str, str],
    needs: str,
    score: Callable[[Any], float] | None = None,
) -> list[Any]:
    """A stage's ``k`` survivors by the one selection rule (:mod:`raynas.strategy.selection`);
    a record without the field the next stage needs (a trial that never reported its result)
    is never selected. Logs every verdict; raises if no trial is left."""
    from raynas.pipeline.results import candidates
    from raynas.strategy.selection import rank, top_k

    ready = [c for c in candidates(records) if c.ref.last.get(needs)]
    ranked = [c.ref for c in rank(ready, score=score)]
    chosen = [c.ref for c in top_k(ready, k, score=score)]
    for i, r in enumerate(ranked):
        verdict = "selected" if r in chosen else "dropped"
        extra = f" score={r.last.get('best_rank_score'):.4f}" if score is not None else ""
        logger.info(
            "%s selection: #%d %s dice=%.4f%s params=%s status=%s -> %s",
            stage,
            i + 1,
            labels.get(r.candidate, r.candidate),
            r.best_dice,
            extra,
            r.last.get("params"),
            r.status,
            verdict,
        )
    for r in records:
        if r not in ranked:
            logger.info("%s selection: %s failed (%s) -> dropped", stage, r.candidate, r.error)
    if not chosen:
        raise RuntimeError(f"{stage} stage: every trial failed; see the log and the MLflow runs")
    return chosen
