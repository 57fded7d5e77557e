"""``--dataset`` / ``--data-root`` as every command opens them (``open_run_dataset``): relative
paths resolve against the working directory, for ``evaluate`` too; a run command writes a user
dataset's plan only once it starts, ``evaluate`` at once."""

from __future__ import annotations

from pathlib import Path

import pytest
from msd_writer import write_msd
from own_data import write_nnunet

from raynas.config import load_preset
from raynas.pipeline.options import RunOptions
from raynas.pipeline.validate import open_run_dataset, run_dataset, user_plan_cache


@pytest.mark.parametrize("command", ["evaluate", "run"])
def test_relative_data_root_and_folder(tmp_path: Path, monkeypatch, command) -> None:
    write_msd(tmp_path / "Task02_Heart", cases=3)
    write_nnunet(tmp_path / "Dataset503_Mine", cases=3)
    monkeypatch.chdir(tmp_path)
    preset = load_preset("smoke", [])

    def opened(dataset: str, data_root: Path | None = None):
        if command == "run":  # as search / retrain / baseline open it
            return run_dataset(RunOptions(dataset=dataset, data_root=data_root), preset)
        return open_run_dataset(dataset, data_root, preset=preset, workdir=Path.cwd(),
                                plan_cache=user_plan_cache(), write_plan=True)  # fmt: skip

    ds = opened("msd_task02", Path("Task02_Heart"))
    assert ds.root == tmp_path / "Task02_Heart" and ds.ref == "msd_task02"
    own = opened("Dataset503_Mine/")
    assert own.ref == str(tmp_path / "Dataset503_Mine") and own.in_channels == 2
    # planned from the data; a run command writes the plan only once it starts (save_plan)
    assert own.plan_file and own.info.search_patch == (32, 32, 16)
    assert Path(own.plan_file).is_file() == (command == "evaluate")
