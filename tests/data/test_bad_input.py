"""Every kind of bad input is a DataError: one line, exit code 2, naming the file or option."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from raynas.cli.main import main
from raynas.data import open_dataset
from raynas.errors import DataError

Setup = Callable[[Path, Callable[..., Path]], tuple[list[str], str]]
CHECK = ["datasets", "check", "msd_task02", "--data-root"]


def _resave(path: Path, data: np.ndarray, affine: np.ndarray | None = None) -> None:
    ref = nib.load(str(path))
    nib.save(nib.Nifti1Image(data, ref.affine if affine is None else affine), str(path))


def missing_root(tmp: Path, make_msd) -> tuple[list[str], str]:
    return [*CHECK, str(tmp / "nope")], str(tmp / "nope")


def no_data_root_option(tmp: Path, make_msd) -> tuple[list[str], str]:
    return ["datasets", "check", "msd_task02"], "--data-root"


def missing_json(tmp: Path, make_msd) -> tuple[list[str], str]:
    root = make_msd(tmp / "T")
    (root / "dataset.json").unlink()
    return [*CHECK, str(root)], str(root / "dataset.json")


def malformed_json(tmp: Path, make_msd) -> tuple[list[str], str]:
    root = make_msd(tmp / "T")
    (root / "dataset.json").write_text('{"training": [\n  {"image": ')
    return [*CHECK, str(root)], "dataset.json: malformed JSON"


@pytest.mark.parametrize("key", ["training", "modality", "labels"])
def test_missing_key(tmp_path: Path, make_msd, key: str, capsys) -> None:
    root = make_msd(tmp_path / "T")
    meta = json.loads((root / "dataset.json").read_text())
    del meta[key]
    (root / "dataset.json").write_text(json.dumps(meta))
    _expect_exit_2([*CHECK, str(root)], f"missing key(s) {key}", capsys)


def bad_entry(tmp: Path, make_msd) -> tuple[list[str], str]:
    root = make_msd(tmp / "T")
    meta = json.loads((root / "dataset.json").read_text())
    meta["training"][1] = {"image": "./imagesTr/case_001.nii.gz"}
    (root / "dataset.json").write_text(json.dumps(meta))
    return [*CHECK, str(root)], "training[1]"


def missing_file(tmp: Path, make_msd) -> tuple[list[str], str]:
    root = make_msd(tmp / "T")
    (root / "labelsTr" / "case_001.nii.gz").unlink()
    return [*CHECK, str(root)], str(root / "labelsTr" / "case_001.nii.gz")


def shape_mismatch(tmp: Path, make_msd) -> tuple[list[str], str]:
    root = make_msd(tmp / "T")
    _resave(root / "labelsTr" / "case_002.nii.gz", np.zeros((16, 16, 7), np.uint8))
    return [*CHECK, str(root)], "labelsTr/case_002.nii.gz: label shape"


def affine_mismatch(tmp: Path, make_msd) -> tuple[list[str], str]:
    root = make_msd(tmp / "T")
    path = root / "labelsTr" / "case_000.nii.gz"
    _resave(path, np.asanyarray(nib.load(str(path)).dataobj), np.diag([1.0, 1.0, 3.0, 1.0]))
    return [*CHECK, str(root)], "labelsTr/case_000.nii.gz: label affine"


def undeclared_label(tmp: Path, make_msd) -> tuple[list[str], str]:
    root = make_msd(tmp / "T")
    path = root / "labelsTr" / "case_001.nii.gz"
    lab = np.asanyarray(nib.load(str(path)).dataobj).copy()
    lab[0, 0, 0] = 5
    _resave(path, lab)
    return [*CHECK, str(root)], "labelsTr/case_001.nii.gz: label value(s) [5] not declared"


def _bad_voxel(value: float) -> Setup:
    def setup(tmp: Path, make_msd) -> tuple[list[str], str]:
        root = make_msd(tmp / "T")
        path = root / "imagesTr" / "case_002.nii.gz"
        img = np.asanyarray(nib.load(str(path)).dataobj).copy()
        img[3, 4, 5] = value
        _resave(path, img)
        return [*CHECK, str(root)], "imagesTr/case_002.nii.gz: 1 NaN or infinite voxel"

    return setup


def unreadable(tmp: Path, make_msd) -> tuple[list[str], str]:
    root = make_msd(tmp / "T")
    (root / "imagesTr" / "case_001.nii.gz").write_bytes(b"this is not a nifti file")
    return [*CHECK, str(root)], "imagesTr/case_001.nii.gz: unreadable"


def _truncated(keep: float) -> Setup:
    def setup(tmp: Path, make_msd) -> tuple[list[str], str]:
        root = make_msd(tmp / "T", shape=(32, 32, 16))
        path = root / "imagesTr" / "case_001.nii.gz"
        data = path.read_bytes()
        path.write_bytes(data[: int(len(data) * keep)])
        return [*CHECK, str(root)], "imagesTr/case_001.nii.gz: unreadable or truncated"

    return setup


truncated = _truncated(0.8)


def wrong_channels(tmp: Path, make_msd) -> tuple[list[str], str]:
    root = make_msd(tmp / "T", channels=("T2", "ADC"), labels=("background", "PZ", "TZ"))
    path = root / "imagesTr" / "case_000.nii.gz"
    _resave(path, np.zeros((16, 16, 8, 3), np.float32))
    return ["datasets", "check", "msd_task05", "--data-root", str(root)], "3 channel(s)"


def wrong_task(tmp: Path, make_msd) -> tuple[list[str], str]:
    root = make_msd(tmp / "T")  # one channel, but prostate has two
    return ["datasets", "check", "msd_task05", "--data-root", str(root)], "'modality' lists 1"


def unknown_name(tmp: Path, make_msd) -> tuple[list[str], str]:
    return ["datasets", "check", "msd_task11"], "valid: msd_task01"


def zero_cases_check(tmp: Path, make_msd) -> tuple[list[str], str]:
    return ["datasets", "check", "synthetic", "--cases", "0"], "--cases"


def zero_cases_prepare(tmp: Path, make_msd) -> tuple[list[str], str]:
    return ["datasets", "prepare", "synthetic", "--out", str(tmp / "o"), "--cases", "0"], "--cases"


def negative_synthetic_cases(tmp: Path, make_msd) -> tuple[list[str], str]:
    return ["datasets", "check", "synthetic", "--synthetic-cases", "-1"], "--synthetic-cases"


def prepare_msd_name(tmp: Path, make_msd) -> tuple[list[str], str]:
    return ["datasets", "prepare", "msd_task02", "--out", str(tmp / "o")], "NAME"


def prepare_out_not_empty(tmp: Path, make_msd) -> tuple[list[str], str]:
    (tmp / "o").mkdir()
    (tmp / "o" / "keep.txt").write_text("x")
    return ["datasets", "prepare", "synthetic", "--out", str(tmp / "o")], "--out"


CASES: dict[str, Setup] = {
    "missing data root": missing_root,
    "no --data-root for an MSD task": no_data_root_option,
    "missing dataset.json": missing_json,
    "malformed dataset.json": malformed_json,
    "training entry without label": bad_entry,
    "listed file missing": missing_file,
    "image/label shape mismatch": shape_mismatch,
    "image/label affine mismatch": affine_mismatch,
    "undeclared label value": undeclared_label,
    "NaN voxel": _bad_voxel(float("nan")),
    "infinite voxel": _bad_voxel(float("inf")),
    "unreadable nii.gz": unreadable,
    "truncated nii.gz (header)": _truncated(0.01),
    "truncated nii.gz (data)": truncated,
    "4D image with wrong channel count": wrong_channels,
    "folder of another task": wrong_task,
    "unknown dataset name": unknown_name,
    "--cases 0 (check)": zero_cases_check,
    "--cases 0 (prepare)": zero_cases_prepare,
    "--synthetic-cases -1": negative_synthetic_cases,
    "prepare a non-synthetic name": prepare_msd_name,
    "prepare into a non-empty folder": prepare_out_not_empty,
}


def _expect_exit_2(argv: list[str], needle: str, capsys) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and needle in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("setup", list(CASES.values()), ids=list(CASES))
def test_bad_input_is_one_line_exit_2(tmp_path: Path, make_msd, setup: Setup, capsys) -> None:
    argv, needle = setup(tmp_path, make_msd)
    _expect_exit_2(argv, needle, capsys)


@pytest.mark.parametrize(
    "setup", [missing_file, shape_mismatch, undeclared_label, truncated], ids=lambda f: f.__name__
)
def test_open_dataset_raises_before_training(tmp_path: Path, make_msd, setup: Setup) -> None:
    argv, needle = setup(tmp_path, make_msd)
    with pytest.raises(DataError, match="case_00"):
        open_dataset(argv[2], argv[4], validate="full")


def test_build_loaders_checks_voxels_first(tmp_path: Path, make_msd) -> None:
    from raynas.data import build_loaders

    argv, _ = _bad_voxel(float("nan"))(tmp_path, make_msd)
    ds = open_dataset("msd_task02", argv[-1])  # header check passes
    with pytest.raises(DataError, match="NaN"):
        build_loaders(ds, folds=3, patch_size=(16, 16, 16))
