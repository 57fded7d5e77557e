"""``raynas datasets``: listing, check and prepare, through the real CLI entry point."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from raynas.cli.main import main
from raynas.data import DATASETS, open_dataset


def test_listing_prints_one_line_per_dataset(capsys) -> None:
    assert main(["datasets"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == len(DATASETS)
    for line, name in zip(lines, DATASETS, strict=True):
        info = DATASETS.get(name)
        assert line.split()[0] == name
        assert info.organ in line and f" {info.modality} " in line
        assert f"{info.num_classes} classes" in line


def test_listing_does_not_import_torch_or_monai() -> None:
    code = (
        "import sys, typer\n"
        "from raynas.cli.datasets import app\n"
        "typer.main.get_command(app)(args=[], standalone_mode=False)\n"
        "heavy = [m for m in ('torch', 'monai', 'ray', 'mlflow') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert "msd_task05" in out.stdout


def test_prepare_writes_an_msd_folder(tmp_path: Path, capsys) -> None:
    out = tmp_path / "synth"
    assert (
        main(["datasets", "prepare", "synthetic", "--out", str(out), "--cases", "3", "--seed", "4"])
        == 0
    )
    assert str(out) in capsys.readouterr().out
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["numTraining"] == 3 and meta["modality"] == {"0": "MRI"}
    assert len(list((out / "imagesTr").glob("*.nii.gz"))) == 3
    ds = open_dataset("synthetic", out, validate="full")
    assert len(ds) == 3 and ds.num_classes == 3


@pytest.mark.parametrize("name", ["synthetic", "synthetic2d"])
def test_check_synthetic_without_data_root(name: str, capsys) -> None:
    assert main(["datasets", "check", name, "--synthetic-cases", "3", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert f"{name}_000" in out and "0,1,2" in out and "1x1x2.5" in out
    assert "3 case(s), 3 ok, 0 bad" in out


def test_check_msd_folder_prints_table_and_summary(tmp_path: Path, make_msd, capsys) -> None:
    root = make_msd(
        tmp_path / "Task05_Prostate",
        cases=2,
        channels=("T2", "ADC"),
        labels=("background", "PZ", "TZ"),
    )
    assert main(["datasets", "check", "msd_task05", "--data-root", str(root)]) == 0
    out = capsys.readouterr().out
    assert "case_000" in out and "case_001" in out and "unlisted" not in out
    assert "16x16x8" in out and "1x1x2" in out
    assert "2 case(s), 2 ok, 0 bad" in out and "['T2', 'ADC']" in out and "3 classes" in out


def test_check_reports_every_bad_case_then_exits_2(tmp_path: Path, make_msd, capsys) -> None:
    root = make_msd(tmp_path / "T", cases=3)
    for i in (0, 2):
        (root / "imagesTr" / f"case_00{i}.nii.gz").write_bytes(b"garbage")
    assert main(["datasets", "check", "msd_task02", "--data-root", str(root)]) == 2
    cap = capsys.readouterr()
    assert "3 case(s), 1 ok, 2 bad" in cap.out
    err = cap.err.strip().splitlines()
    assert len(err) == 1 and "case_000.nii.gz" in err[0] and "1 more bad case" in err[0]


def test_check_from_a_parent_folder(tmp_path: Path, make_msd, capsys) -> None:
    make_msd(tmp_path / "Task02_Heart", cases=2)
    assert main(["datasets", "check", "msd_task02", "--data-root", str(tmp_path)]) == 0
    assert "Task02_Heart" in capsys.readouterr().out
