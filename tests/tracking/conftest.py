"""Fixtures of the tracking tests: a real MLflow SQLite store in a temp folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from raynas.tracking import TrackingTarget, ensure_experiment, resolve_tracking_uri


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run each test in its own folder so nothing (mlruns, mlflow.db) lands in the repo."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


@pytest.fixture(scope="session")
def store_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SQLite store for all tracking tests (creating the schema costs ~1 s)."""
    return tmp_path_factory.mktemp("mlflow-store")


@pytest.fixture()
def target(store_dir: Path) -> TrackingTarget:
    return resolve_tracking_uri(str(store_dir), workdir=Path("/"))


@pytest.fixture()
def experiment_id(target: TrackingTarget, request: pytest.FixtureRequest) -> str:
    """A fresh experiment per test, named after it."""
    return ensure_experiment(target, request.node.name)
