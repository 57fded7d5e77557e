"""Parent and nested trial runs, dedupe on resume, metrics, params, tags and artifacts."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from raynas.errors import UserError
from raynas.tracking import (
    TrackingTarget,
    create_trial_run,
    ensure_experiment,
    find_trial_run,
    finish_run,
    flatten_params,
    log_artifact_file,
    log_metrics,
    log_params,
    log_text,
    run_tags,
    set_tags,
    start_parent_run,
)


def _client(target: TrackingTarget) -> MlflowClient:
    return MlflowClient(tracking_uri=target.uri)


def _parent(target: TrackingTarget, experiment_id: str) -> str:
    return start_parent_run(
        target,
        experiment_id,
        run_name="search",
        params={"train": {"lr": 0.01, "epochs": 2}, "space": "c2f"},
        tags=run_tags(space="c2f", dataset="synthetic", seed=3),
    )


def test_experiment_artifacts_under_resolved_root(target: TrackingTarget) -> None:
    exp_id = ensure_experiment(target, "artifacts here")
    assert ensure_experiment(target, "artifacts here") == exp_id  # idempotent
    location = _client(target).get_experiment(exp_id).artifact_location
    assert target.artifact_root is not None
    assert location == (target.artifact_root / "artifacts_here").as_uri()
    assert not Path("mlruns").exists()


def test_empty_experiment_name(target: TrackingTarget) -> None:
    with pytest.raises(UserError, match="--experiment"):
        ensure_experiment(target, " ")


def test_deleted_experiment_is_user_error(target: TrackingTarget) -> None:
    exp_id = ensure_experiment(target, "gone")
    _client(target).delete_experiment(exp_id)
    with pytest.raises(UserError, match="deleted"):
        ensure_experiment(target, "gone")


def test_parent_and_nested_runs(target: TrackingTarget, experiment_id: str) -> None:
    parent = _parent(target, experiment_id)
    client = _client(target)
    run = client.get_run(parent)
    assert run.data.params["train.lr"] == "0.01"
    assert run.data.params["train.epochs"] == "2"
    assert run.data.tags["space"] == "c2f"
    assert run.data.tags["seed"] == "3"
    assert run.data.tags["raynas.kind"] == "search"
    assert "raynas.version" in run.data.tags

    ids = [
        create_trial_run(
            target,
            experiment_id,
            parent_run_id=parent,
            run_name=f"coarse-{i}",
            stage="coarse",
            trial_id=f"t{i}",
            params={"candidate": {"depth": i}},
            tags={"extra": "yes"},
        )
        for i in range(3)
    ]
    nested = client.search_runs(
        [experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent}'"
    )
    assert sorted(r.info.run_id for r in nested) == sorted(ids)
    tags = client.get_run(ids[1]).data.tags
    assert tags["stage"] == "coarse"
    assert tags["trial_id"] == "t1"
    assert tags["space"] == "c2f"  # inherited from the parent
    assert tags["dataset"] == "synthetic"
    assert tags["extra"] == "yes"
    assert client.get_run(ids[1]).data.params["candidate.depth"] == "1"


def test_find_trial_run_dedupes(target: TrackingTarget, experiment_id: str) -> None:
    parent = _parent(target, experiment_id)
    other_parent = _parent(target, experiment_id)
    assert find_trial_run(target, experiment_id, parent, "abc_00001") is None

    def get_or_create(parent_id: str, trial_id: str) -> str:
        found = find_trial_run(target, experiment_id, parent_id, trial_id)
        if found is not None:
            return found
        return create_trial_run(
            target,
            experiment_id,
            parent_run_id=parent_id,
            run_name=trial_id,
            stage="fine",
            trial_id=trial_id,
            params={},
            tags={},
        )

    first = get_or_create(parent, "abc_00001")
    assert get_or_create(parent, "abc_00001") == first  # resumed: same run
    assert get_or_create(other_parent, "abc_00001") != first  # other search: its own run
    assert find_trial_run(target, experiment_id, parent, "abc_00001", stage="fine") == first
    assert find_trial_run(target, experiment_id, parent, "abc_00001", stage="coarse") is None
    assert find_trial_run(target, experiment_id, parent, "it's") is None  # quoting is safe
    runs = _client(target).search_runs(
        [experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent}'"
    )
    assert len(runs) == 1


def test_metrics_per_step(target: TrackingTarget, experiment_id: str) -> None:
    parent = _parent(target, experiment_id)
    for epoch, (dice, loss) in enumerate([(0.2, 1.5), (0.5, 1.0), (0.4, math.nan)]):
        logged = log_metrics(
            target,
            parent,
            {"dice": dice, "loss": loss, "val_dice_class_1": dice / 2, "params": 1234},
            step=epoch,
        )
        assert logged == (3 if math.isnan(loss) else 4)
    log_metrics(target, parent, {"best_dice": 0.5, "bad": math.inf, "text": "x"}, step=2)
    client = _client(target)
    history = client.get_metric_history(parent, "dice")
    assert [(m.step, m.value) for m in sorted(history, key=lambda m: m.step)] == [
        (0, 0.2),
        (1, 0.5),
        (2, 0.4),
    ]
    assert [m.step for m in client.get_metric_history(parent, "loss")] == [0, 1]
    metrics = client.get_run(parent).data.metrics
    assert metrics["best_dice"] == 0.5
    assert metrics["params"] == 1234
    assert "bad" not in metrics and "text" not in metrics


def test_params_truncated_and_immutable(target: TrackingTarget, experiment_id: str) -> None:
    parent = _parent(target, experiment_id)
    long_key = "k" * 300
    log_params(target, parent, {"long": "v" * 7000, long_key: 1, "nested": {"a b/c": [1, 2]}})
    params = _client(target).get_run(parent).data.params
    assert len(params["long"]) == 6000 and params["long"].endswith("[truncated]")
    assert params["k" * 250] == "1"
    assert params["nested.a b/c"] == "[1, 2]"
    log_params(target, parent, {"long": "v" * 7000})  # same value again: no error
    with pytest.raises(ValueError, match="train.lr"):
        log_params(target, parent, {"train": {"lr": 0.5}})


def test_many_params_are_batched(target: TrackingTarget, experiment_id: str) -> None:
    parent = start_parent_run(
        target,
        experiment_id,
        run_name="big",
        params={f"p{i}": i for i in range(250)},
        tags={},
    )
    assert len(_client(target).get_run(parent).data.params) == 250


def test_flatten_params() -> None:
    assert flatten_params({"a": {"b": {"c": 1}}, "d": None, "e": "x"}) == {
        "a.b.c": "1",
        "d": "None",
        "e": "x",
    }


def test_tags_artifacts_and_finish(
    target: TrackingTarget, experiment_id: str, tmp_path: Path
) -> None:
    parent = _parent(target, experiment_id)
    set_tags(target, parent, {"pareto": "true", "skip": None})
    file = tmp_path / "arch.json"
    file.write_text('{"space": "c2f"}')
    log_artifact_file(target, parent, file, artifact_path="arch")
    log_text(target, parent, "hello", "notes/readme.txt")
    with pytest.raises(FileNotFoundError):
        log_artifact_file(target, parent, tmp_path / "missing.json")
    with pytest.raises(ValueError, match="FINISHED"):
        finish_run(target, parent, status="DONE")
    finish_run(target, parent, status="KILLED")
    client = _client(target)
    run = client.get_run(parent)
    assert run.info.status == "KILLED"
    assert run.data.tags["pareto"] == "true" and "skip" not in run.data.tags
    assert [a.path for a in client.list_artifacts(parent, "arch")] == ["arch/arch.json"]
    local = Path(client.download_artifacts(parent, "notes/readme.txt", str(tmp_path)))
    assert local.read_text() == "hello"
    assert target.artifact_root is not None
    assert run.info.artifact_uri.startswith(target.artifact_root.as_uri())
    assert not Path("mlruns").exists()


def test_interrupt_kills_open_runs_and_resume_reopens_them(
    target: TrackingTarget, experiment_id: str
) -> None:
    from raynas.tracking import kill_open_runs, reopen_run

    parent = start_parent_run(target, experiment_id, run_name="search", params={}, tags={})
    other = start_parent_run(target, experiment_id, run_name="other", params={}, tags={})
    trials = [
        create_trial_run(
            target, experiment_id, parent_run_id=parent, run_name=f"t{i}", stage="coarse",
            trial_id=f"t{i}", params={}, tags={},
        )
        for i in range(3)
    ]  # fmt: skip
    finish_run(target, trials[0])  # a trial that ended before the interrupt stays FINISHED
    assert kill_open_runs(target, experiment_id, parent) == 3
    client = MlflowClient(tracking_uri=target.uri)
    status = {r: client.get_run(r).info.status for r in [parent, other, *trials]}
    assert status == {
        parent: "KILLED", other: "RUNNING",
        trials[0]: "FINISHED", trials[1]: "KILLED", trials[2]: "KILLED",
    }  # fmt: skip
    assert kill_open_runs(target, experiment_id, parent) == 0
    reopen_run(target, parent)
    assert client.get_run(parent).info.status == "RUNNING"
    finish_run(target, parent)
    assert client.get_run(parent).info.status == "FINISHED"
