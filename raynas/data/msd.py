"""Medical Segmentation Decathlon folders: ``dataset.json`` reader and :func:`open_dataset`.

The case list comes from ``dataset.json`` (``"training"``: ``{"image", "label"}`` paths relative
to the task folder), never from listing ``imagesTr/``: real archives carry AppleDouble ``._*``
files and other strays that must not become cases. Classes come from ``"labels"``, input channels
from ``"modality"`` (multi-modal tasks store 4D images whose last axis becomes the channels).

Example:
    >>> ds = open_dataset("synthetic", seed=0, synthetic_cases=6)  # doctest: +SKIP
    >>> ds.num_classes, ds.in_channels, len(ds.cases)
    (3, 1, 6)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from raynas.data.cases import Case, MSDDataset
from raynas.data.layouts import index_names, msd_cases
from raynas.data.tasks import DATASETS, DatasetInfo, get_dataset_info
from raynas.errors import DataError

__all__ = ["Case", "MSDDataset", "read_msd", "msd_cases", "open_dataset", "REQUIRED_KEYS"]

REQUIRED_KEYS = ("training", "modality", "labels")


def _load_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise DataError(f"{path}: dataset.json not found (is this an MSD task folder?)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        msg = str(exc).splitlines()[0]
        raise DataError(f"{path}: malformed JSON ({msg})") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a JSON object at the top level")
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise DataError(f"{path}: missing key(s) {', '.join(missing)}")
    return data


def read_msd(root: Path | str, *, info: DatasetInfo, limit_cases: int | None = None) -> MSDDataset:
    """Reads ``root/dataset.json`` and checks that every listed file exists.

    Args:
        root: the task folder (holds ``dataset.json``, ``imagesTr/``, ``labelsTr/``).
        info: built-in metadata (modality, spacing, patches) for this task.
        limit_cases: keep only the first N cases of ``dataset.json``.

    Raises:
        DataError: missing folder or ``dataset.json``, malformed JSON, missing keys, bad
            entries, a listed file that does not exist, a channel count that contradicts ``info``.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"--data-root: {root} does not exist or is not a folder")
    jpath = root / "dataset.json"
    if not jpath.is_file() and info.task_folder and (root / info.task_folder).is_dir():
        root = root / info.task_folder  # accept the parent of Task05_Prostate/
        jpath = root / "dataset.json"
    data = _load_json(jpath)
    labels = index_names(data["labels"], "labels", jpath)
    if len(labels) < 2:
        raise DataError(f"{jpath}: 'labels' needs background and at least one class")
    channels = tuple(index_names(data["modality"], "modality", jpath).values())
    if len(channels) != info.in_channels and not info.synthetic:
        raise DataError(
            f"{jpath}: 'modality' lists {len(channels)} channel(s) {list(channels)}, but "
            f"{info.name} ({info.task_folder}) has {info.in_channels}: wrong --data-root?"
        )
    cases = msd_cases(root, data, jpath, limit_cases=limit_cases)
    return MSDDataset(root=root, cases=cases, labels=labels, channels=channels, info=info)


def open_dataset(
    name: str,
    data_root: Path | str | None = None,
    *,
    seed: int = 0,
    synthetic_cases: int = 16,
    cache_dir: Path | str | None = None,
    limit_cases: int | None = None,
    validate: Literal["none", "header", "full"] = "header",
    plan: Path | str | None = None,
    plan_cache: Path | str | None = None,
    write_plan: bool = True,
) -> MSDDataset:
    """Opens a built-in dataset by name, or a user's folder or datalist by path.

    A ``name`` that is not a built-in one but a path (an MSD or nnU-Net v2 folder, or a MONAI
    datalist ``.json`` whose paths are relative to ``data_root``) is read by
    :func:`raynas.data.layouts.read_layout`; its spacing, patches and normalisation come from
    its plan (:mod:`raynas.data.plan`): the ``plan`` file, else the full plan cached under
    ``plan_cache`` (computed there once; with ``write_plan=False`` written later by
    :func:`raynas.data.plan.save_plan`), else a header-only plan (no intensity statistics).

    MSD tasks are read from ``data_root``. ``synthetic`` / ``synthetic2d`` are generated on first
    use into the cache (``cache_dir``, else ``$RAYNAS_CACHE_DIR/synthetic``, else
    ``~/.cache/raynas/synthetic``) unless ``data_root`` names a folder already written by
    ``raynas datasets prepare``. Both go through :func:`read_msd`.

    Args:
        validate: ``"header"`` (default) checks every case's shapes and affines (cheap),
            ``"full"`` also reads the voxels (NaN/inf, undeclared label values).

    Raises:
        DataError: unknown name, missing ``--data-root``, or any problem :func:`read_msd` or
            :func:`raynas.data.validate.check_dataset` finds.
    """
    if validate not in ("none", "header", "full"):
        raise ValueError(f"validate must be 'none', 'header' or 'full', got {validate!r}")
    from raynas.data.layouts import is_path_ref

    if name not in DATASETS and is_path_ref(name):
        from raynas.data.userdata import open_user_dataset

        return open_user_dataset(
            name, data_root, limit_cases=limit_cases, plan=plan, plan_cache=plan_cache,
            write_plan=write_plan, validate=validate,
        )
    info = get_dataset_info(name)
    if synthetic_cases <= 0:
        raise DataError(f"--cases must be a positive number, got {synthetic_cases}")
    if limit_cases is not None and limit_cases <= 0:
        raise DataError(f"--cases must be a positive number, got {limit_cases}")
    if data_root is None:
        if not info.synthetic:
            raise DataError(
                f"--data-root is required for {name} (the folder holding {info.task_folder}'s "
                "dataset.json)"
            )
        from raynas.data.synthetic import ensure_synthetic

        data_root = ensure_synthetic(name, seed=seed, cases=synthetic_cases, cache_dir=cache_dir)
    ds = read_msd(data_root, info=info, limit_cases=limit_cases)
    if validate != "none":
        from raynas.data.validate import check_dataset

        check_dataset(ds, deep=validate == "full")
    return ds
