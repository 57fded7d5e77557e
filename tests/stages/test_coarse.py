"""CoarseProgram on tiny synthetic data: what each epoch scores, ranks and reports.

A C2F cluster of ``c2f_small`` (8 topologies) trains at width 2 on 4 cases of 32x32x16 (16^2x8
patches); each epoch scores topologies on the 2 validation volumes with the shared weights.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import torch
from stage_specs import through_disk, tiny_spec, tiny_thrifty_space

from raynas.stages import CoarseProgram, choice_key

pytestmark = pytest.mark.slow

# every epoch scores (the default preset scores every 2nd: eval_every is tested in
# tests/stages/test_time_split.py)
PATCH = ["data.patch_size=[16,16,8]", "coarse.eval_every=1"]


class Recording(CoarseProgram):
    """The real program; remembers which choice each (real) score was measured at, per epoch."""

    def __init__(self, spec: Any) -> None:
        super().__init__(spec)
        self.measured: list[list[tuple[str, float]]] = []

    def run_epoch(self) -> dict[str, Any]:
        self.measured.append([])
        return super().run_epoch()

    def _score(self, choice: dict[str, Any]) -> float:
        dice = super()._score(choice)
        self.measured[-1].append((choice_key(choice), dice))
        return dice


def _coarse(root, *overrides: str, cls: type[CoarseProgram] = Recording, key: str = "cluster0"):
    spec = tiny_spec("coarse", root, candidate={"key": key}, overrides=[*PATCH, *overrides])
    return cls(spec)


def test_each_epoch_ranks_only_scores_measured_with_its_weights(synthetic_root):
    program = _coarse(synthetic_root, "coarse.epochs=4", "coarse.eval_topologies=3",
                      "coarse.population=3", "coarse.generations=1")
    assert len(program.choices) == 8
    for _ in range(program.epochs):
        metrics = program.run_epoch()
        this_epoch = dict(program.measured[-1])
        assert len(this_epoch) == len(program.measured[-1])  # no choice scored twice
        # nothing from an earlier epoch (other weights) is kept, ranked or reported
        assert program.scores == this_epoch
        assert metrics["choice_json"] in this_epoch
        assert this_epoch[metrics["choice_json"]] == max(this_epoch.values())  # rank_by: loss
        assert metrics["dice"] == program.dices[metrics["choice_json"]]
        assert metrics["evaluated"] == len(this_epoch)
        assert metrics["topology"] == json.loads(metrics["choice_json"])["topology"]
        best = json.loads(metrics["choice_json"])
        assert metrics["params"] == program.model.param_count(best)


def test_leaders_of_one_epoch_are_scored_first_in_the_next(synthetic_root):
    program = _coarse(synthetic_root, "coarse.epochs=3", "coarse.eval_topologies=4")
    for _ in range(program.epochs - 1):  # the last epoch adds the evolution
        program.run_epoch()
    first, second = program.measured
    assert len(first) == len(second) == 4
    ranked = sorted(first, key=lambda kv: (-kv[1], program.order[_genome(program, kv[0])]))
    assert [k for k, _ in second[:2]] == [k for k, _ in ranked[:2]]
    assert len({k for k, _ in second[2:]} & {k for k, _ in second[:2]}) == 0


def _genome(program: CoarseProgram, key: str) -> tuple[str, ...]:
    return next(g for g, c in program.by_genome.items() if choice_key(c) == key)


def test_last_epoch_evolves_within_its_budget(synthetic_root):
    program = _coarse(synthetic_root, "coarse.epochs=1", "coarse.eval_topologies=2",
                      "coarse.population=3", "coarse.generations=1")
    metrics = program.run_epoch()
    (scored,) = program.measured
    keys = [k for k, _ in scored]
    # 2 this epoch, then the evolution: 1 to fill the population + 1 child per generation
    assert len(keys) == len(set(keys)) == 2 + 1 + 1
    assert metrics["evaluated"] == 4 and program.finished
    assert dict(scored)[metrics["choice_json"]] == max(d for _, d in scored)


def test_state_round_trip_keeps_scores_rng_and_the_next_epochs_choices(synthetic_root):
    options = ("coarse.epochs=3", "coarse.eval_topologies=3")
    a = _coarse(synthetic_root, *options)
    a.run_epoch()
    state = through_disk(a.state_dict())
    b = _coarse(synthetic_root, *options)
    b.load_state_dict(state)
    assert (b.epoch, b.best_dice, b.scores) == (a.epoch, a.best_dice, a.scores)
    assert b.rng.getstate() == a.rng.getstate()
    for name, tensor in a.model.state_dict().items():
        assert torch.equal(b.model.state_dict()[name], tensor), name
    b.measured.append([])  # b's recorder starts at the loaded epoch
    a.run_epoch()
    b.run_epoch()
    # the same topologies are trained and scored in the same order (the leaders, then draws)
    assert [k for k, _ in a.measured[-1]] == [k for k, _ in b.measured[-1][-3:]]


def test_state_round_trip_gives_the_same_next_epoch(synthetic_root):
    options = ("coarse.epochs=3", "coarse.eval_topologies=2")
    a = _coarse(synthetic_root, *options, cls=CoarseProgram)
    a.run_epoch()
    state = through_disk(a.state_dict())
    b = _coarse(synthetic_root, *options, cls=CoarseProgram)
    b.load_state_dict(state)
    def measured(metrics: dict[str, Any]) -> dict[str, Any]:  # what was trained and scored
        return {k: v for k, v in metrics.items() if not k.startswith("time_")}

    assert measured(a.run_epoch()) == measured(b.run_epoch())


def test_unknown_candidate_lists_the_valid_ones(synthetic_root):
    with pytest.raises(ValueError, match="unknown coarse candidate 'cluster9'; valid: cluster0"):
        _coarse(synthetic_root, key="cluster9", cls=CoarseProgram)


def test_thrifty_candidate_trains_and_reports_its_own_choice(synthetic2d_root, tmp_path):
    spec = tiny_spec(
        "coarse", synthetic2d_root, candidate={"key": "d2_w4"},
        space=tiny_thrifty_space(tmp_path), dataset="synthetic2d",
        overrides=["coarse.epochs=1", "data.patch_size=[32,32,1]"],
    )  # fmt: skip
    program = Recording(spec)
    metrics = program.run_epoch()
    assert json.loads(metrics["choice_json"]) == {"depth": 2, "width": 4}
    assert metrics["params"] == program.model.param_count() > 0
    assert [k for k, _ in program.measured[0]] == [metrics["choice_json"]]
    assert 0.0 <= metrics["dice"] <= 1.0 and program.finished


def test_rank_by_loss_orders_by_validation_loss_and_reports_the_picks_dice(synthetic_root):
    program = _coarse(synthetic_root, "coarse.epochs=2", "coarse.eval_topologies=3",
                      "coarse.population=3", "coarse.generations=1", "coarse.rank_by=loss")
    by_dice = _coarse(synthetic_root, "coarse.epochs=2", "coarse.eval_topologies=3",
                      "coarse.population=3", "coarse.generations=1", "coarse.rank_by=dice")
    for _ in range(program.epochs):
        metrics = program.run_epoch()
        this_epoch = dict(program.measured[-1])
        assert program.scores == this_epoch and set(program.dices) == set(this_epoch)
        # the rank score is minus the validation loss on the scoring patches
        first = json.loads(next(iter(this_epoch)))
        program.model.set_active(first)
        again = program.score(loss=True)
        assert this_epoch[choice_key(first)] == pytest.approx(-again.loss)
        assert program.dices[choice_key(first)] == pytest.approx(again.dice)
        pick = metrics["choice_json"]
        assert this_epoch[pick] == max(this_epoch.values())  # the lowest loss is picked
        assert metrics["val_loss"] == pytest.approx(-this_epoch[pick])
        assert metrics["dice"] == program.dices[pick]  # the trial reports the pick's Dice
        plain = by_dice.run_epoch()
        assert "val_loss" not in plain and plain["dice"] == by_dice.scores[plain["choice_json"]]
    state = through_disk(program.state_dict())
    again = _coarse(synthetic_root, "coarse.epochs=2", "coarse.rank_by=loss")
    again.load_state_dict(state)
    assert (again.scores, again.dices) == (program.scores, program.dices)
