"""raynas.bench.equal_cost on hand-made rows (no training): equal-cost prefixes, the figures of
one seed, the paired summary, and the same picks as the pipeline's selection."""

from __future__ import annotations

import json
import math
import re

import pytest

from raynas.bench.equal_cost import compare, equal_cost_prefix, per_seed, summarize
from raynas.bench.recipe import Recipe, Specs, StageRecord, survivors
from raynas.bench.stats import hypervolume


def _row(key: str, val: float, test: float, params: int, seconds: float = 10.0) -> dict:
    return {"key": key, "arch_json": "{}", "val_dice": val, "test_dice": test,
            "params": params, "seconds": seconds}


SEARCHED = [_row("searched0", 0.60, 0.50, 1000), _row("searched1", 0.70, 0.40, 4000)]
POOL = [_row("random0", 0.50, 0.45, 1100, 10.0), _row("random1", 0.65, 0.60, 9000, 10.0),
        _row("random2", 0.80, 0.10, 500, 30.0), _row("random3", 0.90, 0.90, 1000, 10.0)]


def _record(seconds: float, pool: list[dict] = POOL) -> dict:
    return {"seed": 0, "random": pool, "baselines": {"unet": _row("baseline-unet", .5, .5, 9)},
            "strategies": {"supernet@4": {"searched": SEARCHED, "total_seconds": seconds}}}


def test_equal_cost_is_the_prefix_in_sampling_order_that_fits() -> None:
    assert [r["key"] for r in equal_cost_prefix(POOL, 25.0)] == ["random0", "random1"]
    # random2 (30 s) does not fit in the 15 s left: random search stops there, in order
    assert [r["key"] for r in equal_cost_prefix(POOL, 45.0)] == ["random0", "random1"]
    assert len(equal_cost_prefix(POOL, 60.0)) == 4 and equal_cost_prefix(POOL, 5.0) == []


def test_one_seed_compares_validation_picks_at_test_dice() -> None:
    out = compare(SEARCHED, POOL[:2])
    # the search's pick is its best by validation Dice (searched1, test 0.40), not by test
    best = out["best_test_dice"]
    assert (best["search_key"], best["search"]) == ("searched1", 0.40)
    assert (best["random_key"], best["random"]) == ("random1", 0.60)
    assert best["diff"] == pytest.approx(-0.20)
    # frontiers by validation Dice and params, measured at test Dice
    hv = out["hypervolume"]
    assert hv["search"] == pytest.approx(hypervolume([(0.5, 3.0), (0.4, math.log10(4000))]))
    assert hv["random"] == pytest.approx(hypervolume([(0.45, math.log10(1100)),
                                                       (0.60, math.log10(9000))]))
    assert hv["diff"] == pytest.approx(hv["search"] - hv["random"])
    # matched size: random networks within +-25 % of searched1's 4000 params: none -> null
    assert out["matched_size"] == {"random_within_25pct": 0, "random_mean": None, "diff": None}
    # no random network at all: every random-side figure is null, never 0
    empty = compare(SEARCHED, [])
    assert empty["hypervolume"]["diff"] is None and empty["best_test_dice"]["diff"] is None


def test_summary_pairs_seeds_and_keeps_undefined_out() -> None:
    seeds = [_record(25.0), _record(70.0), _record(5.0)]  # 2, 4 and 0 random networks fit
    comps = [per_seed(s)["supernet@4"] for s in seeds]
    assert [c["equal_cost"]["random_networks"] for c in comps] == [2, 4, 0]
    assert all(c["count_matched"]["random_networks"] == 2 for c in comps)
    out = summarize(seeds, resamples=500)
    assert out["primary"] == "supernet@4"
    eq = out["equal_cost"]
    assert eq == out["strategies"]["supernet@4"]["equal_cost"]
    assert eq["hypervolume_diff"]["n_seeds"] == 2 and eq["hypervolume_diff"]["n_undefined"] == 1
    assert eq["best_test_dice_wins"] == [0, 2]  # 0.40 against 0.60, then against 0.90
    assert len(eq["hypervolume_diff"]["ci95"]) == 2
    assert out["count_matched"]["best_test_dice_wins"] == [0, 3]
    json.dumps(out, allow_nan=False)  # every figure is a number or null


