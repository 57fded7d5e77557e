"""A user's own data (``--dataset PATH``): an MSD-layout folder, an nnU-Net v2 raw folder, or a
MONAI datalist JSON (``--dataset datalist.json --data-root DIR``).

:func:`read_layout` finds which one ``PATH`` is and lists its cases, channels and classes as
the folder declares them; nothing is planned here (see :mod:`raynas.data.plan`). Every problem
is a :class:`DataError` naming the file or entry, raised before any training starts.

- **MSD**: ``dataset.json`` with ``training`` (``{"image", "label"}``), ``modality`` (index ->
  name) and ``labels`` (index -> name); multi-channel images are 4D.
- **nnU-Net v2**: ``dataset.json`` with ``channel_names`` (index -> name), ``labels`` (name ->
  value), ``file_ending`` (``.nii.gz``, ``.nii``, ``.nrrd``, ``.mha``) and ``numTraining``;
  ``imagesTr/<case>_<XXXX><ending>`` (one file per channel), ``labelsTr/<case><ending>``;
  ``imagesTs/`` optional. Region-based labels (a list of values) are refused.
- **datalist**: read with MONAI's own ``load_decathlon_datalist`` (section ``training``; paths
  relative to ``--data-root``); optional ``labels`` / ``modality`` / ``channel_names`` keys,
  otherwise channels come from the first image and classes from the label values.

Example:
    >>> layout = read_layout("/data/Dataset501_Prostate")  # doctest: +SKIP
    >>> layout.kind, layout.channels, layout.labels  # doctest: +SKIP
    ('nnunet', ('T2', 'ADC'), {0: 'background', 1: 'PZ', 2: 'TZ'})
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from raynas.data.cases import Case
from raynas.data.readers import FILE_ENDINGS, split_ending
from raynas.errors import DataError

__all__ = ["Layout", "index_names", "is_path_ref", "msd_cases", "read_layout"]


@dataclass(frozen=True)
class Layout:
    """What a user's folder or datalist declares: cases, channels, classes, modality."""

    kind: str  # "msd" | "nnunet" | "datalist"
    name: str  # a short, file-name-safe name (the folder's or the datalist's stem)
    root: Path  # the folder the case paths are relative to
    source: Path  # what --dataset named (folder or datalist file), absolute
    cases: list[Case]
    labels: dict[int, str]
    channels: tuple[str, ...]

    @property
    def modality(self) -> str:
        """``"CT"`` when every channel is CT (HU statistics apply), else ``"MRI"`` (z-score)."""
        return "CT" if all(c.strip().upper() == "CT" for c in self.channels) else "MRI"


def is_path_ref(ref: str) -> bool:
    """Whether ``--dataset`` names a path (a folder or a ``.json`` file) rather than a name."""
    return "/" in ref or ref.endswith(".json") or Path(ref).expanduser().exists()


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._") or "dataset"


