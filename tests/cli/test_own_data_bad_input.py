"""Bad user folders (``--dataset PATH``) through the *installed* ``raynas`` console script: each
case ends with exit code 2 and exactly one stderr line, ``error: ...``, naming the file, entry or
option at fault, before Ray starts (no Ray session under the ``RAY_TMPDIR`` it was given, no
process mentioning it) and with nothing written in the working directory (no MLflow store, no
output folder, no plan or preprocess cache). The same rules as ``test_bad_input_corpus.py``.
"""

from __future__ import annotations

import json
import os
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
from own_data import write_datalist, write_image, write_nnunet
from procs import pids_with_marker, stop_pids

pytestmark = pytest.mark.slow  # ~14 subprocesses of ~5 s CPU each, two at a time

RAYNAS = str(Path(sys.executable).with_name("raynas"))
SEARCH = ["search", "--space", "c2f", "--preset", "smoke"]

Case = Callable[[Path], tuple[list[str], str]]  # case folder -> argv, needle


def _nn(here: Path, **options) -> Path:
    return write_nnunet(here / "Dataset501_Test", **options)


def _missing_channel(here: Path) -> tuple[list[str], str]:
    root = _nn(here)
    (root / "imagesTr" / "case_002_0001.nii.gz").unlink()
    return [*SEARCH, "--dataset", str(root)], "case_002_0001.nii.gz: channel 1 (ADC) of case"


def _channel_shape(here: Path) -> tuple[list[str], str]:
    root = _nn(here)
    write_image(root / "imagesTr" / "case_001_0001.nii.gz", np.zeros((20, 24, 12)), (1, 1, 2))
    return [*SEARCH, "--dataset", str(root)], "case_001_0001.nii.gz: channel shape (20, 24, 12)"


def _channel_spacing(here: Path) -> tuple[list[str], str]:
    root = _nn(here)
    write_image(root / "imagesTr" / "case_001_0001.nii.gz", np.zeros((24, 24, 12)), (1, 1, 3))
    return ["datasets", "check", str(root)], "case_001_0001.nii.gz: channel spacing/affine differs"


def _undeclared_label(here: Path) -> tuple[list[str], str]:
    root = _nn(here)
    label = np.zeros((24, 24, 12), np.uint8)
    label[2:5, 2:5, 2:5] = 3
    write_image(root / "labelsTr" / "case_003.nii.gz", label, (1, 1, 2))
    return [*SEARCH, "--dataset", str(root)], "case_003.nii.gz: label value(s) [3] not declared"


def _file_ending(here: Path) -> tuple[list[str], str]:
    root = _nn(here)
    meta = json.loads((root / "dataset.json").read_text())
    (root / "dataset.json").write_text(json.dumps({**meta, "file_ending": ".nrrd"}))
    return [*SEARCH, "--dataset", str(root)], "'file_ending' .nrrd does not match the files"


def _region_labels(here: Path) -> tuple[list[str], str]:
    root = _nn(here)
    meta = json.loads((root / "dataset.json").read_text())
    meta["labels"] = {"background": 0, "whole": [1, 2], "core": 2}
    (root / "dataset.json").write_text(json.dumps(meta))
    return [*SEARCH, "--dataset", str(root)], "region-based labels are not supported"


def _num_training(here: Path) -> tuple[list[str], str]:
    root = _nn(here)
    meta = json.loads((root / "dataset.json").read_text())
    (root / "dataset.json").write_text(json.dumps({**meta, "numTraining": 9}))
    return ["datasets", "plan", str(root)], "'numTraining' is 9, but imagesTr/ holds 4"


def _extra_channel(here: Path) -> tuple[list[str], str]:
    root = _nn(here)
    images = root / "imagesTr"
    shutil.copy(images / "case_000_0000.nii.gz", images / "case_000_0002.nii.gz")
    return [*SEARCH, "--dataset", str(root)], "case_000_0002.nii.gz: case case_000 has more"


def _datalist_missing(here: Path) -> tuple[list[str], str]:
    path = write_datalist(here / "dl")
    (here / "dl" / "seg" / "pat1.nii.gz").unlink()
    argv = [*SEARCH, "--dataset", str(path), "--data-root", str(here / "dl")]
    return argv, "pat1.nii.gz: label of datalist entry training[1]"


