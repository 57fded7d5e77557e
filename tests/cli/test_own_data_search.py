"""A user's own folder, end to end through the installed console script: ``datasets check``,
``datasets plan`` and a smoke ``search`` on each layout (MSD folder, .nii.gz, 1 channel;
nnU-Net v2 folder, .nrrd, 2 channels and 3 classes; MONAI datalist), then ``evaluate`` of the
searched network on the nnU-Net folder. Tiniest settings: one trial per stage, one step per
epoch, 5 cases of 24x24x12 voxels.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from msd_writer import write_msd
from own_data import write_datalist, write_nnunet

pytestmark = [pytest.mark.slow, pytest.mark.ray, pytest.mark.heavy]

RAYNAS = str(Path(sys.executable).with_name("raynas"))
TINY = [
    "--space", "c2f", "--preset", "smoke",
    "--set", "coarse.clusters=1", "--set", "coarse.top_k=1", "--set", "fine.top_k=1",
    "--set", "coarse.epochs=1", "--set", "fine.epochs=1", "--set", "fine.warmup_epochs=0",
    "--set", "retrain.epochs=1", "--set", "coarse.eval_topologies=2",
    "--set", "coarse.population=2", "--set", "coarse.steps_per_epoch=1",
    "--set", "fine.steps_per_epoch=1", "--set", "retrain.steps_per_epoch=1",
    "--set", "retrain.baselines=[]", "--set", "data.folds=2",
]  # fmt: skip


def _raynas(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("RAY_ADDRESS", None)
    proc = subprocess.run([RAYNAS, *args], cwd=workdir, env=env, capture_output=True, text=True,
                          timeout=600, stdin=subprocess.DEVNULL)  # fmt: skip
    assert proc.returncode == 0, (args, proc.stdout[-3000:], proc.stderr[-3000:])
    return proc


def _layouts(base: Path) -> dict[str, tuple[list[str], int, int]]:
    """layout -> (the --dataset arguments, channels, classes)."""
    msd = write_msd(base / "Task77_Own", cases=5, shape=(24, 24, 12), seed=1)
    nn = write_nnunet(base / "Dataset502_Two", cases=5, ending=".nrrd", channels=("T2", "ADC"),
                      labels=("background", "zone a", "zone b"))  # fmt: skip
    listed = write_datalist(base / "dl", cases=5)
    return {
        "msd": ([str(msd)], 1, 2),
        "nnunet": ([str(nn)], 2, 3),
        "datalist": ([str(listed), "--data-root", str(base / "dl")], 1, 2),
    }


@pytest.mark.parametrize("layout", ["msd", "nnunet", "datalist"])
def test_check_plan_search_on_own_folder(tmp_path: Path, layout: str) -> None:
    dataset, channels, classes = _layouts(tmp_path / "data")[layout]
    work = tmp_path / "work"
    work.mkdir()
    check = _raynas(work, "datasets", "check", dataset[0], *dataset[1:])
    assert f"5 case(s), 5 ok, 0 bad; {channels} channel(s)" in check.stdout
    plan = _raynas(work, "datasets", "plan", dataset[0], *dataset[1:], "--out", "plan.json")
    written = json.loads((work / "plan.json").read_text())
    assert written["patch"]["search"] == [32, 32, 16]
    assert "patches:   search 32x32x16" in plan.stdout
    assert len(written["fingerprint"]["intensity"]) == channels

    search = _raynas(work, "search", "--dataset", *dataset, *TINY)
    assert "Pareto frontier" in search.stdout
    # the search planned the same values and keeps the plan beside the preprocess cache
    (cached,) = (work / "raynas_runs" / "cache").glob("plan-*.json")
    same = json.loads(cached.read_text())
    assert same["spacing"] == written["spacing"] and same["patch"] == written["patch"]
    (manifest,) = (work / "raynas_runs" / "cache").glob("*/manifest.json")
    made = json.loads(manifest.read_text())
    assert made["settings"]["spacing"] == written["spacing"]["target"]
    assert all(c["shape"][0] == channels for c in made["cases"].values())
    folder = next((work / "raynas_runs" / "raynas").iterdir())
    rows = list(csv.DictReader((folder / "frontier.csv").open()))
    keys = ["organ"] if layout == "msd" else ["zone_a", "zone_b"] if classes == 3 else ["class1"]
    assert {f"test_dice_{k}" for k in keys} | {f"val_dice_{k}" for k in keys} <= set(rows[0])
    if layout != "nnunet":
        return
    _check_mlflow_per_class(work, keys)
    (model,) = (folder / "models").glob("searched*.pt")  # beside the random control's
    out = _raynas(work, "evaluate", str(model), "--dataset", *dataset, *TINY[2:4], "--json",
                  "--set", "data.folds=2")  # fmt: skip
    scored = json.loads(out.stdout)
    assert set(scored["per_class"]) == {"zone a", "zone b"} and scored["cases"] == 1


def _check_mlflow_per_class(work: Path, keys: list[str]) -> None:
    from raynas.tracking import client_for, resolve_tracking_uri

    client = client_for(resolve_tracking_uri(None, workdir=work))
    exp = client.get_experiment_by_name("raynas")
    runs = client.search_runs([exp.experiment_id], "tags.stage = 'retrain'")
    assert runs
    for run in runs:
        wanted = {f"test_dice_{k}" for k in keys} | {"val_dice_class_1", "val_dice_class_2"}
        assert wanted <= set(run.data.metrics), sorted(run.data.metrics)
