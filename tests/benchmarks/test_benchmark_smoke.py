"""Every benchmark runs with ``--smoke-test`` and writes its results file (CI runs these)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

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
        ("gpu_check.sh", lambda d: d["pcdarts"]["runs"] and _split_ok(d["trials"]["amp_on"])),
        ("search_validity.py", lambda d: "kendall_tau" in d["seeds"][0]["coarse"]["by_budget"]["2"]
         and len(d["seeds"][0]["random"]) == 2 and "percentile" in d["summary"]
         and "unet_minus_flat_per_class" in d["summary"]
         and "kendall_tau" in d["summary"]["compare_sampling"]["uniform"]["2"]
         and len(d["seeds"][0]["fine"]["snapshots"]) >= 1),
    ],
)
def test_benchmark_smoke(tmp_path: Path, script: str, check) -> None:
    out = tmp_path / "result.json"
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
