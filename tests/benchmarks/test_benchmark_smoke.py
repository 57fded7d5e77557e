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


def _equal_cost_ok(d: dict) -> bool:
    """equal_cost: stamped, two supernet budgets and asha, the paired summary read the same
    way, every search retrained top_k = 2 networks, a random pool beside."""
    s = d["summary"]
    names = {"supernet@1", "supernet@2", "asha@2"}
    return (
        d["stamp"]["commit"] is not None and d["stamp"]["seeds"] == [0, 1]
        and set(s["strategies"]) == names and s["primary"] == "supernet@2"
        and all(set(s[v]) >= {"hypervolume_diff", "best_test_dice_wins"}
                for v in ("equal_cost", "count_matched"))
        and s["count_matched"]["hypervolume_diff"]["n_seeds"] == 2
        and all(len(r["strategies"][n]["searched"]) == 2 for r in d["seeds"] for n in names)
        and all(len(r["random"]) >= 2 for r in d["seeds"])
        and d["config"]["hv_reference"] == {"test_dice": 0.0, "log10_params": 7.0}
        and len(s["targets"]) == 2 * len(names)
        and any(t["status"] == "stopped" for r in d["seeds"]
                for t in r["strategies"]["asha@2"]["coarse"])  # ASHA stops some trials
    )  # fmt: skip


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
        ("equal_cost.py", lambda d: _equal_cost_ok(d)),
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

