"""The ``asha`` coarse stage on a real local Ray (:func:`raynas.pipeline.asha.run_coarse_asha`,
the benchmark's hook): one stand-alone trial per sampled topology, Ray Tune's ASHA stops some
of them at its rungs, and the survivors are the best by ``coarse.rank_by``, read back from
Ray's own result files."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.ray]

SAMPLES = 6


def _ray_results(folder: Path) -> dict[str, list[dict]]:
    """Every trial's reported rows, from Ray's result.json files (not from raynas' records)."""
    out = {}
    for path in folder.glob("*/result.json"):
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        out[f"{rows[-1]['candidate']}#{rows[-1]['sample']}"] = rows
    return out


def test_asha_coarse_stage_stops_trials_and_keeps_the_best(tmp_path: Path) -> None:
    from raynas.pipeline.asha import run_coarse_asha
    from raynas.pipeline.options import SearchOptions

    old = os.environ.get("RAY_TMPDIR")
    os.environ["RAY_TMPDIR"] = tempfile.mkdtemp(prefix="rna")  # short socket paths
    try:
        result = run_coarse_asha(
            SearchOptions(space="c2f_small", dataset="synthetic", preset="smoke",
                          overrides=[f"coarse.asha_samples={SAMPLES}", "coarse.epochs=3",
                                     "coarse.asha.grace_period=1",
                                     "coarse.asha.reduction_factor=2"],
                          workdir=tmp_path),
            storage_path=tmp_path / "ray", num_cpus=2,
        )  # fmt: skip
    finally:
        if old is None:
            os.environ.pop("RAY_TMPDIR", None)
        else:
            os.environ["RAY_TMPDIR"] = old
    assert result.preset.coarse.strategy == "asha"
    rows = _ray_results(result.folder)
    assert len(rows) == SAMPLES == len(result.trials)
    topologies = {r[-1]["topology"] for r in rows.values()}
    assert len(topologies) == SAMPLES  # distinct sampled topologies, one trial each
    epochs = {name: r[-1]["training_iteration"] for name, r in rows.items()}
    # ASHA (grace 1, rf 2, max_t 3) stopped some trials early and let at least one finish
    assert any(e < 3 for e in epochs.values()) and max(epochs.values()) == 3, epochs
    assert result.stopped_early == sum(e < 3 for e in epochs.values())
    # survivors: coarse.top_k (2) best by the best rank_score (rank_by: loss), ties by params
    best = sorted(rows, key=lambda n: (-max(x["rank_score"] for x in rows[n]),
                                       rows[n][-1]["params"], n))  # fmt: skip
    assert [s.trial for s in result.survivors] == best[:2]
    for s in result.survivors:
        assert s.rank_score == pytest.approx(-min(x["val_loss"] for x in rows[s.trial]))
        assert s.choice == json.loads(rows[s.trial][-1]["choice_json"])
    # compute cost: Ray's time_total_s summed over the trials
    total = sum(r[-1]["time_total_s"] for r in rows.values())
    assert result.trial_seconds == pytest.approx(total) and total > 0
