"""Preprocess once: the shared cache of resampled, normalised volumes (raynas.data.preprocess)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from raynas.data import build_loaders, open_dataset
from raynas.data.preprocess import cache_digest, preprocess_dataset, read_manifest

torch.set_num_threads(2)

SPACING = (1.5, 1.5, 2.0)  # the files are at 1 x 1 x 2 mm: a real resampling


@pytest.fixture
def dataset(tmp_path: Path, make_msd):
    root = make_msd(tmp_path / "task", cases=5, shape=(24, 24, 12), junk=False)
    return open_dataset("synthetic", root)


@pytest.fixture
def nifti_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Counts the NIfTI files the real MONAI reader opens."""
    from monai.data import NibabelReader

    calls: list[str] = []
    original = NibabelReader.read

    def read(self, data, **kwargs):
        calls.append(str(data))
        return original(self, data, **kwargs)

    monkeypatch.setattr(NibabelReader, "read", read)
    return calls


def _loaders(ds, **kwargs):
    return build_loaders(
        ds, patch_size=(16, 16, 8), spacing=SPACING, batch_size=2, samples_per_case=2, folds=3,
        seed=3, test_fraction=0.2, check=False, **kwargs,
    )


def _tensors(bundle) -> list[torch.Tensor]:
    out = []
    for loader in (bundle.train, bundle.weights, bundle.val, bundle.test):
        for batch in loader:
            out += [batch["image"], batch["label"]]
    return out


def test_trials_read_the_cache_not_nifti_and_get_the_same_tensors(
    dataset, tmp_path: Path, nifti_reads: list[str]
) -> None:
    folder = preprocess_dataset(dataset, spacing=SPACING, root=tmp_path / "cache")
    assert len(nifti_reads) == 2 * len(dataset)  # the driver reads every case once
    manifest = read_manifest(folder)
    assert sorted(manifest["cases"]) == sorted(c.name for c in dataset.cases)
    # 24 x 24 x 12 voxels at 1 x 1 x 2 mm, resampled to 1.5 x 1.5 x 2 mm
    assert manifest["cases"][dataset.cases[0].name]["shape"] == [1, 16, 16, 12]

    nifti_reads.clear()
    cached = _tensors(_loaders(dataset, preprocessed=folder))
    assert nifti_reads == []  # a trial's data setup reads no NIfTI file
    plain = _tensors(_loaders(dataset))  # the NIfTI + Spacing + normalise path
    assert len(nifti_reads) == 2 * len(dataset)
    assert len(cached) == len(plain) > 0
    for a, b in zip(cached, plain, strict=True):
        assert a.dtype == b.dtype and torch.equal(a, b)

    # a second build (another trial, another search) reuses the folder without rewriting it
    stamp = (folder / "manifest.json").stat().st_mtime_ns
    nifti_reads.clear()
    assert preprocess_dataset(dataset, spacing=SPACING, root=tmp_path / "cache") == folder
    assert nifti_reads == [] and (folder / "manifest.json").stat().st_mtime_ns == stamp


def test_cache_key_changes_with_settings_and_files(dataset, tmp_path: Path) -> None:
    key = cache_digest(dataset, SPACING)
    assert cache_digest(dataset, SPACING) == key
    assert cache_digest(dataset, (1.0, 1.0, 2.0)) != key
    ct = dataset.__class__(
        root=dataset.root, cases=dataset.cases, labels=dataset.labels, channels=dataset.channels,
        info=dataset.info.__class__(**{**dataset.info.__dict__, "hu_window": (-100.0, 200.0)}),
    )
    assert cache_digest(ct, SPACING) != key
    one = preprocess_dataset(dataset, spacing=SPACING, root=tmp_path)
    other = preprocess_dataset(dataset, spacing=(1.0, 1.0, 2.0), root=tmp_path)
    assert one != other and one.parent == other.parent == tmp_path
    # a changed case file is a new digest: the stale folder is never read
    label = dataset.cases[0].label
    label.write_bytes(label.read_bytes() + b"\x00")
    assert cache_digest(dataset, SPACING) != key


def test_cache_made_at_another_spacing_is_refused(dataset, tmp_path: Path) -> None:
    folder = preprocess_dataset(dataset, spacing=(1.0, 1.0, 2.0), root=tmp_path)
    with pytest.raises(ValueError, match="spacing"):
        _loaders(dataset, preprocessed=folder)
    manifest = read_manifest(folder)
    del manifest["cases"][dataset.cases[0].name]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match=dataset.cases[0].name):
        build_loaders(dataset, patch_size=(16, 16, 8), spacing=(1.0, 1.0, 2.0), folds=3,
                      check=False, preprocessed=folder)


def test_trial_spec_sends_trials_to_the_cache(
    synthetic_root: Path, tmp_path: Path, nifti_reads: list[str]
) -> None:
    from raynas.config import load_preset
    from raynas.stages import TrialSpec
    from raynas.stages.context import build_trial_data

    ds = open_dataset("synthetic", synthetic_root)
    preset = load_preset("smoke", overrides=["data.folds=3"])
    folder = preprocess_dataset(ds, spacing=ds.info.target_spacing, root=tmp_path)
    spec = TrialSpec(stage="coarse", space="c2f_small", dataset="synthetic",
                     data_root=str(synthetic_root), seed=0, preset=preset.model_dump(mode="json"),
                     preprocessed=str(folder))
    nifti_reads.clear()
    data = build_trial_data(TrialSpec.from_dict(spec.to_dict()), spatial_dims=3)
    next(iter(data.bundle.train))
    next(iter(data.bundle.val))
    assert nifti_reads == []