def _load_json(path: Path, what: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        msg = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise DataError(f"{path}: unreadable {what} ({msg})") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a JSON object at the top level")
    return data


def _case_name(path: str) -> str:
    base = Path(path).name
    for ext in (".nii.gz", ".nii"):
        if base.endswith(ext):
            return base[: -len(ext)]
    return base


def msd_cases(
    root: Path, data: dict[str, Any], jpath: Path, *, limit_cases: int | None = None
) -> list[Case]:
    """The cases of an MSD ``dataset.json`` (``training`` entries; every file must exist)."""
    training = data["training"]
    if not isinstance(training, list) or not training:
        raise DataError(f"{jpath}: 'training' must be a non-empty list")
    if limit_cases is not None:
        if limit_cases <= 0:
            raise DataError(f"--cases must be a positive number, got {limit_cases}")
        training = training[:limit_cases]
    cases = []
    for i, entry in enumerate(training):
        if not isinstance(entry, dict) or not all(
            isinstance(entry.get(k), str) for k in ("image", "label")
        ):
            raise DataError(f"{jpath}: training[{i}] needs string 'image' and 'label' paths")
        if Path(entry["image"]).name.startswith("._"):
            continue  # AppleDouble metadata, never a case
        image, label = root / entry["image"], root / entry["label"]
        for kind, path in (("image", image), ("label", label)):
            if not path.is_file():
                raise DataError(f"{path}: {kind} listed in {jpath} (training[{i}]) not found")
        cases.append(Case(image=image, label=label, name=_case_name(entry["image"])))
    return cases


def index_names(mapping: Any, key: str, where: Path) -> dict[int, str]:
    """``{"0": "CT"}`` -> ``{0: "CT"}``, keys 0..N-1."""
    if not isinstance(mapping, dict) or not mapping:
        raise DataError(f"{where}: {key!r} must be a non-empty object")
    try:
        out = {int(k): str(v) for k, v in mapping.items()}
    except (TypeError, ValueError):
        raise DataError(f"{where}: {key!r} keys must be integers, got {list(mapping)}") from None
    if sorted(out) != list(range(len(out))):
        raise DataError(f"{where}: {key!r} keys must be 0..{len(out) - 1}, got {sorted(out)}")
    return dict(sorted(out.items()))


def _nnunet_labels(mapping: Any, where: Path) -> dict[int, str]:
    """nnU-Net's ``{"background": 0, "tumour": 1}`` -> ``{0: "background", 1: "tumour"}``."""
    if not isinstance(mapping, dict) or not mapping:
        raise DataError(f"{where}: 'labels' must be a non-empty object (name -> value)")
    out: dict[int, str] = {}
    for name, value in mapping.items():
        if isinstance(value, list | tuple):
            raise DataError(
                f"{where}: label {name!r} is region-based ({list(value)}); nnU-Net region-based "
                "labels are not supported: give each class one integer value"
            )
        if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit():
            raise DataError(f"{where}: label {name!r} must be an integer value, got {value!r}")
        out[int(value)] = str(name)
    if sorted(out) != list(range(len(out))) or len(out) < 2:
        raise DataError(
            f"{where}: 'labels' values must be 0..K-1 with K >= 2 (background 0), got {sorted(out)}"
        )
    return dict(sorted(out.items()))


def _read_msd(root: Path, data: dict[str, Any], jpath: Path) -> Layout:
    labels = index_names(data["labels"], "labels", jpath)
    if len(labels) < 2:
        raise DataError(f"{jpath}: 'labels' needs background and at least one class")
    channels = tuple(index_names(data["modality"], "modality", jpath).values())
    cases = msd_cases(root, data, jpath)
    return Layout("msd", _slug(root.name), root, root, cases, labels, channels)


def _read_nnunet(root: Path, data: dict[str, Any], jpath: Path) -> Layout:
    channels = tuple(index_names(data["channel_names"], "channel_names", jpath).values())
    labels = _nnunet_labels(data.get("labels"), jpath)
    ending = data.get("file_ending")
    if ending not in FILE_ENDINGS:
        raise DataError(
            f"{jpath}: 'file_ending' {ending!r} is not supported; valid: {', '.join(FILE_ENDINGS)}"
        )
    images = root / "imagesTr"
    if not images.is_dir() or not (root / "labelsTr").is_dir():
        raise DataError(f"{root}: an nnU-Net folder needs imagesTr/ and labelsTr/")
    files = sorted(p.name for p in images.iterdir() if not p.name.startswith("."))
    pattern = re.compile(rf"^(.+)_\d{{4}}{re.escape(ending)}$")
    found_cases = sorted({m.group(1) for n in files if (m := pattern.match(n))})
    if not found_cases:
        found = sorted({split_ending(n)[1] or Path(n).suffix for n in files})
        raise DataError(
            f"{jpath}: 'file_ending' {ending} does not match the files in {images} "
            f"(found {', '.join(found) or 'no files'})"
        )
    cases = []
    for case in found_cases:
        paths = tuple(images / f"{case}_{c:04d}{ending}" for c in range(len(channels)))
        for c, path in enumerate(paths):
            if not path.is_file():
                raise DataError(
                    f"{path}: channel {c} ({channels[c]}) of case {case} not found "
                    f"({len(channels)} channel(s) in 'channel_names')"
                )
        extra = images / f"{case}_{len(channels):04d}{ending}"
        if extra.is_file():
            raise DataError(
                f"{extra}: case {case} has more channels than 'channel_names' lists "
                f"({len(channels)})"
            )
        label = root / "labelsTr" / f"{case}{ending}"
        if not label.is_file():
            raise DataError(f"{label}: label of case {case} not found")
        cases.append(Case(image=paths if len(paths) > 1 else paths[0], label=label, name=case))
    declared = data.get("numTraining")
    if isinstance(declared, int) and declared != len(cases):
        raise DataError(
            f"{jpath}: 'numTraining' is {declared}, but imagesTr/ holds {len(cases)} case(s) "
            f"of {ending} files"
        )
    return Layout("nnunet", _slug(root.name), root, root, cases, labels, channels)


def _read_datalist(path: Path, data_root: Path | None) -> Layout:
    from monai.data import load_decathlon_datalist

    data = _load_json(path, "datalist")
    if not isinstance(data.get("training"), list) or not data["training"]:
        raise DataError(f"{path}: a datalist needs a non-empty 'training' list")
    base = Path(data_root).expanduser().absolute() if data_root is not None else path.parent
    if not base.is_dir():
        raise DataError(f"--data-root: {base} does not exist or is not a folder")
    try:
        entries = load_decathlon_datalist(
            str(path), is_segmentation=True, data_list_key="training", base_dir=str(base)
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path}: not a MONAI datalist ({exc})") from None
    cases = []
    for i, entry in enumerate(entries):
        if "image" not in entry or "label" not in entry:
            raise DataError(f"{path}: training[{i}] needs 'image' and 'label'")
        image = entry["image"]
        images = tuple(Path(p) for p in image) if isinstance(image, list) else (Path(image),)
        for kind, p in [*(("image", p) for p in images), ("label", Path(entry["label"]))]:
            if not p.is_file():
                raise DataError(f"{p}: {kind} of datalist entry training[{i}] ({path}) not found")
        name = split_ending(images[0].name)[0]
        if len(images) > 1:
            name = re.sub(r"_\d{4}$", "", name)
        cases.append(
            Case(
                image=images if len(images) > 1 else images[0],
                label=Path(entry["label"]),
                name=name,
            )
        )
    names = [c.name for c in cases]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise DataError(f"{path}: two datalist entries have the case name {dup!r}")
    channels, labels = _datalist_meta(data, path, cases)
    return Layout("datalist", _slug(path.stem), base, path, cases, labels, channels)


def _datalist_meta(
    data: dict[str, Any], path: Path, cases: list[Case]
) -> tuple[tuple[str, ...], dict[int, str]]:
    """Channels and classes: declared in the datalist, else read from the first image and the
    label values of every case."""
    import numpy as np

    from raynas.data.readers import read_header, read_voxels

    if "channel_names" in data or "modality" in data:
        key = "channel_names" if "channel_names" in data else "modality"
        channels = tuple(index_names(data[key], key, path).values())
    else:
        shape = read_header(cases[0].images[0]).shape
        count = (
            len(cases[0].images)
            if len(cases[0].images) > 1
            else (shape[3] if len(shape) == 4 else 1)
        )
        channels = tuple(f"channel{i}" for i in range(count))
    labels_raw = data.get("labels")
    if isinstance(labels_raw, dict) and labels_raw:
        first = next(iter(labels_raw))
        labels = (
            index_names(labels_raw, "labels", path)
            if str(first).isdigit()
            else _nnunet_labels(labels_raw, path)
        )
    else:
        top = max(int(np.max(read_voxels(c.label))) for c in cases)
        labels = {0: "background", **{k: f"class{k}" for k in range(1, max(top, 1) + 1)}}
    return channels, labels


def read_layout(
    ref: str | Path, data_root: Path | str | None = None, *, limit_cases: int | None = None
) -> Layout:
    """Reads a user's folder (MSD or nnU-Net v2 layout) or MONAI datalist file.

    Args:
        ref: what ``--dataset`` names: a folder, or a datalist ``.json`` file.
        data_root: the folder a datalist's paths are relative to (default: its own folder);
            ignored for a folder.
        limit_cases: keep only the first N cases.

    Raises:
        DataError: anything missing, malformed or contradictory, naming the file.
    """
    path = Path(ref).expanduser().absolute()
    if path.is_file() and path.suffix == ".json" and path.name != "dataset.json":
        layout = _read_datalist(path, Path(data_root) if data_root is not None else None)
    elif path.is_dir() or path.name == "dataset.json":
        root = path if path.is_dir() else path.parent
        jpath = root / "dataset.json"
        if not jpath.is_file():
            raise DataError(
                f"--dataset {ref}: no dataset.json in {root} (an MSD or nnU-Net folder)"
            )
        data = _load_json(jpath, "dataset.json")
        if "channel_names" in data:
            layout = _read_nnunet(root, data, jpath)
        elif {"training", "modality", "labels"} <= set(data):
            layout = _read_msd(root, data, jpath)
        else:
            raise DataError(
                f"{jpath}: neither an nnU-Net v2 dataset.json (channel_names, labels, "
                "file_ending) nor an MSD one (training, modality, labels)"
            )
    else:
        raise DataError(f"--dataset {ref}: no such folder or datalist file")
    if limit_cases is not None:
        if limit_cases <= 0:
            raise DataError(f"--cases must be a positive number, got {limit_cases}")
        layout = Layout(
            layout.kind,
            layout.name,
            layout.root,
            layout.source,
            layout.cases[:limit_cases],
            layout.labels,
            layout.channels,
        )
    if not layout.cases:
        raise DataError(f"--dataset {ref}: no training cases")
    return layout
