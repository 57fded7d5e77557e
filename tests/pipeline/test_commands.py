"""``raynas retrain``, ``raynas baseline`` and ``raynas evaluate``: end to end through the real
CLI, Ray (local, 127.0.0.1) and MLflow, and every bad input failing fast with exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

SMALL = [
    "--preset", "smoke", "--set", "retrain.epochs=1", "--set", "data.synthetic_cases=6",
    "--set", "data.cases=6", "--set", "data.folds=3",
]  # fmt: skip


def _raynas(workdir: Path, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run(
        [sys.executable, "-m", "raynas", *args],
        cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def _runs(workdir: Path) -> list:
    from raynas.tracking import client_for, resolve_tracking_uri

    client = client_for(resolve_tracking_uri(None, workdir=workdir))
    exp = client.get_experiment_by_name("raynas")
    return client.search_runs([exp.experiment_id], max_results=100)


def _check_tracked(runs: list, command: str, kind: str) -> Any:
    """One finished parent of ``command`` with one nested retrain run of ``kind``; the parent."""
    parents = [r for r in runs if r.data.tags.get("raynas.kind") == command]
    assert len(parents) == 1 and parents[0].data.tags["command"] == command
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    assert parent.data.metrics["params"] > 0
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == 1
    child = children[0].data
    assert child.tags["stage"] == "retrain" and child.tags["kind"] == kind
    assert "dice" in child.metrics and child.metrics["params"] == parent.data.metrics["params"]
    # scored once on the held-out test case; the parent carries the same numbers
    assert child.metrics["test_dice"] == parent.data.metrics["test_dice"]
    assert child.metrics["val_dice"] == parent.data.metrics["val_dice"]
    assert child.tags["trial"] == parent.data.tags["trial"] == parent.data.tags["best_trial"]
    # one name per network (issue 25): the run, the tag and the logged model
    assert parent.data.tags["best_model"] == children[0].info.run_name
    assert parent.data.tags["best_model_uri"]
    # the network is a logged model of the trial's run (not of the parent), with its figures
    assert child.tags["model_uri"] == parent.data.tags["best_model_uri"]
    # the parent's description: the trained network's summary
    note = parent.data.tags["mlflow.note.content"]
    first = note.splitlines()[0]
    assert first.startswith(f"{children[0].info.run_name} ({kind}): validation Dice "), note
    assert "test Dice" in first and "- space " in note and "###" not in note, note
    (data,) = parent.inputs.dataset_inputs  # the dataset, as an MLflow input of the parent
    assert data.dataset.name == "synthetic" and len(data.dataset.digest) == 16
    return parent


@pytest.fixture(scope="module")
def retrained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    """One ``raynas retrain`` of a tiny sampled C2F architecture (shared by two tests)."""
    work = tmp_path_factory.mktemp("retrain")
    sample = _raynas(work, "spaces", "sample", "c2f_small", "--width", "4", "--classes", "3")
    assert sample.returncode == 0, sample.stderr
    (work / "tiny.json").write_text(sample.stdout)
    return work, _raynas(work, "retrain", "tiny.json", "--dataset", "synthetic", *SMALL)


@pytest.mark.slow
@pytest.mark.ray
def test_retrain_trains_saves_and_tracks(retrained: tuple[Path, subprocess.CompletedProcess]):
    work, proc = retrained
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Dice" in proc.stdout and "params:" in proc.stdout and "mlflow ui" in proc.stdout
    assert "test Dice" in proc.stdout and "validation Dice" in proc.stdout
    folder = work / "raynas_runs" / "raynas" / "retrain_tiny_synthetic_s0"
    models = folder / "models"
    assert (models / "tiny#0.pt").is_file() and (models / "tiny#0.json").is_file()
    assert (folder / "retrain.csv").is_file() and str(models / "tiny#0.pt") in proc.stdout
    split = json.loads((folder / "split.json").read_text())
    assert len(split["test"]) == 1 and not set(split["test"]) & set(split["train"] + split["val"])
    _check_tracked(_runs(work), "retrain", "searched")
    # a quiet first run: the libraries' notices are in search.log, not on the terminal
    log = (folder / "search.log").read_text()
    for noise in ("Token authentication", "MLflow database", "Pickle", " INFO ", "specialized"):
        assert noise not in proc.stderr, proc.stderr[-2000:]
    # the store was created and migrated once, quietly, before Ray (raynas.tracking.store)
    assert (work / "mlflow.db").is_file() and "output folder:" in log


@pytest.mark.slow
@pytest.mark.ray
def test_evaluate_scores_the_retrained_model(retrained: tuple[Path, subprocess.CompletedProcess]):
    work, proc = retrained
    assert proc.returncode == 0, proc.stderr[-3000:]
    model = work / "raynas_runs" / "raynas" / "retrain_tiny_synthetic_s0" / "models" / "tiny#0.pt"
    out = _raynas(work, "evaluate", str(model), "--dataset", "synthetic", *SMALL, "--json")
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout)
    assert 0.0 <= result["dice"] <= 1.0 and set(result["per_class"]) == {"organ", "lesion"}
    assert result["split"] == "test" and result["cases"] == 1  # the held-out case of 6
    # the same best weights, the same test case: the test Dice the retrain trial measured
    assert f"test Dice {result['dice']:.4f}" in proc.stdout
    val = _raynas(work, "evaluate", str(model), "--dataset", "synthetic", *SMALL, "--json",
                  "--split", "val")  # fmt: skip
    assert val.returncode == 0, val.stderr[-3000:]
    val_result = json.loads(val.stdout)
    assert val_result["split"] == "val" and val_result["cases"] == 2  # 5 cases in 3 folds
    assert f"validation Dice {val_result['dice']:.4f}" in proc.stdout  # the best epoch's
    text = _raynas(work, "evaluate", str(model), "--dataset", "synthetic", *SMALL)
    assert text.returncode == 0 and "Dice:" in text.stdout and "organ:" in text.stdout
    assert "1 test volumes" in text.stdout


@pytest.mark.slow
@pytest.mark.ray
def test_baseline_tracked_on_an_mlflow_server(tmp_path: Path) -> None:
    """``--tracking-uri http://...``: a real ``mlflow server`` (127.0.0.1, proxied artifacts)
    receives the parent and nested runs and the logged model, and ``raynas pareto`` reads them
    back from it."""
    import mlflow.artifacts
    import mlflow.pytorch
    from mlflow import MlflowClient
    from procs import mlflow_server

    with mlflow_server(tmp_path / "server") as uri:
        proc = _raynas(tmp_path, "baseline", "--model", "unet", "--dataset", "synthetic", *SMALL,
                       "--set", "retrain.width=4", "--tracking-uri", uri)  # fmt: skip
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        assert f"MLflow:   open {uri}" in proc.stdout
        folder = tmp_path / "raynas_runs" / "raynas" / "baseline_baseline-unet_synthetic_s0"
        arch = json.loads((folder / "models" / "baseline-unet#0.json").read_text())
        assert arch["space"] == "unet" and arch["filters"][0] == 4
        assert (folder / "models" / "baseline-unet#0.pt").is_file()
        assert not (tmp_path / "mlflow.db").exists()  # nothing went to a local store

        client = MlflowClient(tracking_uri=uri)
        exp = client.get_experiment_by_name("raynas")
        runs = client.search_runs([exp.experiment_id], max_results=100)
        parent = _check_tracked(runs, "baseline", "baseline")
        # the trained network, as an MLflow PyTorch model with its Architecture JSON, through
        # the server's artifact proxy
        model_id = parent.data.tags["best_model_uri"].removeprefix("models:/")
        logged = client.get_logged_model(model_id)
        (child,) = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
        assert logged.source_run_id == child.info.run_id
        figures = {m.key: m.value for m in logged.metrics}
        assert figures["test_dice"] == child.data.metrics["test_dice"]
        assert figures["params"] == parent.data.metrics["params"] and "val_dice" in figures
        assert logged.params["trial"] == child.data.tags["trial"]
        assert logged.name == child.info.run_name == "unet-0"  # one name per network
        assert [m.key for m in logged.metrics][:3] == ["val_dice", "test_dice", "params"]
        arts = {a.path for a in client.list_artifacts(parent.info.run_id)}
        assert {"architecture.json", "architecture.png"} <= arts
        location = logged.artifact_location
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=location, dst_path=str(tmp_path / "loaded"), tracking_uri=uri
        )
        assert json.loads(Path(local, "extra_files", "architecture.json").read_text()) == arch
        net = mlflow.pytorch.load_model(local)
        assert sum(p.numel() for p in net.parameters()) == parent.data.metrics["params"]
        assert (tmp_path / "server" / "artifacts").is_dir()

        # what the MLflow UI is built from: the page itself, and the runs its ajax API returns
        # (nesting by mlflow.parentRunId; dice and params, the axes of the comparison chart)
        with urllib.request.urlopen(f"{uri}/", timeout=10) as page:
            assert page.status == 200 and b"<html" in page.read().lower()
        request = urllib.request.Request(
            f"{uri}/ajax-api/2.0/mlflow/runs/search",
            data=json.dumps({"experiment_ids": [exp.experiment_id]}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            ui_runs = json.loads(response.read())["runs"]
        nested = [
            r for r in ui_runs
            if {"key": "mlflow.parentRunId", "value": parent.info.run_id} in r["data"]["tags"]
        ]  # fmt: skip
        assert len(nested) == 1
        assert {"dice", "params"} <= {m["key"] for m in nested[0]["data"]["metrics"]}

        pareto = _raynas(tmp_path, "pareto", "--tracking-uri", uri, "--out",
                         str(tmp_path / "pareto"), timeout=120)  # fmt: skip
        assert pareto.returncode == 0, pareto.stderr
        assert "1 of 1 retrained networks on the frontier" in pareto.stdout


# ----------------------------------------------------------------- bad input (fast, no Ray)


def _unet(width: int) -> tuple[str, dict]:
    import torch

    from raynas.nets import build_network
    from raynas.nets.baselines import unet_architecture

    torch.set_num_threads(2)
    arch = unet_architecture(spatial_dims=3, in_channels=1, out_channels=3, width=width)
    return arch.to_json(), build_network(arch).state_dict()


def _write_model(folder: Path, *, json_width: int | None, weights_width: int = 4) -> Path:
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    _, state = _unet(weights_width)
    torch.save(state, folder / "m.pt")
    if json_width is not None:
        (folder / "m.json").write_text(_unet(json_width)[0])
    return folder / "m.pt"


def _bad_cases(tmp: Path) -> list[tuple[list[str], str]]:
    (tmp / "broken.json").write_text("{not json")
    (tmp / "alien.json").write_text(json.dumps({"space": "alien", "width": 4}))
    (tmp / "bad_unet.json").write_text(json.dumps({"space": "unet", "filters": "wide"}))
    (tmp / "junk.pt").write_bytes(b"not a torch file")
    (tmp / "junk.json").write_text(_unet(4)[0])
    no_json = _write_model(tmp / "nojson", json_width=None)
    mismatch = _write_model(tmp / "mismatch", json_width=8, weights_width=4)
    data = ["--dataset", "synthetic", "--preset", "smoke"]
    return [
        (["retrain", str(tmp / "missing.json"), *data], "missing.json"),
        (["retrain", str(tmp / "broken.json"), *data], "broken.json"),
        (["retrain", str(tmp / "alien.json"), *data], "alien.json"),
        (["retrain", str(tmp / "bad_unet.json"), *data], "bad_unet.json"),
        (["retrain", str(tmp / "broken.json"), *data, "--epochs", "0"], "--epochs"),
        (["baseline", "--model", "vnet", *data], "vnet"),
        (["evaluate", str(tmp / "missing.pt"), *data], "missing.pt"),
        (["evaluate", str(no_json), *data], "m.json"),
        (["evaluate", str(mismatch), *data], "m.pt"),
        (["evaluate", str(tmp / "junk.pt"), *data], "junk.pt"),
        (["evaluate", str(tmp), *data], "state.pt"),  # a folder that is no checkpoint
        (["evaluate", str(no_json), *data, "--split", "train"], "--split train"),
        (["retrain", str(tmp / "junk.json"), *data, "--set", "data.test_cases=[nope]"],
         "data.test_cases"),  # fmt: skip
    ]


def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from raynas.cli.main import main

    monkeypatch.chdir(tmp_path)
    for argv, needle in _bad_cases(tmp_path):
        code = main(argv)
        err = capsys.readouterr().err.strip()
        assert code == 2, (argv, err)
        assert len(err.splitlines()) == 1 and needle in err, (argv, err)
    assert not (tmp_path / "raynas_runs").exists() and not (tmp_path / "mlflow.db").exists()


def test_evaluate_loads_without_ray_or_mlflow(tmp_path: Path) -> None:
    model = _write_model(tmp_path / "models", json_width=4)
    code = (
        "import sys; sys.modules['ray'] = None; sys.modules['mlflow'] = None\n"
        "from raynas.pipeline.evaluate import load_checkpoint\n"
        f"net, arch, _, _ = load_checkpoint({str(model)!r})\n"
        "print(arch.space, sum(p.numel() for p in net.parameters()))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split()[0] == "unet" and int(proc.stdout.split()[1]) > 0
