"""End-to-end smoke searches on CPU through the real CLI, Ray (local, 127.0.0.1) and MLflow."""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.ray]

SMOKE = [
    # Keep the test inside a few minutes on 2 cores: fewer epochs than the smoke preset.
    "--set",
    "coarse.epochs=2",
    "--set",
    "fine.epochs=2",
    "--set",
    "retrain.epochs=2",
    "--set",
    "coarse.eval_topologies=2",
    "--set",
    "coarse.population=2",
]


def _search(workdir: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    # system metrics of the (short) trials sampled every second
    env = dict(os.environ, PYTHONUNBUFFERED="1", MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL="1")
    return subprocess.run(
        [sys.executable, "-m", "raynas", "search", *args],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _runs(workdir: Path):
    from raynas.tracking import client_for, resolve_tracking_uri

    target = resolve_tracking_uri(None, workdir=workdir)
    client = client_for(target)
    exp = client.get_experiment_by_name("raynas")
    return client.search_runs([exp.experiment_id], max_results=1000)


def _check_best_model(workdir: Path, folder: Path, uri: str, trial: str) -> None:
    """The MLflow model ``uri``, ``models/<trial>.pt`` and the best weights in the named trial's
    own last checkpoint are the same tensors."""
    import torch

    from raynas.tracking import load_pytorch_model, resolve_tracking_uri
    from raynas.tune import load_checkpoint_state

    state = json.loads((folder / "state.json").read_text())
    (record,) = [
        r
        for r in state["records"]["retrain"]
        if f"{r['candidate']}#{r.get('sample', 0)}" == trial
    ]
    own = load_checkpoint_state(record["checkpoint"])["extra"]["best_state"]
    saved = torch.load(folder / "models" / f"{trial}.pt", weights_only=True)
    logged = load_pytorch_model(resolve_tracking_uri(None, workdir=workdir), uri).state_dict()
    assert set(own) == set(saved) == set(logged)
    for key in own:
        assert torch.equal(own[key], saved[key]) and torch.equal(own[key], logged[key]), key


@pytest.mark.parametrize(
    ("space", "dataset"),
    [("c2f", "synthetic"), ("thrifty", "synthetic2d")],
)
def test_smoke_search_end_to_end(tmp_path: Path, space: str, dataset: str) -> None:
    # 7 cases: 1 held out for testing, 4 train and 2 validation cases in fold 0 of 3
    extra = ["--set", "data.synthetic_cases=7", "--set", "data.cases=7", "--set", "data.folds=3"]
    if space == "c2f":  # two trials of every retrain candidate: they must not clobber each other
        extra += ["--set", "retrain.num_samples=2"]
        # Optuna samples the learning rate, so the two trials of a candidate train differently
        extra += ["--set", "retrain.hparams.lr.type=loguniform"]
        extra += ["--set", "retrain.hparams.lr.low=0.001", "--set", "retrain.hparams.lr.high=0.01"]
    if space == "thrifty":
        extra += [
            "--set",
            "data.patch_size=[32, 32, 1]",
            "--set",
            "data.retrain_patch_size=[32, 32, 1]",
        ]
    proc = _search(
        tmp_path, "--space", space, "--dataset", dataset, "--preset", "smoke", *SMOKE, *extra
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Pareto frontier" in proc.stdout and "mlflow ui --backend-store-uri" in proc.stdout
    stopped = int(proc.stdout.split("ASHA stopped ")[1].split()[0])
    # ASHA's asynchronous rule stops a trial below the scores recorded before it at its rung. In
    # the C2F smoke search the first clusters to report score Dice 0 at the first rung and the
    # non-zero ones come later, so nothing is below what was recorded: whether a C2F trial is
    # stopped depends on the order trials report. The Thrifty search prunes at every run.
    if space == "thrifty":
        assert stopped >= 1, "ASHA stopped no trial before its last epoch"

    folder = next((tmp_path / "raynas_runs" / "raynas").iterdir())
    for name in (
        "coarse.csv",
        "fine.csv",
        "retrain.csv",
        "frontier.csv",
        "frontier.png",
        "search.log",
        "state.json",
    ):
        assert (folder / name).is_file(), name
    assert list((folder / "architectures").glob("*.json"))
    # preprocess once: the driver wrote the shared cache before the trials, which read it
    (manifest,) = (tmp_path / "raynas_runs" / "cache").glob(f"{dataset}-*/manifest.json")
    assert f"preprocessed cases: {manifest.parent}" in (folder / "search.log").read_text()
    # the time split per stage, in search.log and in the end-of-search summary
    log = (folder / "search.log").read_text()
    for stage in ("coarse", "fine", "retrain"):
        assert f"{stage} time: " in log and f"{stage} time: " in proc.stdout, stage
    assert "train " in log.split("coarse time: ")[1].splitlines()[0]
    assert list((folder / "models").glob("*.pt"))

    assert "test Dice" in proc.stdout and "val Dice" in proc.stdout
    split = json.loads((folder / "split.json").read_text())
    assert len(split["test"]) == 1 and len(split["val"]) == 2 and len(split["train"]) == 4
    samples = 2 if space == "c2f" else 1
    rows = list(csv.DictReader((folder / "frontier.csv").open()))
    assert {"test_dice", "val_dice", "test_dice_organ", "val_dice_organ"} <= set(rows[0])
    names = sorted(r["trial"] for r in rows)  # the trials' keys (models/<trial>.pt)
    candidates = sorted({n.split("#")[0] for n in names})
    assert names == sorted(f"{c}#{n}" for c in candidates for n in range(samples))
    assert "baseline-unet" in candidates
    # the smoke preset's random control (retrain.random_controls: 1): retrained like the others,
    # kind random in the frontier files and in the plot's legend
    assert "random0" in candidates
    assert {r["kind"] for r in rows if r["trial"].startswith("random0#")} == {"random"}
    # one name per network (issue 25): short, without its size, the same in MLflow
    assert {r["name"] for r in rows if r["trial"] == "baseline-unet#0"} == {"unet-0"}
    front_json = json.loads((folder / "frontier.json").read_text())
    assert {p["kind"] for p in front_json["points"]} >= {"searched", "baseline", "random"}
    assert "random control" in front_json["plot"]["legend"]
    assert front_json["objectives"] == {"val_dice": "max", "params": "min"}
    for name in names:  # one weight file per trial
        assert (folder / "models" / f"{name}.pt").is_file(), name
    if samples == 2:  # two trials of one candidate (other learning rates): other weights
        import torch

        first, second = (
            torch.load(folder / "models" / f"{candidates[-1]}#{n}.pt", weights_only=True)
            for n in (0, 1)
        )
        assert any(not torch.equal(first[k], second[k]) for k in first)

    runs = _runs(tmp_path)
    parents = [r for r in runs if r.data.tags.get("raynas.kind") == "search"]
    assert len(parents) == 1
    parent = parents[0]
    assert parent.data.params["split.n_test"] == "1" and parent.data.params["split.test"] == (
        split["test"][0]
    )
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert {r.data.tags["stage"] for r in children} == {"coarse", "fine", "retrain"}
    assert any(r.data.tags.get("pareto") == "true" for r in children)
    artifacts = {
        a.path
        for a in __import__("mlflow")
        .MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
        .list_artifacts(parent.info.run_id)
    }
    assert {"pareto.csv", "pareto.json", "pareto.png", "split.json"} <= artifacts
    # the UI can chart test Dice against parameters across runs: every retrain run carries them
    retrain = [r for r in children if r.data.tags["stage"] == "retrain"]
    wanted = {"dice", "params", "test_dice", "val_dice", "test_dice_organ", "val_dice_organ"}
    assert retrain and all(wanted <= set(r.data.metrics) for r in retrain)
    assert sorted(r.data.tags["trial"] for r in retrain) == names  # one run per trial
    by_trial = {r.data.tags["trial"]: r for r in retrain}
    for row in rows:  # the test Dice reported is the run's, its pareto tag the row's
        run = by_trial[row["trial"]]
        assert run.info.run_name == row["name"]  # one name in the files and in MLflow
        assert float(row["test_dice"]) == pytest.approx(run.data.metrics["test_dice"])
        assert run.data.tags["pareto"] == row["on_front"].lower()
    # the random control's runs: tag kind=random; the parent: search minus random, by validation
    assert {r.data.tags["kind"] for t, r in by_trial.items() if t.startswith("random0#")} == {
        "random"}
    assert "search_vs_random_val_dice" in parent.data.metrics
    # the best model: a searched trial of the frontier, and exactly that trial's best weights
    # (off the front only when no searched trial is on it: a random control or a baseline can
    # dominate every searched network on validation Dice)
    best = parent.data.tags["best_trial"]
    assert parent.data.tags["best_model"] == by_trial[best].info.run_name
    assert best in names and by_trial[best].data.tags["kind"] == "searched"
    searched_on_front = [r for r in rows if r["kind"] == "searched" and r["on_front"] == "True"]
    assert by_trial[best].data.tags["pareto"] == ("true" if searched_on_front else "false")
    _check_best_model(tmp_path, folder, parent.data.tags["best_model_uri"], best)
    assert by_trial[best].data.tags["model_uri"] == parent.data.tags["best_model_uri"]
    _check_models(tmp_path, retrain, rows)
    split = {f"time_{p}_s" for p in ("train", "data", "eval", "ckpt", "other", "epoch")}
    for run in children:  # logged to MLflow per epoch (stage-prefixed on supernet runs)
        stage = run.data.tags["stage"]
        prefix = "" if stage == "retrain" else f"{stage}/"
        assert {prefix + k for k in split} <= set(run.data.metrics), run.info.run_name
    # no trial ran twice: one MLflow run per Ray trial id
    trial_ids = [r.data.tags["trial_id"] for r in children]
    assert len(trial_ids) == len(set(trial_ids))
    _check_readable(proc, folder, parent, children, tmp_path)


def _check_models(workdir: Path, retrain: list, rows: list[dict]) -> None:
    """Every retrained network is a logged model of its own run (the Models tab lists them):
    its test and validation Dice and parameters attached, a signature, raynas required."""
    import mlflow
    from mlflow.models import Model

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{workdir / 'mlflow.db'}")
    exp = client.get_experiment_by_name("raynas")
    models = {m.model_id: m for m in client.search_logged_models([exp.experiment_id])}
    by_name = {r["trial"]: r for r in rows}
    for run in retrain:
        model = models[run.data.tags["model_uri"].removeprefix("models:/")]
        assert model.source_run_id == run.info.run_id and model.params["trial"] == (
            run.data.tags["trial"]
        )
        figures = {m.key: m.value for m in model.metrics}
        row = by_name[run.data.tags["trial"]]
        assert model.name == run.info.run_name == row["name"]  # one name per network
        # led by Dice and parameters; the trial's system metrics stay on its run
        assert [m.key for m in model.metrics][:3] == ["val_dice", "test_dice", "params"]
        assert not any(k.startswith("system/") for k in figures)
        assert figures["test_dice"] == pytest.approx(float(row["test_dice"]))
        assert {"val_dice", "params"} <= set(figures)
        package = Path(model.artifact_location.removeprefix("file://"))
        assert "raynas==" in (package / "requirements.txt").read_text()
    mlflow.set_tracking_uri(f"sqlite:///{workdir / 'mlflow.db'}")
    try:
        info = Model.load(retrain[0].data.tags["model_uri"])
    finally:
        mlflow.set_tracking_uri(None)
    assert info.signature is not None and info.saved_input_example_info is not None


def _check_readable(proc, folder: Path, parent, children: list, workdir: Path) -> None:
    """Issue 11: a quiet terminal, readable runs, one metric name per meaning, one link."""
    import re

    import mlflow

    for noise in ("Token authentication", "MLflow database", "Pickle", " INFO "):
        assert noise not in proc.stderr, proc.stderr[-2000:]
    names = [r.info.run_name for r in children]
    assert len(names) == len(set(names)) and max(map(len, names)) <= 40, names
    retrain = [r for r in children if r.data.tags["stage"] == "retrain"]
    short = r"(searched\d+|random\d+|unet|unetpp|dynunet)-\d+"  # the size beside, not inside
    assert all(re.fullmatch(short, r.info.run_name) for r in retrain), names
    for run in children:
        stage, metrics = run.data.tags["stage"], run.data.metrics
        assert "epoch" not in metrics and metrics, run.info.run_name
        if stage != "retrain":  # supernets never share a name with the networks compared
            assert all(k.startswith((f"{stage}/", "system/")) for k in metrics), sorted(metrics)
    if importlib.util.find_spec("psutil") is not None:  # measured in each trial's process
        # a trial of a few seconds may end before its monitor's first sample (the monitor waits
        # for the driver to create the trial's run): some runs, not all, carry them
        measured = {r.info.run_name for r in children
                    if "system/cpu_utilization_percentage" in r.data.metrics}  # fmt: skip
        assert measured, "no trial run has system metrics"
    for run in retrain:
        assert {"val_dice", "params", "params_M", "log10_params"} <= set(run.data.metrics)
        assert run.data.tags["mlflow.note.content"].startswith(f"{run.info.run_name} (")
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{workdir / 'mlflow.db'}")
    parent = client.get_run(parent.info.run_id)
    assert "Pareto frontier" in parent.data.tags["mlflow.note.content"]
    assert {"frontier_size", "best_searched_val_dice", "best_searched_params"} <= set(
        parent.data.metrics
    )
    arts = {a.path for a in client.list_artifacts(retrain[0].info.run_id)}
    assert {"architecture.json", "architecture.png"} <= arts
    assert list((folder / "architectures").glob("*.png"))
    link = re.search(r"http://127\.0\.0\.1:5000/#/experiments/(\d+)/runs\?\S+", proc.stdout)
    assert link and "compareRunsMode=CHART" in link.group(0), proc.stdout[-2000:]
    key = link.group(0).split("viewStateShareKey=")[1]
    exp = client.get_experiment(link.group(1))
    assert parent.info.run_id in exp.tags[f"mlflow.sharedViewState.{key}"]


def test_bad_input_fails_before_any_trial(tmp_path: Path) -> None:
    proc = _search(
        tmp_path,
        "--space",
        "c2f_small",
        "--dataset",
        "msd_task02",
        "--data-root",
        str(tmp_path / "missing"),
        "--preset",
        "smoke",
        timeout=120,
    )
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "missing" in proc.stderr
    assert not (tmp_path / "raynas_runs").exists()

    proc = _search(
        tmp_path,
        "--space",
        "c2f_small",
        "--dataset",
        "synthetic",
        "--preset",
        "smoke",
        "--tracking-uri",
        "http://127.0.0.1:9",
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "127.0.0.1:9" in proc.stderr
    assert not (tmp_path / "raynas_runs").exists()
