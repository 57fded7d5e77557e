"""``--dataset`` / ``--data-root`` as every run command opens them (``open_run_dataset``):
relative paths resolve against the working directory, for ``evaluate`` too."""

from __future__ import annotations

from pathlib import Path

import pytest
from msd_writer import write_msd
from own_data import write_nnunet

from raynas.config import load_preset
from raynas.pipeline.evaluate import EvaluateOptions
from raynas.pipeline.setup import RunOptions, open_run_dataset


@pytest.mark.parametrize("options", [EvaluateOptions, RunOptions])
def test_relative_data_root_and_folder(tmp_path: Path, monkeypatch, options) -> None:
    write_msd(tmp_path / "Task02_Heart", cases=3)
    write_nnunet(tmp_path / "Dataset503_Mine", cases=3)
    monkeypatch.chdir(tmp_path)
    extra = {"checkpoint": Path("x.pt")} if options is EvaluateOptions else {}
    preset = load_preset("smoke", [])
    ds = open_run_dataset(options(dataset="msd_task02", data_root=Path("Task02_Heart"), **extra),
                          preset)  # fmt: skip
    assert ds.root == tmp_path / "Task02_Heart" and ds.ref == "msd_task02"
    own = open_run_dataset(options(dataset="Dataset503_Mine/", **extra), preset)
    assert own.ref == str(tmp_path / "Dataset503_Mine") and own.in_channels == 2
    # planned from the data; a run command writes the plan only once it starts (save_plan)
    assert own.plan_file and own.info.search_patch == (32, 32, 16)
    assert Path(own.plan_file).is_file() == (options is EvaluateOptions)
