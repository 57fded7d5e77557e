"""Synthetic tasks: deterministic, non-trivial (two classes, noise, distractors, anisotropy)."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from raynas.data import ensure_synthetic, generate_case, open_dataset, write_synthetic
from raynas.data.synthetic import SPECS, cache_root, generate_hard_case


def _arrays(root: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    meta = json.loads((root / "dataset.json").read_text())
    return [
        (
            np.asanyarray(nib.load(root / e["image"]).dataobj),
            np.asanyarray(nib.load(root / e["label"]).dataobj),
        )
        for e in meta["training"]
    ]


@pytest.mark.parametrize("name", list(SPECS))
def test_same_seed_same_bytes_other_seed_differs(tmp_path: Path, name: str) -> None:
    a = _arrays(write_synthetic(tmp_path / "a", name=name, cases=3, seed=5))
    b = _arrays(write_synthetic(tmp_path / "b", name=name, cases=3, seed=5))
    c = _arrays(write_synthetic(tmp_path / "c", name=name, cases=3, seed=6))
    for (ia, la), (ib, lb) in zip(a, b, strict=True):
        assert ia.tobytes() == ib.tobytes() and la.tobytes() == lb.tobytes()
    assert all(ia.tobytes() != ic.tobytes() for (ia, _), (ic, _) in zip(a, c, strict=True))
    assert a[0][0].tobytes() != a[1][0].tobytes()  # cases differ from each other


@pytest.mark.parametrize("name", ["synthetic", "synthetic2d"])
def test_is_a_fair_segmentation_task(name: str) -> None:
    spec = SPECS[name]
    sizes, look_alike = [], 0
    for i in range(6):
        img, lab = generate_case(spec, 0, i)
        assert img.shape == lab.shape == spec.shape and lab.dtype == np.uint8
        counts = np.bincount(lab.ravel(), minlength=3)
        assert set(np.unique(lab)) == {0, 1, 2}
        assert counts[1] > 5 * counts[2] > 0  # a large organ and a small lesion
        sizes.append(counts[1])
        img = img.astype(np.float64)
        organ = img[lab == 1]
        lo, hi = np.percentile(organ, [10, 90])
        bg = img[lab == 0]
        # unlabelled tissue with organ-like intensity (distractors), not just empty background
        look_alike += int(((bg > lo) & (bg < hi)).sum())
        assert organ.std() > 0.02 * organ.mean()  # noise, bias and texture: not flat
        air = img[:3, :3, :]  # outside the body: Rician noise floor, not exact zeros
        assert air.std() > 0 and air.mean() < 0.2 * organ.mean()
    assert max(sizes) > 1.2 * min(sizes)  # cases vary in size
    assert look_alike > 0.08 * sum(sizes)


def test_files_have_anisotropic_spacing_and_proper_affine(synthetic_root: Path) -> None:
    img = nib.load(next((synthetic_root / "imagesTr").glob("*.nii.gz")))
    assert img.header.get_zooms()[:3] == pytest.approx((1.0, 1.0, 2.5))
    assert np.allclose(np.diag(img.affine)[:3], (1.0, 1.0, 2.5))
    assert nib.aff2axcodes(img.affine) == ("R", "A", "S")
    assert int(img.header["sform_code"]) == 1 and int(img.header["qform_code"]) == 1


def test_read_through_the_msd_reader(synthetic_root: Path, synthetic_dataset) -> None:
    ds = synthetic_dataset
    assert ds.root == synthetic_root and len(ds) == 6 and ds.num_classes == 3
    assert ds.in_channels == 1 and ds.modality == "MRI"
    assert {p.name for p in synthetic_root.iterdir()} == {"dataset.json", "imagesTr", "labelsTr"}


def test_generated_on_first_use_into_cache(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("RAYNAS_CACHE_DIR", str(tmp_path / "env"))
    assert cache_root() == tmp_path / "env"
    ds = open_dataset("synthetic2d", seed=2, synthetic_cases=2)
    assert ds.root == tmp_path / "env" / "synthetic" / "synthetic2d-seed2-n2"
    stamp = (ds.root / "dataset.json").stat().st_mtime_ns
    again = ensure_synthetic("synthetic2d", seed=2, cases=2)
    assert again == ds.root and (again / "dataset.json").stat().st_mtime_ns == stamp
    other = open_dataset("synthetic", seed=0, synthetic_cases=2, cache_dir=tmp_path / "arg")
    assert other.root == tmp_path / "arg" / "synthetic" / "synthetic-seed0-n2"
    assert not list(tmp_path.glob("**/.synthetic*"))  # no temporary folders left behind


def test_default_cache_is_home(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.delenv("RAYNAS_CACHE_DIR")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cache_root() == tmp_path / ".cache" / "raynas"


def test_hard_task_needs_context_and_full_resolution() -> None:
    """Cores look like unlabelled blobs; vessels are about a voxel thick; the walls that tell
    cores from distractors lie far from the cores."""
    from scipy import ndimage

    spec = SPECS["synthetic_hard"]
    look_alike = cores = 0
    for i in range(6):
        img, lab = generate_hard_case(spec, 0, i)
        assert img.shape == lab.shape == spec.shape and set(np.unique(lab)) == {0, 1, 2, 3}
        core = img[lab == 1].astype(np.float64)
        lo, hi = np.percentile(core, [10, 90])
        look_alike += int(((img > lo) & (img < hi) & (lab == 0)).sum())
        cores += int((lab == 1).sum())
        # vessels: thin, i.e. almost no vessel voxel survives an in-plane erosion by one voxel
        ves = lab == 2
        eroded = ndimage.binary_erosion(ves, structure=np.ones((3, 3, 1), bool))
        assert eroded.sum() < 0.2 * ves.sum()
        # the context is far: no wall within 15 mm of a core (beyond a level-0-only C2F net's
        # ~13-voxel receptive radius), and every core has one within 26 mm
        dist = ndimage.distance_transform_edt(lab != 3, sampling=spec.spacing)
        assert 15.0 <= dist[lab == 1].min() and dist[lab == 1].max() <= 26.0  # mm
    assert look_alike > 0.5 * cores  # unlabelled distractors with the cores' intensity
