"""The bad-input corpus: every case runs the *installed* ``raynas`` console script as a
subprocess and must end with exit code 2 and exactly one stderr line, ``error: ...``, naming the
culprit (the option, ``--set`` or file), with nothing left behind: no Ray session under the
``RAY_TMPDIR`` it was given (and no process mentioning it), no MLflow store or run, no output
folder. Usage errors (unknown/missing option, wrong type, unknown command) follow the same rule:
one line, ``error: raynas CMD: <click's message> (see 'raynas CMD --help')``.

The cases run two at a time (each pays the CLI's imports); one test per case reads its result.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from msd_writer import write_msd
from procs import free_port, pids_with_marker, stop_pids

pytestmark = pytest.mark.slow  # ~60 subprocesses of ~5 s CPU each: 2-3 min on 2 idle cores

RAYNAS = str(Path(sys.executable).with_name("raynas"))
SMOKE = ["--preset", "smoke"]
C2F = ["search", "--space", "c2f", "--dataset", "synthetic", *SMOKE]
SMALL = ["search", "--space", "c2f_small", "--dataset", "synthetic", *SMOKE]
THRIFTY = ["search", "--space", "thrifty", "--dataset", "synthetic2d", *SMOKE]

Case = Callable[[Path, Path], tuple[list[str], str]]  # (shared folder, case folder) -> argv, needle


def _msd(shared: Path, name: str, **options) -> Path:
    root = shared / name
    if not root.exists():
        write_msd(root, **options)
    return root


def _msd_search(root: Path) -> list[str]:
    return ["search", "--space", "c2f_small", "--dataset", "msd_task02", "--data-root", str(root),
            *SMOKE, "--set", "data.folds=3", "--set", "data.patch_size=[16,16,8]"]  # fmt: skip


def _file(folder: Path, name: str, text: str) -> str:
    path = folder / name
    path.write_text(text)
    return str(path)


class _Planted:
    """A pickle that would create ``path`` when loaded."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


BOMB = (
    "name: bomb\ninherits: smoke\n"
    'a: &a ["x","x","x","x","x","x","x","x","x"]\n'
    "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
    "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
    "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
    "retrain: {hparams: {lr: {type: choice, values: [*g]}}}\n"
)


def _c(argv: list[str], needle: str) -> Case:
    return lambda shared, here: (argv, needle)


def _nan_voxel(shared: Path, here: Path) -> tuple[list[str], str]:
    import nibabel as nib

    root = write_msd(here / "T", cases=4)
    path = root / "imagesTr" / "case_002.nii.gz"
    ref = nib.load(str(path))
    img = np.asanyarray(ref.dataobj).copy()
    img[1, 2, 3] = np.nan
    nib.save(nib.Nifti1Image(img, ref.affine), str(path))
    return _msd_search(root), "imagesTr/case_002.nii.gz: 1 NaN"


def _truncated(shared: Path, here: Path) -> tuple[list[str], str]:
    root = write_msd(here / "T", cases=4)
    path = root / "imagesTr" / "case_001.nii.gz"
    path.write_bytes(path.read_bytes()[:40])
    return _msd_search(root), "imagesTr/case_001.nii.gz: unreadable"


def _missing_label(shared: Path, here: Path) -> tuple[list[str], str]:
    root = write_msd(here / "T", cases=4)
    (root / "labelsTr" / "case_003.nii.gz").unlink()
    return _msd_search(root), "labelsTr/case_003.nii.gz"


def _no_dataset_json(shared: Path, here: Path) -> tuple[list[str], str]:
    root = write_msd(here / "T", cases=4)
    (root / "dataset.json").unlink()
    return _msd_search(root), "dataset.json"


def _malformed_json(shared: Path, here: Path) -> tuple[list[str], str]:
    root = write_msd(here / "T", cases=4)
    (root / "dataset.json").write_text('{"training": [')
    return ["datasets", "check", "msd_task02", "--data-root", str(root)], "malformed JSON"


