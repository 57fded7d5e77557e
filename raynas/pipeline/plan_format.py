"""The plan's command-line side: ``--assume-step-s`` parsing and the text output.

Example:
    >>> parse_assume_step_s(["0.5", "fine=0.25"])
    {'coarse': 0.5, 'fine': 0.25, 'retrain': 0.5}
"""

from __future__ import annotations

import math
from typing import Any

from raynas.errors import UserError

__all__ = ["STAGES", "parse_assume_step_s", "format_plan"]

STAGES = ("coarse", "fine", "retrain")


def parse_assume_step_s(values: list[str]) -> dict[str, float]:
    """``--assume-step-s 0.4`` (every stage) or ``coarse=0.4`` (repeatable)."""
    out: dict[str, float] = {}
    for text in values:
        stage, sep, value = text.rpartition("=")
        stages = [stage] if sep else list(STAGES)
        if sep and stage not in STAGES:
            raise UserError(f"--assume-step-s {text}: unknown stage {stage!r}; valid: "
                            + ", ".join(STAGES))
        try:
            seconds = float(value)
        except ValueError:
            seconds = float("nan")
        if not (math.isfinite(seconds) and seconds > 0):
            raise UserError(
                f"--assume-step-s {text}: expected seconds > 0 (e.g. 0.4 or coarse=0.4)"
            )
        for s in stages:
            out[s] = seconds
    return out


def _duration(seconds: float) -> str:
    """``42 s``, ``12.5 min`` or ``3.20 h``."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.2f} h"


def format_plan(plan: Any) -> str:
    """A :class:`raynas.pipeline.plan.SearchPlan` as text: one line per stage, then the
    totals."""
    d = plan.to_dict()
    where = (f"{plan.gpus} GPU(s), {plan.gpus_per_trial:g} GPU per trial" if plan.gpus_per_trial
             else f"CPU only, {plan.cores} cores, {plan.cpus_per_trial:g} per trial")
    lines = [f"plan: {plan.space} on {plan.dataset}, preset {plan.preset}, {where} "
             f"(calibration device: {plan.device})"]  # fmt: skip
    for s in plan.stages.values():
        cost = (f"{s.scoring_patches_per_trial:,} proxy patches" if s.scoring == "patches"
                else f"{s.scoring_forwards_per_trial:,} window forwards")
        c = s.costs
        lines.append(
            f"  {s.stage:8s} trials {s.trials}, {s.concurrency} at once, {s.epochs} epochs x "
            f"{s.steps_per_epoch} steps of {s.patches_per_step} patches "
            f"({s.steps_per_trial:,}/trial); {s.scorings_per_trial} scorings ({cost})/trial; "
            f"{s.flops_per_step / 1e9:.1f} GFLOPs/step; step {s.step_s:.4f}s, scoring "
            f"{c.get('score_s', 0):.3f}s, trial start {c.get('setup_s', 0):.1f}s "
            f"({s.step_source}); one trial alone {_duration(s.trial_s)}; ASHA rungs "
            f"{s.asha['milestones']}; slot utilisation {s.utilisation:.0%}; "
            f"wall {_duration(s.wall_s)}, {s.gpu_hours:.2f} GPU-h"
        )
    lines.append(
        f"  coarse + fine: {d['coarse_fine_gpu_hours']:.2f} GPU-h; all stages: "
        f"{d['total_gpu_hours']:.2f} GPU-h, {_duration(3600 * d['total_wall_h'])} wall"
    )
    return "\n".join(lines)
