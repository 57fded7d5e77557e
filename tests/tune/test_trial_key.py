"""The key each trial's seed derives from (no Ray runtime needed)."""

from __future__ import annotations

import pytest

from raynas.stages import TrialSpec
from raynas.tune.trainables import _trial_key


@pytest.mark.parametrize("config,key", [
    ({"candidate": "cluster3"}, "cluster3"),
    ({"candidate": "searched0", "sample": 1}, "searched0#1"),
    ({"candidate": "searched0", "sample": 1, "trial": "searched0#7"}, "searched0#7"),
    ({"candidate": "searched0", "lr": 0.01}, "searched0"),
])
def test_trial_key(config, key):
    assert _trial_key(config) == key


def test_samples_of_one_candidate_get_their_own_seeds():
    def seed(config):
        cand = {"key": config["candidate"], "trial": _trial_key(config)}
        return TrialSpec(stage="retrain", space="c2f", dataset="synthetic", data_root=None,
                         seed=0, preset={}, candidate=cand).trial_seed

    seeds = {seed({"candidate": "searched0", "sample": n}) for n in range(4)}
    assert len(seeds) == 4
