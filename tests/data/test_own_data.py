"""A user's own data (``--dataset PATH``): each layout read as it declares itself, the plan
computed from the data (target spacing, CT normalisation, patches, class frequencies), the plan
cache, and loaders built from multi-channel, multi-class folders in ``.nii.gz`` and ``.nrrd``."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from own_data import write_datalist, write_nnunet

from raynas.data import open_dataset
from raynas.data.layouts import read_layout
from raynas.data.plan import load_or_make_plan, make_plan, plan_patch, save_plan, target_spacing
from raynas.errors import DataError

ANISO = [(0.8, 0.8, 3.0), (0.7, 0.7, 5.0), (0.9, 0.9, 2.5), (0.8, 0.8, 4.0)]


@pytest.mark.parametrize(
    ("ending", "channels", "labels"),
    [
        (".nii.gz", ("T2", "ADC"), ("background", "a", "b")),
        (".nrrd", ("CT",), ("background", "liver")),
        (".nii", ("FLAIR", "T1w", "t1gd", "T2w"), ("background", "edema", "core", "enh")),
    ],
)
def test_nnunet_folder_declares_channels_and_classes(tmp_path: Path, ending, channels, labels):
    root = write_nnunet(tmp_path / "Dataset501_X", ending=ending, channels=channels, labels=labels)
    ds = open_dataset(str(root), validate="full")
    assert ds.name == "Dataset501_X" and ds.ref == str(root.absolute())
    assert ds.channels == channels and ds.in_channels == len(channels)
    assert ds.labels == dict(enumerate(labels)) and ds.num_classes == len(labels)
    assert [c.name for c in ds.cases] == [f"case_{i:03d}" for i in range(4)]  # no ._ stray
    first = ds.cases[0].images
    assert [p.name for p in first] == [f"case_000_{c:04d}{ending}" for c in range(len(channels))]
    assert ds.modality == ("CT" if channels == ("CT",) else "MRI")


def test_msd_folder_and_datalist_by_path(tmp_path: Path, make_msd) -> None:
    root = make_msd(tmp_path / "Task99_Mine", cases=3, channels=("T2", "ADC"),
                    labels=("background", "pz", "tz"))  # fmt: skip
    ds = open_dataset(str(root), validate="full")
    assert (ds.in_channels, ds.num_classes, len(ds)) == (2, 3, 3)
    listed = write_datalist(tmp_path / "dl", classes=3)
    dl = open_dataset(str(listed), tmp_path / "dl", validate="full")
    assert dl.labels == {0: "background", 1: "class1", 2: "class2"}  # read from the labels
    assert [c.name for c in dl.cases] == ["pat0", "pat1", "pat2", "pat3"]
    declared = write_datalist(tmp_path / "dl2", classes=2, declare=True)
    assert open_dataset(str(declared), tmp_path / "dl2").labels == {0: "background", 1: "c1"}


def test_msd_names_still_need_their_root() -> None:
    with pytest.raises(DataError, match="--data-root is required for msd_task02"):
        open_dataset("msd_task02")


def test_target_spacing_median_and_anisotropic_axis() -> None:
    assert target_spacing(np.array([(1, 1, 2), (1, 1, 2.5), (1.2, 1.2, 2)])) == (
        [1.0, 1.0, 2.0], False,
    )  # fmt: skip
    # median z 3.5 > 3 x 0.8: z takes its 10th percentile (2.65), not less than the others
    assert target_spacing(np.array(ANISO)) == ([0.8, 0.8, 2.65], True)
    assert target_spacing(np.array([(0.5, 0.5, 4.0)] * 3))[0] == [0.5, 0.5, 4.0]


def test_patch_fits_stride_and_budget() -> None:
    # the median shape rounded up to the stride, when it fits
    assert plan_patch([100, 90, 40], [1, 1, 1], stride=16, budget_voxels=1e9) == [112, 96, 48]
    # shrinks the axis of largest physical extent first
    patch = plan_patch([300, 300, 60], [0.7, 0.7, 2.5], stride=16, budget_voxels=96**3)
    assert all(p % 16 == 0 for p in patch) and np.prod(patch) <= 96**3
    extent = [p * s for p, s in zip(patch, (0.7, 0.7, 2.5), strict=True)]
    assert patch[0] == patch[1] and max(extent) - min(extent) <= 16 * 2.5  # balanced in mm
    # never below one stride; the deepest map keeps two voxels
    assert plan_patch([8, 8, 8], [1, 1, 1], stride=16, budget_voxels=1) == [32, 16, 16]


def test_plan_from_the_data_ct_nrrd(tmp_path: Path) -> None:
    root = write_nnunet(tmp_path / "ct", ending=".nrrd", channels=("CT",),
                        labels=("background", "liver"), ct=True, spacings=ANISO)  # fmt: skip
    plan = make_plan(read_layout(root), stride=16, memory_gb=8.0)
    assert plan["spacing"]["target"] == [0.8, 0.8, 2.65] and plan["spacing"]["anisotropic"]
    fg = plan["fingerprint"]["intensity"][0]["foreground"]
    assert fg["mean"] == pytest.approx(-100, abs=5) and fg["std"] == pytest.approx(30, abs=5)
    norm = plan["normalization"]
    assert norm["hu_window"] == [fg["percentile_00_5"], fg["percentile_99_5"]]
    assert norm["ct_zscore"] == [fg["mean"], fg["std"]]
    # class 1 is one box of 9x12x6 voxels of 24x24x12 in every case (own_data.case_arrays)
    assert plan["fingerprint"]["classes"]["1"] == {
        "name": "liver", "voxel_fraction": pytest.approx(9 * 12 * 6 / (24 * 24 * 12)),
        "cases_with": 4,
    }  # fmt: skip
    # median shape at the target spacing: 24 x 24 x 12*3.5/2.65 ~ 15.8 -> one stride up
    assert plan["median_shape_at_target"] == [24.0, 24.0, pytest.approx(15.8, abs=0.1)]
    assert plan["patch"]["search"] == plan["patch"]["retrain"] == [32, 32, 16]


def test_ct_plan_clips_and_zscores(tmp_path: Path) -> None:
    """Training sees (clip(x, p0.5, p99.5) - mean) / std of the foreground."""
    import torch

    from raynas.data.transforms import val_transforms

    root = write_nnunet(tmp_path / "ct", channels=("CT",), labels=("background", "liver"), ct=True)
    plan, path = load_or_make_plan(read_layout(root), cache_dir=tmp_path / "cache")
    ds = open_dataset(str(root), plan=path)
    lo, hi = ds.info.hu_window
    mean, std = ds.info.ct_zscore
    t = val_transforms(modality="CT", spacing=ds.info.target_spacing, hu_window=ds.info.hu_window,
                       ct_zscore=ds.info.ct_zscore)  # fmt: skip
    out = t(ds.cases[0].as_dict())["image"]
    assert float(out.min()) == pytest.approx((lo - mean) / std, abs=1e-4)
    assert float(out.max()) == pytest.approx((hi - mean) / std, abs=1e-4)
    fg = out[0][t(ds.cases[0].as_dict())["label"][0] > 0]
    assert float(fg.mean()) == pytest.approx(0.0, abs=0.1) and isinstance(fg, torch.Tensor)


def test_plan_cache_reused_checked_and_deferred(tmp_path: Path) -> None:
    root = write_nnunet(tmp_path / "nn")
    layout = read_layout(root)
    plan, path = load_or_make_plan(layout, cache_dir=tmp_path / "c")
    assert path.is_file() and path.name.startswith("plan-nn-")
    os.utime(path, (1, 1))
    again, same = load_or_make_plan(layout, cache_dir=tmp_path / "c")
    assert same == path and path.stat().st_mtime == 1 and again == plan  # read back, not redone
    path.write_text("{ broken")
    fixed, _ = load_or_make_plan(layout, cache_dir=tmp_path / "c")
    assert fixed == plan and json.loads(path.read_text()) == plan  # a damaged entry is redone
    # another memory budget is another plan file
    assert load_or_make_plan(layout, cache_dir=tmp_path / "c", memory_gb=2)[1] != path
    # a run command opens the dataset without writing; save_plan writes it later
    ds = open_dataset(str(root), plan_cache=tmp_path / "d", write_plan=False)
    assert ds.plan_file and not Path(ds.plan_file).exists()
    assert save_plan(ds) == Path(ds.plan_file) and read_layout(root).name == "nn"
    assert json.loads(Path(ds.plan_file).read_text())["digest"] == ds.plan_data["digest"]


def test_stale_plan_is_refused(tmp_path: Path) -> None:
    a = write_nnunet(tmp_path / "a")
    b = write_nnunet(tmp_path / "b", cases=3)
    _, path = load_or_make_plan(read_layout(a), cache_dir=tmp_path / "c")
    with pytest.raises(DataError, match="a stale plan"):
        open_dataset(str(b), plan=path)


@pytest.mark.parametrize("ending", [".nii.gz", ".nrrd", ".mha"])
def test_loaders_multi_channel_multi_class(tmp_path: Path, ending: str) -> None:
    from raynas.data import build_loaders

    if ending == ".mha":
        pytest.importorskip("itk", reason=".mha needs the optional ITK (raynas[itk])")

    root = write_nnunet(tmp_path / "nn", ending=ending, cases=4)
    _, path = load_or_make_plan(read_layout(root), cache_dir=tmp_path / "c")
    ds = open_dataset(str(root), plan=path)
    bundle = build_loaders(ds, folds=2, batch_size=2, cache="none")
    batch = next(iter(bundle.train))
    assert tuple(batch["image"].shape) == (2, 2, *ds.info.search_patch)
    assert bundle.in_channels == 2 and bundle.num_classes == 3
    val = next(iter(bundle.val))
    assert set(val["label"].unique().tolist()) == {0, 1, 2}
    # the two channels differ (file 0001 is not a copy of file 0000)
    assert not bool((val["image"][0, 0] == val["image"][0, 1]).all())
    # the plan read the same voxels: each class is one box of known size in every case
    counts = json.loads(Path(path).read_text())["fingerprint"]["cases"]["case_000"]
    assert counts["class_voxels"] == {"0": 24 * 24 * 12 - 648 - 432, "1": 432, "2": 648}


@pytest.mark.parametrize("space", ["c2f_small", "thrifty_small"])
def test_four_channels_four_classes_reach_every_network(space: str) -> None:
    """A BraTS-like folder (4 MRI sequences, background + 3 tumour classes): the coarse and fine
    supernets, a sampled derived network and the baselines all take 4 channels in, 4 classes
    out, and the scoring gives one Dice per foreground class."""
    import torch

    from raynas.engine import evaluate
    from raynas.nets import build_network, dynunet_plan, unet_architecture, unetpp_architecture
    from raynas.spaces import load_space

    s = load_space(space)
    dims = s.config.spatial_dims
    size = (32, 32, 16) if dims == 3 else (32, 32)
    x = torch.randn(1, 4, *size)
    io = {"in_channels": 4, "out_channels": 4}
    cand = s.coarse_candidates()[0]
    nets = [
        s.build_coarse_supernet(cand, width=8, **io),
        build_network(s.sample_architecture(seed=0, width=8, **io)),
        build_network(unet_architecture(spatial_dims=dims, width=8, **io)),
        build_network(unetpp_architecture(spatial_dims=dims, width=8, **io)),
        build_network(dynunet_plan((1.0,) * dims, size, base_width=8, **io)),
    ]
    for net in nets:
        net.eval()
        with torch.no_grad():
            out = net(x)
        out = out[0] if isinstance(out, list | tuple) else out
        assert tuple(out.shape) == (1, 4, *size), type(net).__name__
    volume = (32, 32, 4)  # scoring takes whole volumes (a 2D network runs slice by slice)
    label = torch.zeros(1, 1, *volume, dtype=torch.int64)
    label[:, :, :8, :8] = 1
    label[:, :, 8:16, :8] = 2
    label[:, :, 16:24, :8] = 3
    loader = [{"image": torch.randn(1, 4, *volume), "label": label}]
    roi = volume if dims == 3 else volume[:2]
    result = evaluate(nets[2], loader, num_classes=4, roi_size=roi, spatial_dims=dims,
                      device=torch.device("cpu"))  # fmt: skip
    assert len(result.per_class) == 3
