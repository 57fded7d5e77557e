"""search_validity's validation selection: the searched side and random search at the same
retrain count, on hand-made rows (no training)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def sv():
    spec = importlib.util.spec_from_file_location(
        "search_validity", ROOT / "benchmarks" / "search_validity.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _row(val: float, test: float, params: int = 100) -> dict:
    return {"key": f"{val}/{test}", "arch_json": "{}", "val_dice": val, "test_dice": test,
            "params": params}


def test_percentile_counts_ties_half(sv) -> None:
    assert sv.percentile_in(0.5, [0.1, 0.5, 0.9, 0.2]) == pytest.approx(62.5)
    assert sv.percentile_in(1.0, [0.1, 0.2]) == 100.0 and sv.percentile_in(0.0, [0.1]) == 0.0


def test_selection_picks_by_validation_and_averages_random_subsets(sv) -> None:
    record = {
        # the fine search's snapshots, oldest first: the last one (the searched network) is
        # poor, the one before it has the best validation Dice and a good test Dice
        "fine": {"snapshots": [_row(0.9, 0.1), _row(0.8, 0.75), _row(0.3, 0.35)]},
        "random": [_row(0.5, 0.4), _row(0.6, 0.6), _row(0.2, 0.7), _row(0.7, 0.3)],
    }
    sel = sv.selection(record)
    assert list(sel) == ["1", "2", "3"]
    assert sel["1"]["searched"] == 25.0  # 0.35 beats only 0.3
    assert sel["2"]["searched"] == 100.0  # val 0.8 -> test 0.75, above every random one
    assert sel["3"]["searched"] == 0.0  # val 0.9 -> test 0.1: validation misleads here
    # K = 1: a random network against the random ones: 50 on average
    assert sel["1"]["random_search"] == pytest.approx(50.0)
    # K = 2: best-by-val of each of the 6 pairs; e.g. (0.5, 0.4) + (0.6, 0.6) -> 0.6 -> 62.5
    pairs = [62.5, 37.5, 12.5, 62.5, 12.5, 12.5]
    assert sel["2"]["random_search"] == pytest.approx(sum(pairs) / 6)
    # ties in validation Dice: fewer parameters wins
    assert sv.best_by_val([_row(0.5, 0.1, 200), _row(0.5, 0.9, 100)])["test_dice"] == 0.9


def test_summary_reports_selection_by_k(sv) -> None:
    snaps = [_row(0.6, 0.6), _row(0.5, 0.5)]
    rand = [_row(0.5, 0.55), _row(0.4, 0.45)]
    seed = {"coarse": {"by_budget": {}, "rank_by": "loss"}, "fine": {"snapshots": snaps},
            "searched": snaps[-1], "random": rand, "percentile": 50.0,
            "params_vs_random_median": 1.0}
    out = sv.summarize([seed, seed])
    assert out["selection_by_val"]["1"]["searched"]["mean"] == 50.0
    assert out["selection_by_val"]["2"]["searched"]["mean"] == 100.0
    assert out["selection_by_val"]["2"]["random_search"]["mean"] == 75.0


def test_top_k_needs_stage_scope(sv, capsys) -> None:
    assert sv.parse_args(["--top-k", "2"]).top_k == 2  # stage scope is the default
    for argv in (["--top-k", "2", "--scope", "cluster"], ["--top-k", "0"]):
        with pytest.raises(SystemExit) as exc:
            sv.parse_args(argv)
        assert exc.value.code == 2
        assert "--top-k" in capsys.readouterr().err.strip().splitlines()[-1]


# (name, validation Dice, test Dice, params): ties on validation Dice (c, d), a trial without a
# finite Dice (e), a test Dice that would pick otherwise (b has the best test Dice)
SAME_RECORDS = [
    ("a", 0.70, 0.50, 300), ("b", 0.60, 0.95, 100), ("c", 0.80, 0.40, 200),
    ("d", 0.80, 0.10, 150), ("e", float("nan"), 0.99, 10), ("f", 0.75, 0.70, 120),
]


def _records():
    from types import SimpleNamespace

    return [SimpleNamespace(candidate=n, trial=f"{n}#0", status="done", best_dice=v, error=None,
                            last={"params": p, "test_dice": t, "choice_json": "{}",
                                  "arch_json": "{}"})
            for n, v, t, p in SAME_RECORDS]


def test_pipeline_and_benchmark_make_the_same_picks(sv) -> None:
    """The same records through the pipeline's path (trial records: coarse ranking, top-k
    survivors, the retrain stage's best model) and the benchmark's (stand-alone rows) give the
    same picks: both call raynas.strategy.selection, neither has a copy of a rule."""
    from raynas.pipeline.results import rank_records
    from raynas.pipeline.search import _select
    from raynas.strategy.selection import best_model  # what pipeline.finish_search calls
    from raynas.tracking import ParetoPoint

    records = _records()
    rows = [{"key": f"{n}#0", "arch_json": "{}", "val_dice": v, "test_dice": t, "params": p}
            for n, v, t, p in SAME_RECORDS]
    # coarse ranking of the clusters (their best Dice, then parameters)
    finals = {n: {"dice": 0.0, "best_dice": v, "params": p} for n, v, _, p in SAME_RECORDS}
    pipeline_order = [r.candidate for r in rank_records(records)]
    assert sv.coarse_ranking(finals) == pipeline_order == ["d", "c", "f", "a", "b"]
    # survivors (top-k) of a stage
    for k in (1, 2, 3):
        chosen = _select("coarse", records, k, {}, "choice_json")
        assert [r.candidate for r in chosen] == sv.coarse_ranking(finals)[:k]
    # the retrain stage's best model, over searched networks, and random search's pick
    points = [ParetoPoint(f"{n}#0", val_dice=v, params=p, test_dice=t, run_id=n)
              for n, v, t, p in SAME_RECORDS]
    best = best_model(points)
    assert sv.retrain_pick(rows)["key"] == sv.best_by_val(rows)["key"] == best.name == "d#0"
