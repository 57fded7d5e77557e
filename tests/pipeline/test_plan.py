"""``raynas search --plan`` and the ASHA simulation behind its utilisation figures."""

from __future__ import annotations

import json
import sqlite3

import pytest

from raynas.cli.main import main
from raynas.errors import UserError
from raynas.pipeline.plan import parse_assume_step_s, simulate_asha


def test_milestones_follow_rays_rungs():
    def rungs(max_t, grace, rf):
        return simulate_asha(trials=2, concurrency=1, max_t=max_t, grace_period=grace,
                             reduction_factor=rf).milestones

    assert rungs(40, 5, 3) == [5, 15]
    assert rungs(50, 20, 2) == [20, 40]
    assert rungs(81, 1, 3) == [1, 3, 9, 27]
    assert rungs(5, 5, 3) == []


def test_no_early_stopping_fills_every_slot():
    sim = simulate_asha(trials=16, concurrency=8, max_t=10, grace_period=None, epoch_s=2.0)
    assert sim.utilisation == 1.0
    assert sim.wall_s == pytest.approx(2 * 10 * 2.0)
    assert sim.busy_slot_s == pytest.approx(16 * 10 * 2.0)
    assert sim.stopped == 0


def test_asha_with_one_trial_per_slot_leaves_gpus_idle():
    # 8 trials on 8 slots: every trial ASHA stops frees a slot nothing can use
    sim = simulate_asha(trials=8, concurrency=8, max_t=40, grace_period=5, reduction_factor=3)
    assert sim.milestones == [5, 15]
    assert sim.wall_s == pytest.approx(40.0)  # the first trial at each rung always continues
    assert 1 <= sim.stopped < 8
    assert sim.utilisation < 0.7
    assert sim.epochs_run < 8 * 40


def test_more_trials_than_slots_keep_them_busy():
    few = simulate_asha(trials=8, concurrency=8, max_t=40, grace_period=5, reduction_factor=3)
    many = simulate_asha(trials=64, concurrency=8, max_t=40, grace_period=5, reduction_factor=3)
    assert many.utilisation >= 0.8 > 0.7 > few.utilisation
    assert many.stopped > few.stopped


def test_one_slot_is_always_busy():
    sim = simulate_asha(trials=5, concurrency=1, max_t=9, grace_period=1, reduction_factor=3)
    assert sim.utilisation == pytest.approx(1.0)
    assert sim.wall_s == pytest.approx(sim.busy_slot_s)


def test_assume_step_s_parsing():
    assert parse_assume_step_s(["0.5", "fine=0.25"]) == {
        "coarse": 0.5, "fine": 0.25, "retrain": 0.5
    }
    for bad in (["nope=1"], ["coarse=-1"], ["coarse=nan"], ["x"]):
        with pytest.raises(UserError, match="--assume-step-s"):
            parse_assume_step_s(bad)


def _runs_in(db) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db) as con:
        tables = {r[0] for r in con.execute("select name from sqlite_master where type='table'")}
        return con.execute("select count(*) from runs").fetchone()[0] if "runs" in tables else 0


@pytest.mark.parametrize("assume", [[], ["--assume-step-s", "0.01"]])
def test_plan_starts_nothing_and_reports_every_stage(tmp_path, monkeypatch, capsys, assume):
    import ray

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    argv = ["search", "--space", "c2f_small", "--dataset", "synthetic", "--preset", "smoke",
            "--gpus", "0", "--plan", "--json", "--plan-json", "plan.json", *assume]
    assert main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    saved = json.loads((tmp_path / "plan.json").read_text())
    assert printed == saved
    assert set(saved["stages"]) == {"coarse", "fine", "retrain"}
    for stage in saved["stages"].values():
        assert stage["trials"] >= 1 and stage["steps_per_epoch"] >= 1
        assert stage["flops_per_step"] > 0 and stage["step_s"] > 0
        assert 0 < stage["utilisation"] <= 1
        expected = "--assume-step-s" if assume else "calibrated on"
        assert stage["step_source"].startswith(expected)
    assert saved["stages"]["coarse"]["scoring_patches_per_trial"] > 0
    # nothing started or written: no Ray, no MLflow run, no output folder
    assert not ray.is_initialized()
    assert _runs_in(tmp_path / "mlflow.db") == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plan.json"] + (
        ["mlflow.db"] if (tmp_path / "mlflow.db").exists() else []
    )


def test_plan_validates_as_a_search_does(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    argv = ["search", "--space", "c2f_small", "--dataset", "synthetic", "--preset", "smoke",
            "--plan", "--set", "data.folds=99"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "data.folds" in err
    assert not (tmp_path / "raynas_runs").exists()


def test_msd_task02_8gpu_keeps_eight_gpus_busy(tmp_path, monkeypatch, capsys):
    """The preset's trial counts keep >= 8 trials running in coarse and fine on 8 GPUs, and
    the plan expects >= 85 % GPU-slot utilisation there (step times assumed: no calibration)."""
    from raynas.config import load_preset

    preset = load_preset("msd_task02_8gpu")
    assert preset.coarse.top_k > preset.fine.top_k
    monkeypatch.chdir(tmp_path)
    argv = ["search", "--space", "c2f", "--dataset", "synthetic", "--preset", "msd_task02_8gpu",
            "--gpus", "8", "--plan", "--json", "--assume-step-s", "0.5"]
    assert main(argv) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["gpus_per_trial"] == 1.0
    for name in ("coarse", "fine"):
        stage = plan["stages"][name]
        assert stage["trials"] >= 8 and stage["trials"] % 8 == 0, stage
        assert stage["concurrency"] == 8
        assert stage["utilisation"] >= 0.85
    assert plan["stages"]["coarse"]["steps_per_trial"] >= 10_000
    assert plan["stages"]["retrain"]["trials"] % 8 == 0


def test_coarse_clusters_replaces_the_space_count():
    from raynas.errors import ConfigError
    from raynas.spaces import load_space, load_stage_space

    assert len(load_space("c2f").coarse_candidates()) == 8
    assert len(load_stage_space("c2f", clusters=16).coarse_candidates()) == 16
    assert len(load_stage_space("c2f", clusters=None).coarse_candidates()) == 8
    with pytest.raises(ConfigError, match="coarse.clusters"):
        load_stage_space("thrifty", clusters=4)