@pytest.fixture
def hashed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Counts the files the cache hashes (every whole-file SHA-256 goes through one function)."""
    from raynas.data import preprocess

    calls: list[str] = []
    original = preprocess._file_digest

    def digest(path):
        calls.append(str(path))
        return original(path)

    monkeypatch.setattr(preprocess, "_file_digest", digest)
    return calls


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]


@pytest.mark.parametrize("fault", ["truncated", "swapped"])
def test_a_bad_cache_file_is_rebuilt_with_one_warning_naming_it(
    dataset, tmp_path: Path, caplog: pytest.LogCaptureFixture, fault: str
) -> None:
    from raynas.data.preprocess import cache_files_digest, check_cache_files

    folder = preprocess_dataset(dataset, spacing=SPACING, root=tmp_path)
    first, second = (folder / f"{c.name}.pt" for c in dataset.cases[:2])
    clean = {p.name: p.read_bytes() for p in folder.glob("*.pt")}
    clean_digest = cache_files_digest(folder)
    if fault == "truncated":
        first.write_bytes(clean[first.name][:100])
    else:  # another case's (valid) file in its place
        first.write_bytes(clean[second.name])
    names = {c.name for c in dataset.cases}
    assert set(check_cache_files(folder, names)) == {dataset.cases[0].name}

    caplog.set_level("WARNING", logger="raynas")
    assert preprocess_dataset(dataset, spacing=SPACING, root=tmp_path) == folder
    (line,) = _warnings(caplog)
    assert str(first) in line and "rebuilt" in line
    assert {p.name: p.read_bytes() for p in folder.glob("*.pt")} == clean  # the same bytes
    assert cache_files_digest(folder) == clean_digest
    assert check_cache_files(folder, names) == {}
    caplog.clear()
    preprocess_dataset(dataset, spacing=SPACING, root=tmp_path)
    assert _warnings(caplog) == []  # nothing left to rebuild


def test_cache_bytes_do_not_depend_on_the_build(dataset, tmp_path: Path) -> None:
    from raynas.data.preprocess import cache_files_digest

    one = preprocess_dataset(dataset, spacing=SPACING, root=tmp_path / "a")
    two = preprocess_dataset(dataset, spacing=SPACING, root=tmp_path / "b")
    assert cache_files_digest(one) == cache_files_digest(two)
    assert read_manifest(one)["cases"] == read_manifest(two)["cases"]


def test_unchanged_source_files_are_not_hashed_again(
    dataset, tmp_path: Path, hashed: list[str]
) -> None:
    index = tmp_path / "index.json"
    key = cache_digest(dataset, SPACING, index=index)
    assert len(hashed) == 2 * len(dataset)  # every image and label once
    hashed.clear()
    assert cache_digest(dataset, SPACING, index=index) == key
    assert hashed == []  # the second open hashes nothing
    # a file edited in place (same size) is hashed again, and the digest follows it
    label = dataset.cases[0].label
    data = bytearray(label.read_bytes())
    data[-1] ^= 0xFF
    label.write_bytes(bytes(data))
    changed = cache_digest(dataset, SPACING, index=index)
    assert changed != key and hashed == [str(label)]
    assert cache_digest(dataset, SPACING) == changed  # the same as without an index


def test_preprocess_reuses_the_index_under_its_root(
    dataset, tmp_path: Path, hashed: list[str]
) -> None:
    folder = preprocess_dataset(dataset, spacing=SPACING, root=tmp_path)
    hashed.clear()
    assert preprocess_dataset(dataset, spacing=SPACING, root=tmp_path) == folder
    # no source file hashed again; each cache file verified once
    assert sorted(hashed) == sorted(str(folder / f"{c.name}.pt") for c in dataset.cases)


@pytest.mark.parametrize("stage", ["coarse", "retrain"])
def test_only_the_retrain_stage_loads_the_test_volumes(
    synthetic_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stage: str
) -> None:
    from raynas.config import load_preset
    from raynas.stages import TrialSpec
    from raynas.stages.context import build_trial_data

    ds = open_dataset("synthetic", synthetic_root)
    preset = load_preset("smoke", overrides=["data.folds=3", "data.cache=memory"])
    folder = preprocess_dataset(ds, spacing=ds.info.target_spacing, root=tmp_path)
    loaded: list[str] = []
    original = torch.load

    def load(path, *args, **kwargs):
        loaded.append(Path(path).stem)
        return original(path, *args, **kwargs)

    monkeypatch.setattr(torch, "load", load)
    spec = TrialSpec(stage=stage, space="c2f_small", dataset="synthetic",
                     data_root=str(synthetic_root), seed=0, preset=preset.model_dump(mode="json"),
                     preprocessed=str(folder))
    data = build_trial_data(spec, spatial_dims=3, retrain=stage == "retrain")
    test_cases = data.bundle.test_cases
    assert test_cases  # the smoke preset holds out test cases
    if stage == "coarse":  # a search-stage trial: no test loader, no test volume read or kept
        assert data.bundle.test is None
        assert not set(test_cases) & set(loaded)
        assert set(loaded) == {*data.bundle.train_cases, *data.bundle.val_cases}
    else:
        assert data.bundle.test is not None
        assert set(test_cases) <= set(loaded)
