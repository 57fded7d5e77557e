"""A stage program's per-epoch time split, steps_per_epoch as a target, checkpoint cadence.

Ray-free: the programs are driven as ``raynas/tune/trainables.py`` drives them (run_epoch, then
``write_checkpoint`` when the program wants one) on the tiny synthetic fixture (6 cases).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from raynas.stages.timing import PARTS, asha_milestones

pytestmark = pytest.mark.slow


def _spec(root: Path, stage: str, candidate: dict, overrides: tuple[str, ...] = ()):
    from raynas.config import load_preset
    from raynas.stages import TrialSpec

    preset = load_preset(
        "smoke",
        [
            "data.synthetic_cases=6",
            "data.cases=6",
            "data.folds=3",
            "data.patch_size=[16,16,8]",
            "coarse.epochs=2",
            "coarse.eval_topologies=2",
            "coarse.population=2",
            "coarse.generations=1",
            "coarse.patches_per_case=3",
            *overrides,
        ],
    )
    return TrialSpec(
        stage=stage, space="c2f_small", dataset="synthetic", data_root=str(root), seed=0,
        preset=preset.model_dump(mode="json"), candidate=candidate, device="cpu",
    )  # fmt: skip


def _coarse(root: Path, overrides: tuple[str, ...] = ()):
    from raynas.spaces import load_space
    from raynas.stages import CoarseProgram

    key = load_space("c2f_small").coarse_candidates()[0].key
    return CoarseProgram(_spec(root, "coarse", {"key": key}, overrides))


def test_time_split_is_reported_and_sums_to_the_epoch_time(synthetic_root, tmp_path, monkeypatch):
    import raynas.engine as engine
    from raynas.stages.checkpoint import write_checkpoint

    outside = {"eval": 0.0}
    real = engine.evaluate_patches

    def timed(*args, **kwargs):
        start = time.perf_counter()
        try:
            return real(*args, **kwargs)
        finally:
            outside["eval"] += time.perf_counter() - start

    monkeypatch.setattr(engine, "evaluate_patches", timed)
    program = _coarse(synthetic_root, ("coarse.steps_per_epoch=3",))
    rows = []
    while not program.finished:
        outside["eval"] = 0.0
        start = time.perf_counter()
        metrics = program.run_epoch()
        folder = tmp_path / f"e{program.epoch}"
        folder.mkdir()
        assert program.wants_checkpoint()  # checkpoint_every=1
        write_checkpoint(program, folder, metrics)
        wall = time.perf_counter() - start
        rows.append((metrics, wall, outside["eval"]))
    assert len(rows) == 2
    for metrics, wall, eval_outside in rows:
        parts = {p: metrics[f"time_{p}_s"] for p in PARTS}
        assert all(v >= 0 for v in parts.values()), parts
        assert parts["train"] > 0 and parts["eval"] > 0 and parts["ckpt"] > 0, parts
        assert sum(parts.values()) == pytest.approx(metrics["time_epoch_s"], rel=1e-6)
        assert metrics["time_epoch_s"] == pytest.approx(wall, rel=0.10), (metrics, wall)
        # the scoring the program booked is the scoring measured from outside (the first
        # epoch also builds the patch set, booked as scoring too)
        assert parts["eval"] >= 0.9 * eval_outside, (parts, eval_outside)
        assert metrics["train_steps"] == 3 and metrics["evals"] >= 2
    last = rows[-1][0]
    total = sum(m["time_epoch_s"] for m, _, _ in rows)
    assert last["time_total_epoch_s"] == pytest.approx(total, rel=1e-6)
    assert last["total_train_steps"] == 6
    assert (tmp_path / "e2" / "metrics.json").is_file()


def test_steps_per_epoch_is_a_target_when_the_fold_is_smaller(synthetic_root):
    # 6 cases, 3 folds: 4 training cases, batch 2 -> a pass is 2 batches; ask for 5 steps
    program = _coarse(synthetic_root, ("coarse.steps_per_epoch=5", "coarse.epochs=1"))
    assert len(program.data.bundle.train) == 2
    metrics = program.run_epoch()
    assert metrics["train_steps"] == 5


def test_fine_epochs_score_every_eval_every_and_checkpoint_every(synthetic_root, tmp_path):
    import json

    from raynas.stages import FineProgram

    program = _coarse(synthetic_root)
    choice = json.dumps(program.choices[0], sort_keys=True)
    del program
    spec = _spec(
        synthetic_root, "fine", {"choice_json": choice},
        ("fine.epochs=4", "fine.warmup_epochs=1", "fine.steps_per_epoch=1", "fine.eval_every=3",
         "fine.checkpoint_every=2", "fine.asha.enabled=false", "fine.patches_per_case=2"),
    )  # fmt: skip
    fine = FineProgram(spec)
    evals, wants = [], []
    while not fine.finished:
        metrics = fine.run_epoch()
        evals.append(metrics["evals"])
        wants.append(fine.wants_checkpoint())
    # epoch 1 scores (no score yet), 2 reuses it, 3 is an eval_every epoch, 4 the last
    assert [e > 0 for e in evals] == [True, False, True, True], evals
    assert wants == [False, True, False, True]


@pytest.mark.parametrize(
    ("grace", "rf", "max_t", "expected"),
    [(1, 3.0, 20, {1, 3, 9}), (5, 3.0, 40, {5, 15}), (20, 2.0, 50, {20, 40}), (1, 2.0, 3, {1, 2})],
)
def test_asha_milestones(grace, rf, max_t, expected):
    assert asha_milestones(grace, rf, max_t) == expected
