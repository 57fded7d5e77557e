"""The dataset logged as an MLflow input: name, digest of its cases, split in the profile."""

from __future__ import annotations

import json

from raynas.tracking import start_parent_run
from raynas.tracking.inputs import dataset_digest, log_dataset_input
from raynas.tracking.runs import client_for


def test_dataset_input_on_the_run(target, experiment_id) -> None:
    run = start_parent_run(target, experiment_id, run_name="s", params={}, tags={})
    cases = ["case_001", "case_000"]
    digest = log_dataset_input(target, run, name="synthetic", case_names=cases,
                               source="synthetic:synthetic", split={"fold": 1, "folds": 3},
                               seed=0)  # fmt: skip
    (item,) = client_for(target).get_run(run).inputs.dataset_inputs
    assert item.dataset.name == "synthetic" and item.dataset.digest == digest
    assert json.loads(item.dataset.profile) == {"cases": 2, "fold": 1, "folds": 3}
    assert {t.key: t.value for t in item.tags}["mlflow.data.context"] == "training"
    # the digest names the cases (any order) and the seed of a generated dataset
    assert digest == dataset_digest("synthetic", list(reversed(cases)), seed=0)
    assert digest != dataset_digest("synthetic", cases, seed=1)
    assert digest != dataset_digest("synthetic", cases[:1], seed=0)
