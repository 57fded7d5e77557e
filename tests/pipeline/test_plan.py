"""``raynas search --plan``: the ASHA simulation, the counts it models from the stage programs,
and the calibration through the real trial program."""

from __future__ import annotations

import ast
import json
import math
import sqlite3
from pathlib import Path

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
        expected = "--assume-step-s" if assume else "calibrated on cpu (1 thread"
        assert stage["step_source"].startswith(expected)
        if not assume:  # the real trial program: set-up, steps, scoring, checkpoint, and the
            # slow-down of 2 trials on the cores measured with a neighbour training beside it
            costs = stage["costs"]
            assert costs["setup_s"] > 0 and costs["ckpt_s"] > 0 and costs["score_s"] > 0
            assert stage["trial_s"] > costs["setup_s"] + stage["epochs"] * costs["step_s"]
            assert stage["concurrency"] == 2 and len(stage["sharing"]) == 2
            assert stage["sharing"][0] == 1.0 and stage["sharing"][1] >= 1.0
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


def _plan(tmp_path, monkeypatch, capsys, *args: str, preset: str = "smoke",
          space: str = "c2f_small", assume: str = "0.01") -> dict:
    monkeypatch.chdir(tmp_path)
    argv = ["search", "--space", space, "--dataset", "synthetic", "--preset", preset, "--plan",
            "--json", *(["--assume-step-s", assume] if assume else []), *args]
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_a_step_holds_batch_times_samples_per_case_patches(tmp_path, monkeypatch, capsys):
    """The loader's batch holds batch_size cases x samples_per_case patches: a pass over the
    fold is ceil(cases / batch_size) steps, each costing batch x samples patches."""
    plan = _plan(tmp_path, monkeypatch, capsys, "--set", "data.samples_per_case=3",
                 "--set", "retrain.steps_per_epoch=null", "--set", "data.batch_size=2")
    retrain = plan["stages"]["retrain"]
    # smoke: 8 cases (2 held out for testing), fold 0 of 4 -> 4 training cases; 2 per batch
    # -> 2 steps of 6 patches
    assert retrain["steps_per_epoch"] == 2
    assert retrain["patches_per_step"] == 6
    assert retrain["flops_per_step"] == 3 * retrain["flops_forward"] * 6


def test_sliding_window_scoring_uses_the_stages_own_patch(tmp_path, monkeypatch, capsys):
    """Search stages score with their search patch, overlap 0.25 and 2 windows per forward
    (StageProgram.evaluate); only retrain uses the retrain patch and its sw settings."""
    def window_forwards(volume, roi, overlap):  # MONAI's dense_patch_slices count
        return math.prod(1 if v <= p else math.ceil((v - p) / int(p * (1 - overlap))) + 1
                         for v, p in zip(volume, roi, strict=True))

    plan = _plan(tmp_path, monkeypatch, capsys, "--set", "fine.scoring=sliding_window")
    fine, retrain = plan["stages"]["fine"], plan["stages"]["retrain"]
    volume = (96, 96, 64)  # twice the synthetic retrain patch (48, 48, 32)
    val_cases = 2
    windows = window_forwards(volume, (32, 32, 16), 0.25)
    retrain_windows = window_forwards(volume, (48, 48, 32), 0.25)
    assert windows != retrain_windows
    assert fine["scoring"] == "sliding_window"
    assert fine["scoring_forwards_per_trial"] == (
        fine["scorings_per_trial"] * val_cases * math.ceil(windows / 2)
    )
    assert retrain["scoring_forwards_per_trial"] == 40 * val_cases * math.ceil(retrain_windows / 2)


def test_coarse_scorings_follow_the_program(tmp_path, monkeypatch, capsys):
    """eval_topologies per scored epoch (every eval_every, rungs, the last) plus the
    evolution's new scores, bounded by the cluster's size."""
    plan = _plan(tmp_path, monkeypatch, capsys, "--set", "coarse.epochs=4",
                 "--set", "coarse.eval_every=2", "--set", "coarse.asha.enabled=false",
                 "--set", "coarse.eval_topologies=2", "--set", "coarse.population=4",
                 "--set", "coarse.generations=1")
    # epochs 1 (first), 2 and 4 score 2 topologies; evolution: (4 - 2) + 1 * 2 = 4 new ones
    assert plan["stages"]["coarse"]["scorings_per_trial"] == 3 * 2 + 4


def test_every_retrain_sample_counts(tmp_path, monkeypatch, capsys):
    """retrain.num_samples repeats every candidate (tune.stage.grid_slots), hparams or not."""
    plan = _plan(tmp_path, monkeypatch, capsys, "--set", "retrain.num_samples=2")
    # 1 searched + 1 random control (smoke) + unet, 2 samples each
    assert plan["stages"]["retrain"]["trials"] == (1 + 1 + 1) * 2


def test_gpu_hours_count_the_gpus_the_trials_hold(tmp_path, monkeypatch, capsys):
    """16 GPUs, 8 fine trials: 8 GPUs are held, not 16."""
    plan = _plan(tmp_path, monkeypatch, capsys, "--gpus", "16", preset="msd_task02_8gpu",
                 space="c2f", assume="0.5")
    fine = plan["stages"]["fine"]
    assert fine["trials"] == 8 and fine["concurrency"] == 8
    assert fine["gpu_hours"] == pytest.approx(fine["wall_h"] * 8, rel=0.01)


def test_trials_sharing_cpu_cores_slow_each_other_down():
    alone = simulate_asha(trials=4, concurrency=4, max_t=2, grace_period=None, epoch_s=1.0)
    shared = simulate_asha(trials=4, concurrency=4, max_t=2, grace_period=None, epoch_s=1.0,
                           cores=2, threads=1)
    assert alone.wall_s == pytest.approx(2.0)
    assert shared.wall_s == pytest.approx(4.0)  # 4 one-thread trials on 2 cores


def test_trial_start_and_per_trial_epochs_are_simulated():
    # 3 trials on 2 slots: a slow one (start 5 s, epochs of 2 s), two fast ones
    sim = simulate_asha(trials=3, concurrency=2, max_t=2, grace_period=None,
                        epoch_s=[[2.0, 2.0], [1.0, 1.0], [1.0, 1.0]], start_s=[5.0, 0.0, 0.0])
    assert sim.wall_s == pytest.approx(9.0)  # the slow trial: 5 + 2 + 2
    assert sim.busy_slot_s == pytest.approx(9.0 + 2.0 + 2.0)


def test_plan_modules_import_no_private_names():
    root = Path(__file__).resolve().parents[2] / "raynas" / "pipeline"
    for path in sorted(root.glob("plan*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("raynas"):
                private = [a.name for a in node.names if a.name.startswith("_")]
                assert not private, f"{path.name} imports {private} from {node.module}"
