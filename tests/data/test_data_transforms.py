"""Transforms and loaders: shapes, dtypes, normalisation, resampling, 2D mode, caching."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from raynas.data import build_loaders, open_dataset, train_transforms, val_transforms

torch.set_num_threads(2)


@pytest.mark.parametrize("cache", ["memory", "disk", "none"])
def test_3d_loaders_shapes_and_dtypes(synthetic_dataset, cache: str, tmp_path: Path) -> None:
    b = build_loaders(
        synthetic_dataset,
        mode="3d",
        patch_size=(32, 32, 16),
        batch_size=2,
        samples_per_case=2,
        cache=cache,
        folds=3,
        fold=0,
        seed=0,
        cache_dir=tmp_path,
    )
    assert (b.in_channels, b.num_classes, b.spatial_dims, b.patch_size) == (1, 3, 3, (32, 32, 16))
    assert len(b.train_cases) == 4 and len(b.val_cases) == 2
    assert set(b.weights_cases).isdisjoint(b.arch_cases)
    assert sorted(b.weights_cases + b.arch_cases) == sorted(b.train_cases)
    for loader in (b.train, b.weights, b.arch):
        batch = next(iter(loader))
        assert batch["image"].shape == (4, 1, 32, 32, 16)  # batch_size x samples_per_case
        assert batch["label"].shape == (4, 1, 32, 32, 16)
        assert batch["image"].dtype == torch.float32 and batch["label"].dtype == torch.int64
        assert set(batch["label"].unique().tolist()) <= {0, 1, 2}
    val = list(b.val)
    assert len(val) == 2 and all(v["image"].shape == (1, 1, 32, 32, 16) for v in val)
    img = val[0]["image"]
    assert abs(float(img.mean())) < 0.1 and abs(float(img.std()) - 1) < 0.1  # z-score
    if cache == "disk":
        assert list((tmp_path / "persistent").glob("synthetic-*/*.pt"))


def test_foreground_aware_crops(synthetic_dataset) -> None:
    b = build_loaders(
        synthetic_dataset,
        patch_size=(16, 16, 16),
        batch_size=4,
        samples_per_case=4,
        folds=3,
        seed=1,
    )
    labels = torch.cat([x["label"] for x in b.train])
    fg = (labels.flatten(1) > 0).any(1).float().mean()
    assert fg >= 0.4  # pos:neg = 1:1 -> about half the patches hold foreground


def test_2d_mode_gives_slices_and_whole_volumes(synthetic2d_dataset) -> None:
    b = build_loaders(synthetic2d_dataset, batch_size=2, samples_per_case=2, folds=3)
    assert b.mode == "2d" and b.spatial_dims == 2 and b.patch_size == (64, 64)
    batch = next(iter(b.train))
    assert batch["image"].shape == (4, 1, 64, 64) and batch["label"].shape == (4, 1, 64, 64)
    assert batch["image"].dtype == torch.float32 and batch["label"].dtype == torch.int64
    assert next(iter(b.arch))["image"].shape[1:] == (1, 64, 64)
    val = next(iter(b.val))
    assert val["image"].shape == (1, 1, 64, 64, 8) and val["label"].shape == (1, 1, 64, 64, 8)


def test_2d_mode_on_a_3d_dataset_uses_in_plane_patch(synthetic_dataset) -> None:
    b = build_loaders(
        synthetic_dataset,
        mode="2d",
        patch_size=(32, 32, 16),
        folds=3,
        batch_size=1,
        samples_per_case=1,
    )
    assert next(iter(b.train))["image"].shape == (1, 1, 32, 32)


def test_multimodal_4d_images_become_channels(tmp_path: Path, make_msd) -> None:
    root = make_msd(
        tmp_path / "Task05",
        cases=4,
        channels=("T2", "ADC"),
        labels=("background", "PZ", "TZ"),
        spacing=(0.62, 0.62, 3.6),
    )
    ds = open_dataset("msd_task05", root)
    b = build_loaders(
        ds,
        patch_size=(16, 16, 16),
        batch_size=1,
        samples_per_case=1,
        folds=2,
        spacing=(0.62, 0.62, 3.6),
    )
    batch = next(iter(b.train))
    assert batch["image"].shape == (1, 2, 16, 16, 16)
    val = next(iter(b.val))["image"][0]
    for ch in val:  # per-channel z-score over non-zero voxels
        assert abs(float(ch.mean())) < 0.05 and abs(float(ch.std()) - 1) < 0.05


def test_ct_window_and_resampling(tmp_path: Path, make_msd) -> None:
    root = make_msd(tmp_path / "Task09", cases=1, ct=True, spacing=(1.0, 1.0, 2.0))
    ds = open_dataset("msd_task09", root)
    t = val_transforms(modality="CT", spacing=(2.0, 2.0, 2.0), hu_window=ds.info.hu_window)
    out = t(ds.cases[0].as_dict())
    assert out["image"].shape == (1, 8, 8, 8)  # 16x16x8 at 1x1x2 mm -> 2 mm isotropic
    assert float(out["image"].min()) >= 0.0 and float(out["image"].max()) <= 1.0
    assert out["label"].dtype == torch.int64 and set(out["label"].unique().tolist()) <= {0, 1}


def test_orientation_is_ras(tmp_path: Path, make_msd) -> None:
    import nibabel as nib
    import numpy as np

    root = make_msd(tmp_path / "T", cases=1)  # LPS-like affine: x and y flipped
    raw = np.asanyarray(nib.load(root / "imagesTr" / "case_000.nii.gz").dataobj)
    ds = open_dataset("msd_task02", root)
    t = val_transforms(modality="MRI", spacing=(1.0, 1.0, 2.0))
    img = t(ds.cases[0].as_dict())["image"][0].numpy()
    nz = raw[raw != 0]
    expected = (raw[::-1, ::-1, :] - nz.mean()) / nz.std()
    assert np.allclose(img, expected, atol=1e-3)


def test_train_transforms_are_seedable(synthetic_dataset) -> None:
    item = synthetic_dataset.cases[0].as_dict()
    kw = dict(modality="MRI", spacing=(1, 1, 2.5), patch_size=(16, 16, 16), samples_per_case=2)
    a, b = train_transforms(**kw), train_transforms(**kw)
    a.set_random_state(seed=4)
    b.set_random_state(seed=4)
    for x, y in zip(a(dict(item)), b(dict(item)), strict=True):
        assert torch.equal(x["image"], y["image"]) and torch.equal(x["label"], y["label"])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"mode": "4d"}, "mode"),
        ({"cache": "ram"}, "cache"),
        ({"batch_size": 0}, "batch_size"),
        ({"samples_per_case": 0}, "samples_per_case"),
        ({"patch_size": (32, 32)}, "patch_size"),
        ({"max_val_cases": 0}, "max_val_cases"),
    ],
)
def test_build_loaders_rejects_bad_options(synthetic_dataset, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build_loaders(synthetic_dataset, **{"folds": 3, "mode": "3d", **kwargs})
