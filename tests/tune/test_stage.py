"""``run_stage`` on a real local Ray: a diverging trial ends failed with its reason (no retry)
while the stage goes on; metrics and checkpoints come back; no deprecation warning from raynas."""

from __future__ import annotations

import json
import logging
import tempfile
import warnings
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.ray]


@pytest.fixture(scope="module")
def ray_runtime():
    import os

    os.environ["RAY_TMPDIR"] = tempfile.mkdtemp(prefix="rnt")
    from raynas.tune import init_ray, shutdown_ray

    runtime = init_ray(None, num_cpus=2)
    yield runtime
    shutdown_ray(runtime)  # stops exactly the Ray this test started


class _Collect(logging.Handler):
    """Keeps the messages of Ray Tune's loggers during a stage."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _spec() -> dict:
    from raynas.config import load_preset

    preset = load_preset(
        "smoke",
        [
            "data.synthetic_cases=6",
            "data.cases=6",
            "data.folds=3",
            "retrain.steps_per_epoch=2",
            "retrain.epochs=2",
        ],
    )
    return {
        "stage": "retrain",
        "space": "c2f_small",
        "dataset": "synthetic",
        "data_root": None,
        "seed": 0,
        "preset": preset.model_dump(mode="json"),
        "device": "cpu",
    }


def test_diverging_trial_fails_with_reason_and_stage_goes_on(ray_runtime, tmp_path: Path) -> None:
    from raynas.spaces import load_space
    from raynas.tune import StageRequest, load_checkpoint_state, run_stage

    arch = load_space("c2f_small").sample_architecture(
        seed=0, in_channels=1, out_channels=3, width=4
    )
    candidates = {
        "ok": {"arch_json": arch.to_json()},
        "diverge": {"arch_json": arch.to_json(), "hparams": {"lr": 1e30}},
    }
    request = StageRequest(
        stage="retrain",
        spec=_spec(),
        candidates=candidates,
        epochs=2,
        storage_path=tmp_path,
        cpus_per_trial=1,
        gpus_per_trial=0,
        max_concurrent=2,
        max_failures=2,
    )
    tune_log = _Collect()
    logging.getLogger("ray.tune").addHandler(tune_log)
    # another search's staged state for a stage of the same name, in this Ray session: never
    # signed for this one
    import ray._private.worker as worker

    session = Path(worker._global_node.get_session_dir_path())
    foreign = session / "artifacts" / "2000-01-01_00-00-00" / "retrain" / "driver_artifacts"
    foreign.mkdir(parents=True)
    (foreign / "searcher-state-foreign.pkl").write_bytes(b"not ours")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            records = {r.candidate: r for r in run_stage(request)}
    finally:
        logging.getLogger("ray.tune").removeHandler(tune_log)
    from raynas.tune.guard import DIGEST_FILE, verify_stage

    signed = json.loads((tmp_path / "retrain" / DIGEST_FILE).read_text())["files"]
    assert "searcher-state-foreign.pkl" not in signed and "tuner.pkl" in signed, sorted(signed)
    assert any(name.startswith("experiment_state-") for name in signed), sorted(signed)
    verify_stage(tmp_path / "retrain", request.seal, private_copy=False)
    ours = [
        w
        for w in caught
        if "raynas" in str(w.filename) and issubclass(w.category, DeprecationWarning)
    ]
    assert not ours, [str(w.message) for w in ours]

    assert records["diverge"].status == "failed"
    assert "non-finite" in records["diverge"].error
    assert records["diverge"].iterations == 1  # reported once, not retried

    ok = records["ok"]
    assert ok.status == "done" and ok.iterations == 2
    assert 0.0 <= ok.best_dice <= 1.0 and ok.last["params"] > 0
    # the last report: the best epoch's weights scored once on the held-out test case
    assert 0.0 <= ok.last["test_dice"] <= 1.0 and ok.last["test_volumes"] == 1
    assert ok.last["val_dice"] == ok.best_dice
    assert {"test_dice_organ", "test_dice_lesion", "val_dice_organ"} <= set(ok.last)
    assert ok.trial == "ok#0" and ok.sample == 0
    state = load_checkpoint_state(ok.checkpoint)  # weights_only=True
    assert state["epoch"] == 2 and "best_state" in state["extra"]
    saved = json.loads((Path(ok.checkpoint) / "architecture.json").read_text())
    assert saved["space"] == "c2f"

    # Tune's own per-trial results are written, so ResultGrid found every trial's metrics
    trial_dirs = sorted(p for p in (tmp_path / "retrain").iterdir() if p.is_dir())
    assert len(trial_dirs) == 2
    for trial in trial_dirs:
        assert (trial / "progress.csv").is_file(), trial
    ok_dir = Path(ok.checkpoint).parent
    lines = (ok_dir / "result.json").read_text().splitlines()
    assert [json.loads(line)["training_iteration"] for line in lines] == [1, 2]
    # every result carries the epoch's time split (the MLflow callback logs it as metrics)
    for line in lines:
        result = json.loads(line)
        parts = [result[f"time_{p}_s"] for p in ("train", "data", "eval", "ckpt", "other")]
        assert result["time_train_s"] > 0 and result["time_ckpt_s"] > 0, result
        assert sum(parts) == pytest.approx(result["time_epoch_s"], rel=0.10), result
    assert ok.last["time_total_epoch_s"] >= ok.last["time_epoch_s"] > 0
    assert not [m for m in tune_log.messages if "Failed to fetch metrics" in m], tune_log.messages


def test_optuna_samples_declared_hparams(ray_runtime, tmp_path: Path) -> None:
    """A grid over candidates x num_samples; Optuna samples only the hyper-parameters."""
    from raynas.spaces import load_space
    from raynas.tune import StageRequest, run_stage

    arch = load_space("c2f_small").sample_architecture(
        seed=1, in_channels=1, out_channels=3, width=4
    )
    request = StageRequest(
        stage="retrain",
        spec=_spec(),
        candidates={"net": {"arch_json": arch.to_json()}, "other": {"arch_json": arch.to_json()}},
        epochs=2,
        storage_path=tmp_path,
        cpus_per_trial=1,
        gpus_per_trial=0,
        max_concurrent=2,
        max_failures=0,
        asha={"grace_period": 1, "reduction_factor": 2},
        hparams={
            "lr": {"type": "loguniform", "low": 1e-3, "high": 1e-1},
            "optimizer": {"type": "choice", "values": ["sgd", "adamw"]},
        },
        num_samples=3,
        seed=0,
    )
    records = run_stage(request)
    # every candidate exactly num_samples times, each trial named <candidate>#<n>
    assert sorted(r.trial for r in records) == [
        "net#0", "net#1", "net#2", "other#0", "other#1", "other#2",
    ]  # fmt: skip
    lrs = [r.config["lr"] for r in records]
    assert all(1e-3 <= lr <= 1e-1 for lr in lrs) and len(set(lrs)) >= 5
    centre = {r.trial for r in records if abs(r.config["lr"] - 1e-2) < 1e-12}
    assert centre == {"net#0", "other#0"}  # sample #0 of each candidate: the centre point
    assert {r.config["optimizer"] for r in records} <= {"sgd", "adamw"}
    assert all(r.status in ("done", "stopped") for r in records)


def test_crashed_trial_is_retried_from_its_last_checkpoint(ray_runtime, tmp_path: Path) -> None:
    """Kill the trial's worker process after its first checkpoint: ``FailureConfig`` restarts
    the trial, which resumes from that checkpoint (``iterations_since_restore`` < iterations)."""
    import os
    import threading
    import time

    from procs import pids_with_marker, stop_pids

    from raynas.spaces import load_space
    from raynas.tune import StageRequest, run_stage

    arch = load_space("c2f_small").sample_architecture(
        seed=2, in_channels=1, out_channels=3, width=4
    )
    spec = _spec()
    spec["preset"]["retrain"]["epochs"] = 4
    request = StageRequest(
        stage="retrain",
        spec=spec,
        candidates={"net": {"arch_json": arch.to_json()}},
        epochs=4,
        storage_path=tmp_path,
        cpus_per_trial=1,
        gpus_per_trial=0,
        max_concurrent=1,
        max_failures=2,
    )
    out: dict = {}
    worker = threading.Thread(target=lambda: out.update(records=run_stage(request)))
    worker.start()
    marker = os.environ["RAY_TMPDIR"]
    killed = False
    deadline = time.monotonic() + 300
    while worker.is_alive() and time.monotonic() < deadline and not killed:
        if list(tmp_path.glob("retrain/*/checkpoint_000000")):
            victims = [
                pid
                for pid in pids_with_marker(marker)
                if "ImplicitFunc" in Path(f"/proc/{pid}/cmdline").read_text(errors="ignore")
            ]
            if victims:
                stop_pids(victims, timeout=0.5)
                killed = True
        time.sleep(0.2)
    worker.join(timeout=300)
    assert killed, "found no trial worker to kill"
    (record,) = out["records"]
    assert record.status == "done" and record.iterations == 4
    assert record.last["iterations_since_restore"] < record.last["training_iteration"]
