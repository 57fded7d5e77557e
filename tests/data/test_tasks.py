"""Built-in dataset metadata: every entry is complete and usable without extra options."""

from __future__ import annotations

import pytest

from raynas.data import DATASETS, DatasetInfo, get_dataset_info, list_datasets
from raynas.errors import DataError, UserError

MSD = {
    "msd_task01": ("Task01_BrainTumour", "MRI", 4, 4),
    "msd_task02": ("Task02_Heart", "MRI", 1, 2),
    "msd_task03": ("Task03_Liver", "CT", 1, 3),
    "msd_task04": ("Task04_Hippocampus", "MRI", 1, 3),
    "msd_task05": ("Task05_Prostate", "MRI", 2, 3),
    "msd_task06": ("Task06_Lung", "CT", 1, 2),
    "msd_task07": ("Task07_Pancreas", "CT", 1, 3),
    "msd_task08": ("Task08_HepaticVessel", "CT", 1, 3),
    "msd_task09": ("Task09_Spleen", "CT", 1, 2),
    "msd_task10": ("Task10_Colon", "CT", 1, 2),
}


def test_registry_lists_all_msd_tasks_and_synthetic() -> None:
    assert DATASETS.list() == [*MSD, "synthetic", "synthetic2d", "synthetic_hard"]
    assert [i.name for i in list_datasets("msd_*")] == list(MSD)


@pytest.mark.parametrize("name", list(MSD))
def test_msd_metadata(name: str) -> None:
    folder, modality, channels, classes = MSD[name]
    info = get_dataset_info(name)
    assert (info.task_folder, info.modality, info.in_channels, info.num_classes) == (
        folder,
        modality,
        channels,
        classes,
    )
    assert info.labels[0] == "background" and not info.synthetic
    assert info.default_mode == "3d"
    assert (info.hu_window is not None) == (modality == "CT")
    if info.hu_window:
        assert info.hu_window[0] < info.hu_window[1]


@pytest.mark.parametrize("name", DATASETS.list())
def test_patches_divisible_by_16_and_spacing_positive(name: str) -> None:
    info = get_dataset_info(name)
    for patch in (info.search_patch, info.retrain_patch):
        dims = patch[:2] if info.default_mode == "2d" else patch
        assert len(patch) == 3 and all(p > 0 and p % 16 == 0 for p in dims), patch
        assert info.default_mode == "3d" or patch[2] == 1
    assert all(p <= r for p, r in zip(info.search_patch, info.retrain_patch, strict=True))
    assert len(info.target_spacing) == 3 and min(info.target_spacing) > 0


def test_synthetic_metadata_fits_generated_shapes() -> None:
    s3, s2 = get_dataset_info("synthetic"), get_dataset_info("synthetic2d")
    assert s3.search_patch == (32, 32, 16) and s3.default_mode == "3d"
    assert s2.search_patch == (64, 64, 1) and s2.default_mode == "2d"
    for info in (s3, s2):
        assert info.modality == "MRI" and info.num_classes == 3 and info.synthetic
        assert info.target_spacing == (1.0, 1.0, 2.5)


def test_unknown_name_lists_valid_ones() -> None:
    with pytest.raises(DataError) as err:
        get_dataset_info("msd_task11")
    assert isinstance(err.value, UserError)
    assert "msd_task11" in str(err.value) and "msd_task05" in str(err.value)
    assert "synthetic2d" in str(err.value)


@pytest.mark.parametrize(
    "change, match",
    [
        ({"modality": "PET"}, "modality"),
        ({"search_patch": (30, 32, 16)}, "divisible by 16"),
        ({"labels": {0: "bg"}}, "labels"),
        ({"modality": "CT", "hu_window": None}, "hu_window"),
    ],
)
def test_dataset_info_validates(change: dict, match: str) -> None:
    base = dict(
        name="x",
        organ="o",
        modality="MRI",
        channels=("MRI",),
        labels={0: "bg", 1: "fg"},
        target_spacing=(1.0, 1.0, 1.0),
        search_patch=(32, 32, 16),
        retrain_patch=(32, 32, 16),
    )
    with pytest.raises(ValueError, match=match):
        DatasetInfo(**{**base, **change})