def _unet_files(shared: Path) -> Path:
    """``unet.json`` (a 3-class 3D U-Net) in ``shared``."""
    path = shared / "unet.json"
    if not path.exists():
        from raynas.nets.baselines import unet_architecture

        arch = unet_architecture(spatial_dims=3, in_channels=1, out_channels=3, width=4)
        path.write_text(arch.to_json())
    return path


def _planted_pickle(shared: Path, here: Path) -> tuple[list[str], str]:
    (here / "m").mkdir()
    weights = here / "m" / "model.pt"
    # protocol 2, as torch.save writes (torch warns about others before refusing them)
    weights.write_bytes(pickle.dumps({"state": _Planted(here / "PLANTED")}, protocol=2))
    shutil.copy(_unet_files(shared), here / "m" / "model.json")
    return ["evaluate", str(weights), "--dataset", "synthetic", *SMOKE], "model.pt"


def _bad_arch(text: str, command: str = "retrain") -> Case:
    def case(shared: Path, here: Path) -> tuple[list[str], str]:
        path = _file(here, "arch.json", text)
        if command == "summary":
            return ["summary", path], "arch.json"
        return ["retrain", path, "--dataset", "synthetic", *SMOKE], "arch.json"

    return case


def _preset_file(text: str, needle: str, *extra: str) -> Case:
    def case(shared: Path, here: Path) -> tuple[list[str], str]:
        path = _file(here, "p.yaml", text)
        return [*C2F[:5], "--config", path, *extra], needle or path

    return case


def _space_file(text: str, needle: str) -> Case:
    def case(shared: Path, here: Path) -> tuple[list[str], str]:
        path = _file(here, "s.yaml", text)
        return ["search", "--space", path, "--dataset", "synthetic", *SMOKE], needle

    return case


def _storage_under_file(shared: Path, here: Path) -> tuple[list[str], str]:
    _file(here, "afile", "x")
    return [*SMALL, "--storage-path", str(here / "afile" / "runs")], "--storage-path"


def _unreachable_tracking(shared: Path, here: Path) -> tuple[list[str], str]:
    return [*SMALL, "--tracking-uri", f"http://127.0.0.1:{free_port()}"], "--tracking-uri"


def _unreachable_ray(shared: Path, here: Path) -> tuple[list[str], str]:
    return [*SMALL, "--address", f"ray://127.0.0.1:{free_port()}"], "--address"


