"""The epochs a program checkpoints at include every epoch where Ray's ASHA may stop a trial,
so a trial stopped by ASHA keeps the checkpoint of its last report (no Ray runtime started)."""

from __future__ import annotations

import pytest

from raynas.stages.timing import asha_milestones


@pytest.mark.parametrize(
    ("grace", "rf", "max_t"),
    [(1, 3.0, 20), (5, 3.0, 40), (20, 2.0, 50), (1, 2.0, 3), (2, 2.5, 30), (3, 3.0, 3)],
)
def test_milestones_are_the_rungs_of_rays_asha(grace, rf, max_t):
    import math

    from ray.tune.schedulers import ASHAScheduler

    scheduler = ASHAScheduler(
        time_attr="training_iteration", metric="dice", mode="max", max_t=max_t,
        grace_period=min(grace, max_t), reduction_factor=rf,
    )  # fmt: skip
    rungs = {math.ceil(m) for m, _ in scheduler._brackets[0]._rungs}
    assert asha_milestones(grace, rf, max_t) == rungs