def _datalist_wrong_root(here: Path) -> tuple[list[str], str]:
    path = write_datalist(here / "dl")
    (here / "elsewhere").mkdir()
    argv = ["datasets", "check", str(path), "--data-root", str(here / "elsewhere")]
    return argv, "img/pat0.nii.gz: image of datalist entry training[0]"


def _unknown_test_case(here: Path) -> tuple[list[str], str]:
    root = _nn(here)
    argv = [*SEARCH, "--dataset", str(root), "--set", "data.test_cases=[case_999]"]
    return argv, "data.test_cases: unknown case(s) case_999"


def _msd_folder_bad_label(here: Path) -> tuple[list[str], str]:
    root = write_msd(here / "Task99_Mine", cases=4, labels=("background",))
    return [*SEARCH, "--dataset", str(root)], "'labels' needs background and at least one class"


def _no_dataset_json(here: Path) -> tuple[list[str], str]:
    (here / "empty").mkdir()
    return ["datasets", "plan", str(here / "empty")], "no dataset.json in"


def _retrain_missing_channel(here: Path) -> tuple[list[str], str]:
    root = _nn(here)
    (root / "imagesTr" / "case_001_0000.nii.gz").unlink()
    argv = ["baseline", "--model", "unet", "--dataset", str(root), "--preset", "smoke"]
    return argv, "channel 0 (T2) of case case_001 not found"


CASES: dict[str, Case] = {
    "nnunet channel file missing": _missing_channel,
    "nnunet channels of different shapes": _channel_shape,
    "nnunet channels of different spacings": _channel_spacing,
    "nnunet label value not in labels": _undeclared_label,
    "nnunet file_ending does not match the files": _file_ending,
    "nnunet region-based labels": _region_labels,
    "nnunet numTraining contradicts imagesTr": _num_training,
    "nnunet more channel files than channel_names": _extra_channel,
    "datalist entry whose file is missing": _datalist_missing,
    "datalist with a wrong --data-root": _datalist_wrong_root,
    "data.test_cases case not in the folder": _unknown_test_case,
    "msd folder with background only": _msd_folder_bad_label,
    "folder without dataset.json": _no_dataset_json,
    "baseline on a folder missing a channel": _retrain_missing_channel,
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


def _run(name: str, case: Case, base: Path) -> Result:
    here = base / f"case{list(CASES).index(name):02d}"
    here.mkdir()
    work, ray_tmp = here / "work", here / "ray"
    work.mkdir()
    argv, needle = case(here)
    env = dict(os.environ, RAY_TMPDIR=str(ray_tmp), OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    env.pop("RAY_ADDRESS", None)
    proc = subprocess.run([RAYNAS, *argv], cwd=work, env=env, capture_output=True, text=True,
                          timeout=240, stdin=subprocess.DEVNULL)  # fmt: skip
    left = pids_with_marker(str(ray_tmp))
    stop_pids(left)
    return Result(argv, needle, proc.returncode, proc.stderr, work, ray_tmp, left)


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Result]:
    base = tmp_path_factory.mktemp("own-data-corpus")
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {n: pool.submit(_run, n, c, base) for n, c in CASES.items()}
        return {n: f.result() for n, f in futures.items()}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_folder_exit_2_one_line_nothing_left(results: dict[str, Result], name: str) -> None:
    r = results[name]
    lines = r.stderr.strip().splitlines()
    assert r.code == 2, (r.argv, r.code, r.stderr[-3000:])
    assert len(lines) == 1, (r.argv, r.stderr[-3000:])
    assert lines[0].startswith("error: ") and r.needle in lines[0], (r.argv, lines[0])
    assert not r.ray_tmp.exists() or not any(r.ray_tmp.rglob("*")), list(r.ray_tmp.rglob("*"))
    assert r.leftover_pids == []
    # nothing written where it ran (datasets plan writes plan.json only on success)
    assert sorted(p.name for p in r.workdir.iterdir()) == [], list(r.workdir.iterdir())
