"""Logical GPUs: a local Ray that declares 8 GPUs (CPU compute) runs 8 trials of a stage at once,
one GPU each, sized the way a search sizes them (``raynas.pipeline.cluster.size_trials``) and
scheduled by the stage's own Tuner (``raynas.tune.stage._tuner``)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.ray]


def test_eight_trials_run_at_once_one_gpu_each(tmp_path):
    import os

    os.environ["RAY_TMPDIR"] = tempfile.mkdtemp(prefix="rng")
    import ray
    from ray import tune

    from raynas.config import load_preset
    from raynas.pipeline.cluster import size_trials
    from raynas.tune import RayRuntime, StageRequest, init_ray, shutdown_ray
    from raynas.tune.stage import _tuner

    barrier = tmp_path / "started"
    barrier.mkdir()
    folder = str(barrier)

    def _trial(config):  # runs in a Ray worker (nested: pickled by value, not by module name)
        import os
        import time

        import ray
        from ray import tune

        start = time.time()
        gpu_ids = [str(g) for g in ray.get_gpu_ids()]
        open(os.path.join(folder, config["candidate"]), "w").close()
        seen = 0
        while time.time() - start < 90:  # wait (bounded) until all 8 trials have started
            seen = len(os.listdir(folder))
            if seen >= 8:
                break
            time.sleep(0.2)
        time.sleep(0.5)
        tune.report({"dice": 0.5, "start": start, "end": time.time(), "seen": seen,
                     "gpus": ",".join(gpu_ids)})

    ray.init(num_cpus=2, num_gpus=8, _node_ip_address="127.0.0.1", include_dashboard=False,
             log_to_driver=False)
    runtime = init_ray(None)  # joins the Ray just started; shutdown_ray stops exactly it
    runtime = RayRuntime(None, runtime.cpus, runtime.gpus, True)
    try:
        assert runtime.gpus == 8

        preset = load_preset("msd_task02_8gpu")
        setup = size_trials(runtime, cpus_per_trial=0.25,  # 8 trials on 2 CPUs
                            gpus_per_trial=preset.resources.gpus_per_trial, gpus=8)
        assert (setup.gpus_per_trial, setup.max_concurrent) == (1.0, 8)
        request = StageRequest(
            stage="coarse", spec={}, candidates={f"c{i}": {} for i in range(8)}, epochs=1,
            storage_path=Path(tmp_path), cpus_per_trial=setup.cpus_per_trial,
            gpus_per_trial=setup.gpus_per_trial, max_concurrent=setup.max_concurrent,
            max_failures=0,
        )  # fmt: skip
        trainable = tune.with_resources(_trial, {"cpu": 0.25, "gpu": setup.gpus_per_trial})
        results = _tuner(request, trainable).fit()
        rows = [r.metrics for r in results]
        assert len(rows) == 8 and all(r.get("gpus") for r in rows), rows
        gpus = [r["gpus"] for r in rows]
        assert all(len(g.split(",")) == 1 for g in gpus)  # one GPU each
        assert len(set(gpus)) == 8  # eight different GPUs
        assert all(r["seen"] == 8 for r in rows)  # each saw the 8 running
        latest_start = max(r["start"] for r in rows)
        earliest_end = min(r["end"] for r in rows)
        assert latest_start < earliest_end  # all eight were running at the same moment
    finally:
        shutdown_ray(runtime)