CASES: dict[str, Case] = {
    # usage errors (typer's vendored click): one line naming the option or command
    "unknown option": _c([*C2F, "--bogus"], "No such option: --bogus"),
    "missing option": _c(["search", "--space", "c2f"], "Missing option '--dataset'"),
    "--gpus abc": _c([*C2F, "--gpus", "abc"], "Invalid value for '--gpus'"),
    "--cpus-per-trial abc": _c([*C2F, "--cpus-per-trial", "abc"], "'--cpus-per-trial'"),
    "mistyped command": _c(["searhc"], "No such command 'searhc'"),
    "flag given a value": _c([*C2F, "--resume=3"], "Option '--resume' does not take a value"),
    "missing argument": _c(["retrain", "--dataset", "synthetic"], "Missing argument"),
    # numbers of the run options
    "--cpus-per-trial nan": _c([*C2F, "--cpus-per-trial", "nan"], "--cpus-per-trial nan: "),
    "--cpus-per-trial inf": _c([*C2F, "--cpus-per-trial", "inf"], "--cpus-per-trial inf: "),
    "--cpus-per-trial 0": _c([*C2F, "--cpus-per-trial", "0"], "--cpus-per-trial 0"),
    "--seed too large": _c([*C2F, "--seed", "99999999999999999999"], "--seed 9999"),
    "--seed 2**32": _c([*C2F, "--seed", "4294967296"], "--seed 4294967296: must be in"),
    "--seed -1": _c([*C2F, "--seed", "-1"], "--seed -1"),
    "--gpus -1": _c([*C2F, "--gpus", "-1"], "--gpus -1"),
    "unwritable --storage-path": _c([*SMALL, "--storage-path", "/proc/raynas"], "--storage-path"),
    "--storage-path under a file": _storage_under_file,
    # values a trial needs, checked against the space and the dataset
    "patch 2^3": _c([*C2F, "--set", "data.patch_size=[2,2,2]"], "--set data.patch_size=[2,2,2]"),
    "2D patch, 3D space": _c([*C2F, "--set", "data.patch_size=[32,32]"], "needs 3 sizes"),
    "patch not divisible": _c([*C2F, "--set", "data.patch_size=[40,40,40]"], "divisible by 16"),
    "patch too small": _c([*C2F, "--set", "data.patch_size=[16,16,16]"], "too small for c2f"),
    "retrain patch": _c([*C2F, "--set", "data.retrain_patch_size=[24,24,24]"],
                        "data.retrain_patch_size: [24, 24, 24]"),  # fmt: skip
    "thrifty patch too small": _c([*THRIFTY, "--set", "data.patch_size=[8,8]"], "thrifty depth"),
    "folds > cases": lambda shared, here: (
        ["search", "--space", "c2f_small", "--dataset", "msd_task02", "--data-root",
         str(_msd(shared, "Two", cases=2)), *SMOKE],  # fmt: skip
        "smoke.yaml: data.test_fraction=0.2 holds out 1 of 2 cases, leaving 1; data.folds=4 needs"
        " at least 4",
    ),
    # 3 cases: 1 held out for test, 1 validation, 1 training case — too few for the fine stage
    "one training case": _c([*SMALL, "--set", "data.cases=3", "--set", "data.folds=2"],
                            "--set data.folds=2: data.folds=2 leaves 1 training case"),  # fmt: skip
    "fine.width vs pc_k": _c([*C2F, "--set", "fine.width=6"], "--set fine.width=6"),
    "bool as a number": _c([*C2F, "--set", "coarse.epochs=true"], "--set coarse.epochs=true"),
    "nan lr": _c([*C2F, "--set", "coarse.lr=.nan"], "--set coarse.lr=.nan: coarse.lr"),
    "repeated --set": _c([*C2F, "--set", "coarse.epochs=2", "--set", "coarse.epochs=0"],
                         "--set coarse.epochs=0: coarse.epochs"),  # fmt: skip
    "data.fold by --set": _c([*C2F, "--set", "data.fold=9"], "--set data.fold=9"),
    "alias bomb": _preset_file(BOMB, "anchors (&a) are not allowed"),
    # cases that passed before and must keep passing
    "unknown space": _c(["search", "--space", "c3f", "--dataset", "synthetic"], "--space"),
    "unknown dataset": _c(["search", "--space", "c2f", "--dataset", "msd_task11"], "msd_task11"),
    "unknown preset": _c([*C2F[:5], "--preset", "nope"], "unknown preset 'nope'"),
    "--preset and --config": _c([*C2F, "--config", "x.yaml"], "--preset and --config"),
    "preset not YAML": _preset_file("coarse: [1, 2\n", "not valid YAML"),
    "python tag": _preset_file("!!python/object/apply:os.system ['touch x']\n", "not valid YAML"),
    "preset unknown key": _preset_file("inherits: smoke\ncoarse: {epoch: 3}\n", "unknown key"),
    "malformed --set": _c([*C2F, "--set", "coarse.epochs"], "expected key.path=value"),
    "--set into a value": _c([*C2F, "--set", "coarse.epochs.x=1"], "coarse.epochs is a value"),
    "space unknown op": _space_file("type: c2f\nops: [conv9]\n", "unknown operation(s) 'conv9'"),
    "space bad type": _space_file("type: resnet\nops: [conv3]\n", "type: must be one of"),
    "no --data-root": _c(["search", "--space", "c2f", "--dataset", "msd_task02"], "--data-root"),
    "missing data root": _c([*_msd_search(Path("/nonexistent/T"))], "/nonexistent/T"),
    "no dataset.json": _no_dataset_json,
    "malformed dataset.json": _malformed_json,
    "listed label missing": _missing_label,
    "NaN voxel": _nan_voxel,
    "truncated nii.gz": _truncated,
    "arch not JSON": _bad_arch("{not json"),
    "arch unknown space": _bad_arch(json.dumps({"space": "alien", "width": 4})),
    "arch bad field": _bad_arch(json.dumps({"space": "unet", "filters": "wide"})),
    "summary of bad arch": _bad_arch("[1, 2", command="summary"),
    "missing arch": _c(["retrain", "nope.json", "--dataset", "synthetic"], "nope.json"),
    "evaluate a pickle": _planted_pickle,
    "unreachable tracking server": _unreachable_tracking,
    "in-memory sqlite": _c([*SMALL, "--tracking-uri", "sqlite:///:memory:"], "--tracking-uri"),
    "unreachable ray address": _unreachable_ray,
}


