"""The ``asha`` coarse strategy's pure parts: the preset fields, the seeded choice sampler, the
candidates it gives each space, the stand-alone networks, and the survivors' rank (no Ray)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from raynas.config import load_preset
from raynas.errors import ConfigError
from raynas.pipeline.coarse import asha_candidates, coarse_candidates, coarse_metric
from raynas.spaces import load_space
from raynas.strategy import sample_choices
from raynas.strategy.selection import Candidate, rank, top_k


def test_preset_field_defaults_to_supernet_and_takes_asha() -> None:
    smoke = load_preset("smoke")
    assert smoke.coarse.strategy == "supernet" and load_preset("default").coarse.strategy == (
        "supernet")
    asha = load_preset("smoke", ["coarse.strategy=asha", "coarse.asha_samples=5"])
    assert (asha.coarse.strategy, asha.coarse.asha_samples) == ("asha", 5)
    assert coarse_metric(smoke) == "dice" and coarse_metric(asha) == "rank_score"


@pytest.mark.parametrize("override", ["coarse.strategy=evolution", "coarse.asha_samples=0"])
def test_preset_field_rejects_bad_values(override: str) -> None:
    with pytest.raises(ConfigError, match=override.split("=")[0].replace(".", r"\.")):
        load_preset("smoke", [override])


def test_bad_strategy_is_one_line_exit_2(tmp_path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "raynas", "search", "--space", "c2f_small", "--dataset",
         "synthetic", "--preset", "smoke", "--set", "coarse.strategy=asha_typo"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "coarse.strategy" in lines[0] and "'asha'" in lines[0], lines
    assert not (tmp_path / "raynas_runs").exists()


def test_sample_choices_is_seeded_distinct_and_capped() -> None:
    items = [f"t{i}" for i in range(30)]
    a = sample_choices(items, 8, seed=3)
    assert a == sample_choices(items, 8, seed=3)  # same seed, same draw
    assert len(set(a)) == 8 and set(a) <= set(items)
    assert a != sample_choices(items, 8, seed=4)
    assert sorted(sample_choices(items, 99, seed=0)) == sorted(items)  # all, no repeats
    with pytest.raises(ValueError, match="n must be"):
        sample_choices(items, 0, seed=0)


@pytest.mark.parametrize(("space", "total"), [("c2f_small", 30), ("thrifty_small", 4)])
def test_asha_candidates_are_distinct_choices_of_the_space(space: str, total: int) -> None:
    sp = load_space(space)
    assert len(sp.coarse_choices()) == total
    cands = asha_candidates(sp, samples=6, seed=0)
    choices = [json.loads(c["choice_json"]) for c in cands.values()]
    assert len(cands) == min(6, total)
    assert len({json.dumps(c, sort_keys=True) for c in choices}) == len(choices)  # distinct
    assert all(c in sp.coarse_choices() for c in choices)
    assert cands == asha_candidates(sp, samples=6, seed=0)  # resume samples the same trials
    preset = load_preset("smoke", ["coarse.strategy=asha", "coarse.asha_samples=6", "seed=1"])
    assert coarse_candidates(sp, preset) == asha_candidates(sp, samples=6, seed=1)
    if total > 6:
        assert cands != asha_candidates(sp, samples=6, seed=1)


@pytest.mark.parametrize("space", ["c2f_small", "thrifty_small"])
def test_standalone_network_is_what_the_coarse_supernet_derives(space: str) -> None:
    sp = load_space(space)
    for cand in sp.coarse_candidates()[:2]:
        net = sp.build_coarse_supernet(cand, in_channels=1, out_channels=2, width=4)
        for raw in net.choices()[:3]:
            choice = raw if isinstance(raw, dict) else {"topology": raw}
            arch = sp.coarse_architecture(choice, in_channels=1, out_channels=2, width=4)
            assert arch.to_json() == net.derive(choice).to_json()


def test_survivors_rank_by_the_given_score() -> None:
    """asha ranks by the trials' coarse score (rank_by), not by their Dice; ties: params."""
    a = Candidate("a#0", val_dice=0.9, params=30)  # best Dice, worst loss score
    b = Candidate("b#0", val_dice=0.5, params=20)
    c = Candidate("c#0", val_dice=0.4, params=10)
    score = {"a#0": -0.9, "b#0": -0.3, "c#0": -0.3}
    assert [x.name for x in top_k([a, b, c], 2)] == ["a#0", "b#0"]
    assert [x.name for x in top_k([a, b, c], 2, score=lambda x: score[x.name])] == ["c#0", "b#0"]
    nan = Candidate("n#0", val_dice=0.99, params=1)
    assert [x.name for x in rank([nan, a], score=lambda x: score.get(x.name, float("nan")))] == [
        "a#0"]  # an undefined score is never ranked
