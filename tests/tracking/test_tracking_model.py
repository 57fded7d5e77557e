"""log_pytorch_model: logged under the run's experiment, loads back, leaks no global state."""

from __future__ import annotations

import os
from pathlib import Path

import mlflow
import mlflow.pyfunc
import mlflow.pytorch
import numpy as np
import pytest
import torch
import torch.export
from mlflow.tracking import MlflowClient

from raynas.tracking import (
    TrackingTarget,
    create_trial_run,
    load_pytorch_model,
    log_pytorch_model,
    start_parent_run,
)


def test_log_pytorch_model_round_trip(
    target: TrackingTarget,
    experiment_id: str,
    tmp_path: Path,
    capfd: pytest.CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", raising=False)
    torch.set_num_threads(2)
    torch.manual_seed(0)
    parent = start_parent_run(target, experiment_id, run_name="p", params={}, tags={})
    run_id = create_trial_run(
        target,
        experiment_id,
        parent_run_id=parent,
        run_name="best",
        stage="retrain",
        trial_id="best",
        params={"lr": 0.1},
        tags={},
    )
    from raynas.nets import build_network
    from raynas.nets.baselines import unet_architecture

    arch_obj = unet_architecture(spatial_dims=2, in_channels=1, out_channels=2, width=2)
    net = build_network(arch_obj).eval()
    arch = arch_obj.to_json()

    def no_export(*args: object, **kwargs: object) -> None:
        raise RuntimeError("not exportable")

    # the fallback (a network torch.export cannot handle): state dict + JSON + the loader
    monkeypatch.setattr(torch.export, "export", no_export)
    uri_before = mlflow.get_tracking_uri()
    model_uri = log_pytorch_model(target, run_id, net, arch, metrics={"test_dice": 0.5},
                                  params={"trial": "unet#0"})  # fmt: skip

    assert mlflow.active_run() is None
    assert mlflow.get_tracking_uri() == uri_before
    assert "MLFLOW_TRACKING_URI" not in os.environ
    assert "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR" not in os.environ
    assert "Downloading artifacts" not in capfd.readouterr().err  # no tqdm bar in the way
    client = MlflowClient(tracking_uri=target.uri)
    assert client.get_run(run_id).info.status == "RUNNING"  # not closed by logging

    x = torch.randn(2, 1, 16, 16)
    net.eval()
    loaded = load_pytorch_model(target, model_uri)
    torch.testing.assert_close(loaded(x), net(x))

    logged = client.get_logged_model(model_uri.rsplit("/", 1)[-1])
    assert logged.experiment_id == experiment_id and logged.source_run_id == run_id
    assert target.artifact_root is not None
    assert logged.artifact_location.startswith(target.artifact_root.as_uri())
    assert type(loaded).__module__.startswith("raynas")  # rebuilt from JSON, not exported
    assert logged.params["lr"] == "0.1" and logged.params["trial"] == "unet#0"
    assert [(m.key, m.value) for m in logged.metrics] == [("test_dice", 0.5)]
    pyfunc = mlflow.pyfunc.load_model(logged.artifact_location)  # plain MLflow, by location
    np.testing.assert_allclose(pyfunc.predict(x.numpy()), net(x).detach().numpy(), rtol=1e-5)
    packaged = Path(logged.artifact_location.removeprefix("file://"))
    assert (packaged / "artifacts" / "architecture.json").read_text() == arch
    assert "raynas==" in (packaged / "requirements.txt").read_text()
    assert not list(packaged.rglob("*.pkl"))  # nothing pickled: a state dict and code
    beside = client.download_artifacts(run_id, "model/architecture.json", str(tmp_path))
    assert Path(beside).read_text() == arch
    assert not Path("mlruns").exists()


def test_real_network_logged_as_pt2(target: TrackingTarget, experiment_id: str) -> None:
    """A derived network is exported (pt2): it loads with no raynas class, has a signature and
    an input example sized to its total stride, and gives the network's output."""
    from mlflow.models import Model

    from raynas.nets import build_network, load_architecture
    from raynas.tracking.model import example_input

    torch.manual_seed(0)
    arch = load_architecture({
        "space": "c2f", "spatial_dims": 3, "in_channels": 1, "out_channels": 2, "width": 2,
        "levels": 3, "topology": "0-1-2-1-0",
        "ops": [["conv3"], ["p3d"], ["conv2d_in_3d"], ["conv3", "skip"], ["skip", "conv3"]],
    })  # fmt: skip
    net = build_network(arch).eval()
    example = example_input(net, arch.to_json())
    # stride 8 (stem /2, two levels down), and the deepest cell needs more than one voxel
    assert example.shape == (1, 1, 16, 16, 16)
    run_id = start_parent_run(target, experiment_id, run_name="p", params={}, tags={})
    uri = log_pytorch_model(target, run_id, net, arch.to_json(), name="net")
    loaded = load_pytorch_model(target, uri)
    assert not type(loaded).__module__.startswith("raynas")
    x = torch.from_numpy(example)
    torch.testing.assert_close(loaded(x), net(x))
    mlflow.set_tracking_uri(target.uri)
    try:
        info = Model.load(uri)
    finally:
        mlflow.set_tracking_uri(None)
    assert info.signature is not None and info.saved_input_example_info is not None
    assert hasattr(loaded, "graph")  # the torch.export graph (model.pt2), not a pickled C2FNet


def test_model_metrics_led_by_dice_and_params(target: TrackingTarget, experiment_id: str) -> None:
    """Issue 25: the model page listed eight ``system/*`` rows before ``test_dice``:
    ``mlflow.pytorch.log_model(run_id=...)`` copied every metric of the run at the model's step
    (the trial's first system-metrics samples, step 0) onto the model. Now the model carries its
    own figures only, validation Dice, test Dice and parameters first, and is still the run's
    output (its run page lists it). Its name is the network's one name, which MLflow accepts
    even where the trial key holds a ``.`` (``raynas retrain my.arch.json``)."""
    from raynas.nets import build_network
    from raynas.nets.baselines import unet_architecture
    from raynas.pipeline.finish import model_name

    run_id = start_parent_run(target, experiment_id, run_name="p", params={}, tags={})
    client = MlflowClient(tracking_uri=target.uri)
    for key in ("system/cpu_utilization_percentage", "system/disk_usage_megabytes"):
        client.log_metric(run_id, key, 12.0, step=0)  # what the trial's monitor logs first
    client.log_metric(run_id, "dice", 0.3, step=1)
    arch = unet_architecture(spatial_dims=2, in_channels=1, out_channels=2, width=2)
    metrics = {"test_dice_organ": 0.41, "test_dice": 0.4, "params": 123.0, "val_dice": 0.5,
               "val_dice_organ": 0.51}  # fmt: skip
    name = model_name("my.arch v2#0")
    assert name == "my_arch_v2-0"
    uri = log_pytorch_model(target, run_id, build_network(arch).eval(), arch.to_json(),
                            name=name, metrics=metrics)  # fmt: skip
    logged = client.get_logged_model(uri.removeprefix("models:/"))
    assert logged.name == name
    assert [m.key for m in logged.metrics] == [
        "val_dice", "test_dice", "params", "test_dice_organ", "val_dice_organ"]  # fmt: skip
    outputs = client.get_run(run_id).outputs
    assert [o.model_id for o in outputs.model_outputs] == [logged.model_id]
