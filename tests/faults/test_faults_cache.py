"""Fault corpus: the preprocess cache, as a hostile operator or a broken disk leaves it.

A cache file cut short or replaced by another case's file is found by the driver before Ray
starts, rebuilt from its case with one ``warning:`` line naming it, and the search's fingerprint
is that of a search on the clean cache; a cache on other data gives another fingerprint; a Ray
worker that cannot see the cache stops the search with one line before any trial. The
verification itself is tested fast, as plain functions (tests/data/test_preprocess.py); here:
the fingerprint, the worker preflight on a real local Ray, and one pair of searches through the
installed console script.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from procs import pids_with_marker, stop_pids

from raynas.config import load_preset
from raynas.data import open_dataset
from raynas.data.preprocess import preprocess_dataset, read_manifest
from raynas.errors import UserError
from raynas.pipeline.fingerprint import search_fingerprint
from raynas.spaces import load_space

RAYNAS = str(Path(sys.executable).with_name("raynas"))
TINY = [  # every stage runs, one step each: ~1 min on 2 cores
    "search", "--space", "c2f_small", "--dataset", "synthetic", "--preset", "smoke",
    *("--set", "coarse.epochs=1", "--set", "coarse.eval_topologies=2"),
    *("--set", "coarse.population=2", "--set", "coarse.top_k=1"),
    *("--set", "fine.epochs=1", "--set", "fine.warmup_epochs=0", "--set", "retrain.epochs=1"),
    *("--set", "coarse.steps_per_epoch=1", "--set", "fine.steps_per_epoch=1"),
    *("--set", "retrain.steps_per_epoch=1", "--set", "retrain.baselines=[]"),
    *("--set", "data.synthetic_cases=5", "--set", "data.cases=5", "--set", "data.folds=2"),
]  # fmt: skip


def _fingerprint(ds, cache: Path) -> dict:
    preset = load_preset("smoke", ["data.folds=3"])
    return search_fingerprint(preset=preset, space=load_space("c2f_small"), dataset=ds, cache=cache)


def test_fingerprint_covers_the_cache_files(synthetic_root: Path, tmp_path: Path) -> None:
    ds = open_dataset("synthetic", synthetic_root)
    spacing = ds.info.target_spacing
    clean = preprocess_dataset(ds, spacing=spacing, root=tmp_path / "a")
    reference = _fingerprint(ds, clean)
    assert reference["parts"]["dataset"]["cache"]
    # the same dataset, another cache whose files hold other data (the manifest agrees with
    # them, so nothing is rebuilt): the search on it cannot claim the clean fingerprint
    other = preprocess_dataset(ds, spacing=spacing, root=tmp_path / "b")
    first, second = sorted(other.glob("*.pt"))[:2]
    first.write_bytes(second.read_bytes())
    manifest = read_manifest(other)
    entry = manifest["cases"][first.stem]
    entry["sha256"] = hashlib.sha256(first.read_bytes()).hexdigest()
    entry["bytes"] = first.stat().st_size
    (other / "manifest.json").write_text(json.dumps(manifest))
    changed = _fingerprint(ds, other)
    assert changed["hash"] != reference["hash"]
    assert changed["parts"]["dataset"]["cache"] != reference["parts"]["dataset"]["cache"]
    # a swapped file the manifest does not vouch for is rebuilt: the clean fingerprint again
    swapped = preprocess_dataset(ds, spacing=spacing, root=tmp_path / "a")
    (clean / first.name).write_bytes((clean / second.name).read_bytes())
    assert preprocess_dataset(ds, spacing=spacing, root=tmp_path / "a") == swapped
    assert _fingerprint(ds, clean)["hash"] == reference["hash"]


@pytest.mark.ray
def test_worker_preflight_refuses_a_cache_the_node_cannot_see(
    synthetic_root: Path, tmp_path: Path
) -> None:
    os.environ.setdefault("RAY_TMPDIR", tempfile.mkdtemp(prefix="rnc"))
    from raynas.tracking import resolve_tracking_uri
    from raynas.tune import init_ray, preflight_on_worker, shutdown_ray

    ds = open_dataset("synthetic", synthetic_root)
    cache = preprocess_dataset(ds, spacing=ds.info.target_spacing, root=tmp_path / "cache")
    target = resolve_tracking_uri(None, workdir=tmp_path)
    runtime = init_ray(None, num_cpus=1)
    try:
        check = lambda folder: preflight_on_worker(  # noqa: E731
            None, target.uri, target.artifact_root, cache=folder, timeout=300
        )
        check(cache)  # visible: passes
        # node-local storage: the folder the driver wrote does not exist on the worker's node
        elsewhere = tmp_path / "node-local" / cache.name
        with pytest.raises(UserError) as info:
            check(elsewhere)
        line = str(info.value)
        assert "\n" not in line and str(elsewhere) in line and "--storage-path" in line
        # a file the worker sees at another size (a copy cut short)
        victim = sorted(cache.glob("*.pt"))[0]
        victim.write_bytes(victim.read_bytes()[:100])
        with pytest.raises(UserError, match=f"{victim}: 100 bytes"):
            check(cache)
    finally:
        shutdown_ray(runtime)


def _search(work: Path) -> subprocess.CompletedProcess:
    # short: Ray's unix sockets live under it (108-byte limit on their paths)
    ray_tmp = Path(tempfile.mkdtemp(prefix="rnc"))
    env = dict(os.environ, RAY_TMPDIR=str(ray_tmp), OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    env.pop("RAY_ADDRESS", None)
    try:
        return subprocess.run([RAYNAS, *TINY], cwd=work, env=env, capture_output=True, text=True,
                              timeout=600, stdin=subprocess.DEVNULL)  # fmt: skip
    finally:
        stop_pids(pids_with_marker(str(ray_tmp)))
        shutil.rmtree(ray_tmp, ignore_errors=True)


@pytest.mark.heavy
@pytest.mark.slow
@pytest.mark.ray
def test_truncated_and_swapped_cache_files_are_rebuilt_by_the_search(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    clean = _search(work)
    assert clean.returncode == 0, clean.stderr[-3000:]
    assert clean.stderr.strip() == "", clean.stderr[-3000:]
    (cache,) = (work / "raynas_runs" / "cache").glob("synthetic-*")
    files = sorted(cache.glob("*.pt"))
    good = {p.name: p.read_bytes() for p in files}
    truncated, swapped, donor = files[0], files[1], files[2]
    truncated.write_bytes(good[truncated.name][:100])  # a copy cut short
    swapped.write_bytes(good[donor.name])  # another case's file in its place

    again = _search(work)
    assert again.returncode == 0, again.stderr[-3000:]
    lines = again.stderr.strip().splitlines()
    assert len(lines) == 2, again.stderr[-3000:]
    for path, line in zip((truncated, swapped), lines, strict=True):
        assert line.startswith("warning: preprocess cache: ") and str(path) in line, line
    assert "100 bytes" in lines[0] and "SHA-256" in lines[1]
    # files left: the cache as the clean search wrote it, nothing temporary, two searches
    assert {p.name: p.read_bytes() for p in cache.glob("*.pt")} == good
    assert not [p for p in cache.parent.rglob(".*.tmp")]
    folders = sorted(p for p in (work / "raynas_runs" / "raynas").iterdir() if p.is_dir())
    assert len(folders) == 2
    states = [json.loads((f / "state.json").read_text()) for f in folders]
    assert states[0]["fingerprint"] == states[1]["fingerprint"]
    assert states[0]["fingerprint"]["parts"]["dataset"]["cache"]