SAME = [("a", 0.70, 300), ("b", 0.60, 100), ("c", 0.80, 200), ("d", 0.80, 150),
        ("e", float("nan"), 10), ("f", 0.75, 120)]


def _specs(*extra: str):
    return Specs(Recipe(top_k=3), seed=0, spatial_dims=3, extra=list(extra))


def test_benchmark_and_pipeline_pick_the_same_survivors() -> None:
    """The same trials through the pipeline's selection (``pipeline.search._select``) and the
    benchmark's (:func:`survivors`): the same top-k, both from strategy.selection."""
    from types import SimpleNamespace

    from raynas.pipeline.search import _select

    mine = [StageRecord(n, v, {"params": p, "choice_json": "{}"}, 1.0) for n, v, p in SAME]
    theirs = [SimpleNamespace(candidate=n, trial=f"{n}#0", status="done", best_dice=v,
                              error=None, last={"params": p, "choice_json": "{}"})
              for n, v, p in SAME]
    picked = [r.candidate for r in survivors(_specs(), "coarse", mine, "choice_json")]
    assert picked == [r.candidate for r in _select("coarse", theirs, 3, {}, "choice_json")]
    assert picked == ["d", "c", "f"]
    # the asha strategy ranks its trials by their best rank score, as the pipeline does
    for r, score in zip(mine, (0.1, 0.9, 0.2, 0.3, 0.5, 0.4), strict=True):
        r.last["best_rank_score"] = score
    asha = survivors(_specs("coarse.strategy=asha"), "coarse", mine, "choice_json")
    assert [r.candidate for r in asha] == ["b", "e", "f"]
    # a trial that never reported what the next stage needs is never a survivor
    with pytest.raises(RuntimeError, match="every trial failed"):
        survivors(_specs(), "coarse", [StageRecord("x", 0.9, {"params": 1}, 1.0)], "choice_json")


def test_the_parameter_aware_rule_keeps_a_smaller_survivor() -> None:
    """survivor_rule "pareto" (the idea tried): the first non-dominated front first."""
    recs = [StageRecord("a", 0.80, {"params": 50, "choice_json": "{}"}, 1.0),
            StageRecord("b", 0.79, {"params": 60, "choice_json": "{}"}, 1.0),  # a dominates b
            StageRecord("c", 0.70, {"params": 10, "choice_json": "{}"}, 1.0)]
    specs = Specs(Recipe(top_k=2), seed=0, spatial_dims=3)
    assert [r.candidate for r in survivors(specs, "coarse", recs, "choice_json")] == ["a", "b"]
    pareto = survivors(specs, "coarse", recs, "choice_json", "pareto")
    assert [r.candidate for r in pareto] == ["a", "c"]
    with pytest.raises(ValueError, match="rule must be"):
        survivors(specs, "coarse", recs, "choice_json", "test")


def test_reuse_needs_the_same_code_retrain_recipe_and_data(tmp_path) -> None:
    """--reuse takes an earlier result's random networks only when the code, the retrain recipe
    and the data are the same; otherwise one line naming what differs (no wrong data)."""
    from raynas.bench.equal_cost import Plan
    from raynas.bench.experiment import reusable_seeds
    from raynas.bench.provenance import stamp
    from raynas.errors import UserError

    def st(plan: Plan, digest: str = "synthetic_hard:ab") -> dict:
        return stamp(plan.to_dict(), dataset="synthetic_hard", dataset_digest=digest, seeds=[0],
                     script="benchmarks/equal_cost.py")

    before = Plan(recipe=Recipe(epochs=20), budgets=(2,))
    path = tmp_path / "earlier.json"
    path.write_text(json.dumps({"stamp": st(before), "seeds": [_record(25.0)]}))
    # another supernet budget or survivor rule: the random pool still stands
    other_search = Plan(recipe=Recipe(epochs=20, survivor_rule="pareto"), budgets=(4, 8))
    assert list(reusable_seeds(path, st(other_search))) == [0]
    for now, why in ((Plan(recipe=Recipe(epochs=30)), "other config (retrain_recipe)"),
                     (before, "other data")):
        with pytest.raises(UserError, match=re.escape(f"not reusable: {why}")):
            reusable_seeds(path, st(now) if why != "other data" else st(now, "synthetic_hard:cd"))
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(UserError, match="cannot read it"):
        reusable_seeds(tmp_path / "bad.json", st(before))
