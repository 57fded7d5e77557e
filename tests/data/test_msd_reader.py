"""MSD reader: cases from dataset.json only, multi-modal 4D images, junk files ignored."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from raynas.data import check_dataset, get_dataset_info, open_dataset, read_msd


@pytest.mark.parametrize(
    "name, channels, labels",
    [
        ("msd_task02", ("MRI",), ("background", "left atrium")),
        ("msd_task05", ("T2", "ADC"), ("background", "PZ", "TZ")),
        ("msd_task01", ("FLAIR", "T1w", "t1gd", "T2w"), ("background", "a", "b", "c")),
    ],
)
def test_reads_cases_from_dataset_json_only(tmp_path: Path, make_msd, name, channels, labels):
    root = make_msd(tmp_path / "Task", cases=3, channels=channels, labels=labels)
    ds = open_dataset(name, root, validate="full")
    assert [c.name for c in ds.cases] == ["case_000", "case_001", "case_002"]
    assert all(
        c.image.parent.name == "imagesTr" and c.label.parent.name == "labelsTr" for c in ds.cases
    )
    assert not any(c.name.startswith("._") or "unlisted" in c.name for c in ds.cases)
    assert ds.in_channels == len(channels) and ds.channels == channels
    assert ds.num_classes == len(labels) and ds.labels[len(labels) - 1] == labels[-1]
    assert ds.modality == "MRI" and ds.info is get_dataset_info(name)
    reports = check_dataset(ds)
    assert [r.channels for r in reports] == [len(channels)] * 3
    assert reports[0].shape == (16, 16, 8) and reports[0].spacing == (1.0, 1.0, 2.0)
    assert set(reports[0].label_values) == set(range(len(labels)))


def test_labels_follow_dataset_json_not_metadata(tmp_path: Path, make_msd) -> None:
    root = make_msd(tmp_path / "T", labels=("background", "a", "b"))
    ds = open_dataset("msd_task09", root)  # built-in spleen metadata has 2 classes
    assert ds.num_classes == 3 and ds.labels == {0: "background", 1: "a", 2: "b"}


def test_parent_folder_and_limit_cases(tmp_path: Path, make_msd) -> None:
    make_msd(tmp_path / "Task02_Heart", cases=4)
    ds = open_dataset("msd_task02", tmp_path, limit_cases=2)
    assert ds.root == tmp_path / "Task02_Heart" and len(ds) == 2


def test_dataset_json_order_and_relative_paths(tmp_path: Path, make_msd) -> None:
    root = make_msd(tmp_path / "T", cases=3)
    meta = json.loads((root / "dataset.json").read_text())
    meta["training"] = list(reversed(meta["training"]))
    meta["training"][0]["image"] = meta["training"][0]["image"].removeprefix("./")
    (root / "dataset.json").write_text(json.dumps(meta))
    ds = read_msd(root, info=get_dataset_info("msd_task02"))
    assert [c.name for c in ds.cases] == ["case_002", "case_001", "case_000"]
    assert ds.cases[0].image == root / "imagesTr" / "case_002.nii.gz"


def test_header_only_check_skips_voxels(tmp_path: Path, make_msd) -> None:
    import nibabel as nib

    root = make_msd(tmp_path / "T", cases=2)
    bad = np.full((16, 16, 8), np.nan, np.float32)
    path = root / "imagesTr" / "case_001.nii.gz"
    nib.save(nib.Nifti1Image(bad, nib.load(str(path)).affine), str(path))
    reports = check_dataset(open_dataset("msd_task02", root, validate="none"), deep=False)
    assert [r.label_values for r in reports] == [None, None]
    reports = check_dataset(open_dataset("msd_task02", root, validate="none"), strict=False)
    assert reports[0].ok and not reports[1].ok and "NaN" in reports[1].problem


def test_data_layer_imports_without_ray_mlflow_torch() -> None:
    code = (
        "import sys; sys.modules['ray'] = None; sys.modules['mlflow'] = None\n"
        "import raynas.data, raynas.data.tasks\n"
        "assert 'torch' not in sys.modules and 'monai' not in sys.modules, 'heavy import'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
