"""Opening a run's output folder (:mod:`raynas.pipeline.folders`): a new folder never reuses an
existing name, ``--resume`` with nothing to resume is one line, and a resumed search's parent
run must be in the MLflow store it names (a real local SQLite store)."""

from __future__ import annotations

from pathlib import Path

import pytest

from raynas.errors import UserError
from raynas.pipeline.folders import check_parent_run, find_folder
from raynas.pipeline.outputs import SearchFolder


def test_a_new_folder_takes_the_next_free_name(tmp_path: Path) -> None:
    first = find_folder(tmp_path, "My Exp", "c2f_synthetic_s0", resume=False)
    assert first.root == tmp_path / "My_Exp" / "c2f_synthetic_s0"  # slugged, not created
    assert not first.root.exists()
    first.create()
    second = find_folder(tmp_path, "My Exp", "c2f_synthetic_s0", resume=False)
    assert second.root.name == "c2f_synthetic_s0_2" and not second.root.exists()


def test_resume_with_nothing_to_resume_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"^--resume: no earlier search found under "):
        find_folder(tmp_path, "raynas", "c2f_synthetic_s0", resume=True)


def test_the_parent_run_must_be_in_the_store(tmp_path: Path) -> None:
    from raynas.tracking import (
        ensure_experiment,
        has_run,
        prepare_store,
        resolve_tracking_uri,
        start_parent_run,
    )

    target = prepare_store(resolve_tracking_uri(str(tmp_path / "mlflow.db"), workdir=tmp_path))
    parent = start_parent_run(target, ensure_experiment(target, "raynas"), run_name="p",
                              params={}, tags={})  # fmt: skip
    folder = SearchFolder(tmp_path / "runs" / "search")
    folder.state["parent_run_id"] = parent
    check_parent_run(target, folder)  # there: fine
    assert has_run(target, parent) and not has_run(target, "0" * 32)
    folder.state["parent_run_id"] = "0" * 32
    with pytest.raises(UserError) as info:
        check_parent_run(target, folder)
    line = str(info.value)
    assert line.startswith("--resume: the MLflow store ") and "\n" not in line
    assert "0" * 32 in line and str(folder.root) in line
