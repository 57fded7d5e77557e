"""``benchmarks/plan_check.py --smoke-test``: the plan's stage times beside a real search's."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.heavy
@pytest.mark.slow
@pytest.mark.ray
def test_plan_check_smoke_writes_predicted_beside_measured(tmp_path: Path) -> None:
    out = tmp_path / "plan_check.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "plan_check.py"), "--smoke-test",
         "--out", str(out)],
        capture_output=True, text=True, timeout=900, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    data = json.loads(out.read_text())
    assert data["smoke_test"] is True and len(data["stamp"]["commit"]) == 40
    assert isinstance(data["stamp"]["dirty"], bool) and data["stamp"]["code_digest"]
    assert data["stamp"]["dataset_digest"].startswith("synthetic:")
    assert {"plan", "search", "total"} <= set(data["seconds"])
    assert len(data["machine"]["loadavg_before"]) == 3
    assert set(data["stages"]) == {"coarse", "fine", "retrain"}
    for stage in data["stages"].values():
        assert stage["predicted_s"] > 0 and stage["measured_s"] > 0
        assert stage["ratio"] == pytest.approx(stage["predicted_s"] / stage["measured_s"],
                                               rel=0.01)
        assert stage["within_25pct"] == (abs(stage["ratio"] - 1) <= 0.25)
    assert data["target_met"] == all(s["within_25pct"] for s in data["stages"].values())
    # the plan was made for the search that ran: the same epochs
    assert data["plan"]["stages"]["retrain"]["epochs"] == 2


def _module():
    import importlib.util

    path = ROOT / "benchmarks" / "plan_check.py"
    spec = importlib.util.spec_from_file_location("plan_check", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_stage_times_read_the_search_log_and_compare_flags_the_tolerance(tmp_path: Path) -> None:
    log = tmp_path / "search.log"
    log.write_text(
        "2026-12-07 11:12:31,294 INFO raynas.search: resources: 2 CPUs\n"
        "2026-12-07 11:12:38,100 INFO raynas.search: coarse stage: 8 candidates\n"
        "2026-12-07 11:13:08,100 INFO raynas.search: coarse time: 8 trials, 15 s in epochs\n"
        "2026-12-07 11:13:08,200 INFO raynas.search: fine stage: 2 candidates\n"
        "2026-12-07 11:13:18,700 INFO raynas.search: fine time: 2 trials, 4 s in epochs\n"
        "2026-12-07 11:13:18,800 INFO raynas.search: retrain stage: 2 candidates\n"
    )
    mod = _module()
    measured = mod.stage_times(log)
    assert measured == {"coarse": 30.0, "fine": 10.5}  # retrain never finished
    assert mod.stage_splits(log)["fine"] == "fine time: 2 trials, 4 s in epochs"
    plan = {"stages": {"coarse": {"wall_s": 36.0}, "fine": {"wall_s": 14.0},
                       "retrain": {"wall_s": 50.0}}}
    out = mod.compare(plan, measured)
    assert out["coarse"] == {"predicted_s": 36.0, "measured_s": 30.0, "ratio": 1.2,
                             "within_25pct": True}
    assert out["fine"]["within_25pct"] is False  # 14 / 10.5 = 1.33
    assert out["retrain"]["measured_s"] is None and out["retrain"]["within_25pct"] is False