@dataclass
class Result:
    argv: list[str]
    needle: str
    code: int
    stderr: str
    workdir: Path
    ray_tmp: Path
    leftover_pids: list[int]
    seconds: float


def _run(name: str, case: Case, shared: Path, base: Path) -> Result:
    import time

    here = base / f"case{list(CASES).index(name):02d}"
    here.mkdir()
    work, ray_tmp = here / "work", here / "ray"
    work.mkdir()
    argv, needle = case(shared, here)
    env = dict(os.environ, RAY_TMPDIR=str(ray_tmp), OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    env.pop("RAY_ADDRESS", None)
    start = time.monotonic()
    proc = subprocess.run([RAYNAS, *argv], cwd=work, env=env, capture_output=True, text=True,
                          timeout=240, stdin=subprocess.DEVNULL)  # fmt: skip
    left = pids_with_marker(str(ray_tmp))
    stop_pids(left)
    return Result(argv, needle, proc.returncode, proc.stderr, work, ray_tmp, left,
                  time.monotonic() - start)  # fmt: skip


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Result]:
    import time

    shared = tmp_path_factory.mktemp("corpus-shared")
    base = tmp_path_factory.mktemp("corpus")
    _unet_files(shared)
    _msd(shared, "Two", cases=2)
    from raynas.data import open_dataset

    for name in ("synthetic", "synthetic2d"):  # generated once, before the cases share it
        open_dataset(name, None, seed=0, synthetic_cases=8, limit_cases=8)
    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {n: pool.submit(_run, n, c, shared, base) for n, c in CASES.items()}
        out = {n: f.result() for n, f in futures.items()}
    total = time.monotonic() - start
    slowest = max(out.values(), key=lambda r: r.seconds)
    print(f"\nbad-input corpus: {len(out)} cases in {total:.0f} s "
          f"(slowest {slowest.seconds:.1f} s: {slowest.argv[:3]})")  # fmt: skip
    return out


def test_corpus_is_large_enough() -> None:  # the docs state the count
    guide = Path(__file__).parents[2] / "docs" / "guides" / "own-preset.md"
    assert f"runs {len(CASES)} such cases" in " ".join(guide.read_text().split())
    assert len(CASES) >= 40


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_exit_2_one_line_nothing_left(results: dict[str, Result], name: str) -> None:
    r = results[name]
    lines = r.stderr.strip().splitlines()
    assert r.code == 2, (r.argv, r.code, r.stderr[-3000:])
    assert len(lines) == 1, (r.argv, r.stderr[-3000:])
    assert lines[0].startswith("error: ") and r.needle in lines[0], (r.argv, lines[0])
    # no Ray: no session folder under the RAY_TMPDIR it had, no process that mentions it
    assert not r.ray_tmp.exists() or not any(r.ray_tmp.rglob("*")), list(r.ray_tmp.rglob("*"))
    assert r.leftover_pids == []
    # no MLflow store (so no run), no output folder
    assert sorted(p.name for p in r.workdir.iterdir()) == [], list(r.workdir.iterdir())
    assert not (r.workdir.parent / "PLANTED").exists()
