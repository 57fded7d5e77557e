"""Every benchmark runs with ``--smoke-test`` and writes its results file (CI runs these)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from raynas.bench.provenance import STAMP_KEYS, code_digest

ROOT = Path(__file__).resolve().parents[2]


def _split_ok(run: dict) -> bool:
    """search_cost: both stages report a time split that covers their wall time."""
    for stage in ("coarse", "fine"):
        r = run["stages"][stage]
        if r["steps"] < 1 or r["evals"] < 1 or r["seconds"]["train"] <= 0:
            return False
        if abs(sum(r["seconds"].values()) - r["wall_s"]) > 0.1 * r["wall_s"]:
            return False
        if abs(sum(r["percent"].values()) - 100.0) > 0.5 or "projected" not in r:
            return False
    return True


@pytest.mark.slow
@pytest.mark.parametrize(
    ("script", "check"),
    [
        ("pcdarts_memory.py", lambda d: {r["k"] for r in d["runs"]} >= {1, 4}),
        ("thrifty_vs_baselines.py", lambda d: len(d["models"]) >= 3),
        ("search_cost.py", lambda d: _split_ok(d["after"])),
        ("baselines_learn.py", lambda d: len(d["after"]["rows"]) == 4
         and all(len(r["per_epoch"]) == 2 for r in d["after"]["rows"])),
        ("gpu_check.sh", lambda d: d["pcdarts"]["runs"] and _split_ok(d["trials"]["amp_on"])
         and d["resume"]["fp16"]["verdict"] == "exact"),
        ("proxy_agreement.py", lambda d: d["per_seed"][0]["topologies"] >= 2
         and {"before", "share_0.25"} <= set(d["summary"])
         and all(v[c]["n_valid"] + (v[c]["mean"] is None) >= 1 for v in d["summary"].values()
                 for c in ("loss", "dice"))
         and d["per_seed"][0]["patches"]["share_0.25"]["background"] >= 1),
        ("resume_check.py", lambda d: d["verdict"] == "exact" and d["rerun_exact"]
         and d["setup"].startswith("cpu: fp16 autocast + grad scaler")
         and d["config"]["stage"] == "fine" and d["scalers_in_checkpoint"]["weights"] < 2.0**16),
    ],
)
def test_benchmark_smoke(tmp_path: Path, script: str, check) -> None:
    out = tmp_path / "result.json"
    digest = code_digest()  # the code the benchmark runs
    runner = ["bash"] if script.endswith(".sh") else [sys.executable]
    proc = subprocess.run(
        [*runner, str(ROOT / "benchmarks" / script), "--smoke-test", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    files = [out] if out.is_file() else list(out.glob("*.json"))
    assert files, f"{script} wrote no results"
    data = json.loads(files[0].read_text())
    assert data["smoke_test"] is True
    assert check(data), data
    # every run is stamped by the code that ran (raynas.bench.provenance) and timed per part
    runs = [data] if "stamp" in data else [v for v in data.values() if isinstance(v, dict)
                                           and ("stages" in v or "rows" in v)]
    assert runs, sorted(data)
    for run in runs:
        st = run["stamp"]
        assert set(STAMP_KEYS) <= set(st) and st["code_digest"] == digest, st
        assert run["seconds"]["total"] > 0


def _validity(tmp_path: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "search_validity.py"), "--smoke-test",
         "--out", str(out), *extra],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )  # fmt: skip


@pytest.mark.slow
def test_search_validity_smoke_then_a_coarse_only_rerun_reusing_its_networks(tmp_path: Path):
    first = tmp_path / "first.json"
    proc = _validity(tmp_path, first, "--top-k", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    d = json.loads(first.read_text())
    seed = d["seeds"][0]
    assert d["smoke_test"] is True and len(seed["random"]) == 2 and "percentile" in d["summary"]
    assert "unet_minus_flat_per_class" in d["summary"] and len(seed["fine"]["snapshots"]) >= 1
    # K = 1 of the validation selection is the searched network itself
    assert d["summary"]["selection_by_val"]["1"]["searched"]["mean"] == seed["percentile"]
    assert "kendall_tau" in d["summary"]["compare_sampling"]["uniform"]["2"]
    # --top-k 2: the two best clusters by final coarse score each searched; the pipeline keeps
    # the retrained architecture with the best validation Dice
    top = seed["top_k"]
    assert top["k"] == 2 and len(top["clusters"]) == 2 and top["clusters"][0] == seed["cluster"]
    assert [r["cluster"] for r in top["searched"]] == top["clusters"]
    assert top["searched"][0]["key"] == seed["searched"]["key"]  # the first is not retrained again
    best = max(top["searched"], key=lambda r: (r["val_dice"], -r["params"]))
    assert top["pick"] == best["key"]
    b, others = best["test_dice"], [r["test_dice"] for r in seed["random"]]
    below = sum(o < b for o in others) + 0.5 * sum(o == b for o in others)
    assert top["percentile"] == 100.0 * below / len(others)
    assert d["summary"]["top_k"]["percentile"]["mean"] == top["percentile"]
    targets = set(d["summary"]["targets"])
    assert {"top_k_percentile_ge_75", "top_k_params_le_random_median"} <= targets
    budget = seed["coarse"]["by_budget"]["2"]
    for proxy in (budget, budget["sliding_window"], budget["neg_loss"]):
        assert -1.0 <= proxy["kendall_tau"] <= 1.0
    assert all(v <= 0 for v in budget["neg_loss"]["supernet_score"])  # minus a loss
    # the tau target reads the ranking the stage uses (coarse.rank_by: loss by default)
    assert seed["coarse"]["rank_by"] == "loss" and d["summary"]["coarse_ranked_by"] == "neg_loss"
    # the same recipe again, coarse part only: the stand-alone networks are not trained again
    again = tmp_path / "again.json"
    proc = _validity(tmp_path, again, "--coarse-only", "--standalone-from", str(first))
    assert proc.returncode == 0, proc.stderr[-3000:]
    seed2 = json.loads(again.read_text())["seeds"][0]
    assert "random" not in seed2 and "searched" not in seed2
    rows = seed2["coarse"]["standalone"]
    assert rows and all(r.get("reused") for r in rows)
    assert [r["test_dice"] for r in rows] == [r["test_dice"] for r in seed["coarse"]["standalone"]]
    # the coarse supernet is deterministic too: the same shared-weight scores
    assert seed2["coarse"]["by_budget"]["2"]["supernet_dice"] == budget["supernet_dice"]
    # R = 2 trainings per network: the first is the earlier one (same key), the second is new
    twice = tmp_path / "twice.json"
    proc = _validity(tmp_path, twice, "--coarse-only", "--trainings", "2",
                     "--standalone-from", str(first))
    assert proc.returncode == 0, proc.stderr[-3000:]
    d3 = json.loads(twice.read_text())
    rows3 = d3["seeds"][0]["coarse"]["standalone"]
    for r, earlier in zip(rows3, seed["coarse"]["standalone"], strict=True):
        one, two = r["runs"]
        assert one["reused"] and one["test_dice"] == earlier["test_dice"]
        assert not two.get("reused") and two["key"] == f"{earlier['key']}#t1"
        assert r["test_dice"] == pytest.approx((one["test_dice"] + two["test_dice"]) / 2)
    noise = d3["summary"]["training_noise"]
    assert noise["networks"] == len(rows3) and noise["trainings"] == 2
    assert noise["sd_one_training"] >= 0.0
    # another stand-alone recipe is refused with one line naming the option
    proc = _validity(tmp_path, tmp_path / "x.json", "--coarse-only", "--standalone-from",
                     str(first), "--set", "retrain.lr=0.1")
    assert proc.returncode != 0
    assert "another recipe (retrain.lr=0.1)" in proc.stderr.strip().splitlines()[-1]
