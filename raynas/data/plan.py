"""A plan from the data (``raynas datasets plan PATH``): target spacing, normalisation and patch
sizes computed from a :mod:`fingerprint <raynas.data.fingerprint>`, not taken from a table.

- **Target spacing**: the per-axis median of the cases' spacings. Anisotropic rule: if the
  largest median spacing is more than 3x the smallest, that (low-resolution) axis takes the 10th
  percentile of its spacings instead, but never less than the largest other axis (nnU-Net's rule,
  ``ExperimentPlanner.determine_fullres_target_spacing``, without its extra voxel-count test).
- **Normalisation**: CT (every channel ``CT``) clips to the foreground's 0.5 / 99.5 percentiles
  and z-scores with the foreground mean and std (stored as ``hu_window`` and ``ct_zscore``);
  any other modality: a per-case, per-channel z-score over non-zero voxels.
- **Patch sizes**: start from the median case shape at the target spacing, rounded up to the
  space's total stride, then shrink the axis of largest physical extent, one stride at a time,
  until the patch fits the memory budget. The budget is ``memory_gb`` GiB of activations at
  ``BYTES_PER_VOXEL`` per patch voxel (search: the supernet at search width; retrain: the
  derived network at retrain width; both at batch 2). Those two numbers are calibrated so that
  an 8 GiB budget gives 96^3 (search) and 128^3 (retrain) voxels, the patches raynas's MSD table
  uses for large isotropic volumes; they are not measured per network.

The plan is cached as ``plan-<name>-<digest>.json`` (digest: case names and file contents, plus
the planning settings); a cached plan is read back only when its digest, format and settings
match, otherwise it is recomputed.

Example:
    >>> plan = plan_from_fingerprint(fp, stride=16, memory_gb=8.0)  # doctest: +SKIP
    >>> plan["spacing"]["target"], plan["patch"]["search"]  # doctest: +SKIP
    ([0.7, 0.7, 2.5], [160, 160, 32])
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from raynas.data.fingerprint import dataset_digest, fingerprint
from raynas.data.tasks import DatasetInfo
from raynas.errors import DataError

if TYPE_CHECKING:
    from raynas.data.layouts import Layout

__all__ = [
    "BYTES_PER_VOXEL",
    "PLAN_FORMAT",
    "info_from_plan",
    "load_or_make_plan",
    "make_plan",
    "plan_patch",
    "plan_from_fingerprint",
    "read_plan",
    "save_plan",
    "target_spacing",
]

PLAN_FORMAT = 1
BYTES_PER_VOXEL = {"search": 9700, "retrain": 4096}
ANISOTROPY = 3.0
DEFAULT_STRIDE = 16
DEFAULT_MEMORY_GB = 8.0


def target_spacing(spacings: np.ndarray) -> tuple[list[float], bool]:
    """Median spacing per axis, with the anisotropic-axis rule; ``(target, anisotropic)``."""
    spacings = np.asarray(spacings, dtype=float).reshape(-1, 3)
    target = np.median(spacings, axis=0)
    worst = int(np.argmax(target))
    others = [i for i in range(3) if i != worst]
    anisotropic = bool(target[worst] > ANISOTROPY * min(target))
    if anisotropic:
        tenth = float(np.percentile(spacings[:, worst], 10))
        target[worst] = max(tenth, float(max(target[others])))
    return [round(float(s), 5) for s in target], anisotropic


def plan_patch(
    median_shape: list[float], spacing: list[float], *, stride: int, budget_voxels: float
) -> list[int]:
    """The largest patch (multiples of ``stride``, at most the median shape rounded up) that
    fits ``budget_voxels``: shrinks the axis of largest physical extent first."""
    patch = [max(stride, stride * math.ceil(s / stride)) for s in median_shape]
    while math.prod(patch) > budget_voxels and any(p > stride for p in patch):
        axis = max(
            (i for i in range(3) if patch[i] > stride), key=lambda i: (patch[i] * spacing[i], -i)
        )
        patch[axis] -= stride
    if all(p == stride for p in patch):  # the deepest feature map must hold > 1 voxel
        patch[0] = 2 * stride
    return patch


def plan_from_fingerprint(
    fp: dict[str, Any], *, modality: str, stride: int, memory_gb: float
) -> dict[str, Any]:
    """Target spacing, normalisation and patch sizes from a fingerprint."""
    if stride <= 0 or memory_gb <= 0:
        raise DataError(f"--stride and --memory-gb must be positive, got {stride}, {memory_gb}")
    cases = fp["cases"]
    spacings = np.asarray([c["spacing"] for c in cases.values()], float)
    shapes = np.asarray([c["shape"] for c in cases.values()], float)
    target, anisotropic = target_spacing(spacings)
    at_target = np.median(shapes * spacings / np.asarray(target), axis=0)
    median_shape = [round(float(s), 1) for s in at_target]
    stride = math.lcm(int(stride), DEFAULT_STRIDE)  # DatasetInfo's 3D patches: multiples of 16
    patches = {
        stage: plan_patch(
            median_shape, target, stride=stride, budget_voxels=memory_gb * 2**30 / per_voxel
        )
        for stage, per_voxel in BYTES_PER_VOXEL.items()
    }
    norm: dict[str, Any] = {"modality": modality}
    if modality == "CT":
        stats = (fp.get("intensity") or [{}])[0].get("foreground") or {}
        if stats.get("n"):
            lo, hi = stats["percentile_00_5"], stats["percentile_99_5"]
            std = stats["std"] if stats["std"] and stats["std"] > 1e-8 else 1.0
            scheme = "clip to foreground 0.5-99.5 percentiles, then z-score"
            norm.update(scheme=scheme, hu_window=[lo, hi], ct_zscore=[stats["mean"], std])
        else:
            scheme = "no foreground intensities measured: HU window -1000..1000 scaled to [0, 1]"
            norm.update(scheme=scheme, hu_window=[-1000.0, 1000.0], ct_zscore=None)
    else:
        norm.update(scheme="per-case, per-channel z-score over non-zero voxels")
    return {
        "spacing": {
            "median": [round(float(s), 5) for s in np.median(spacings, axis=0)],
            "target": target,
            "anisotropic": anisotropic,
        },
        "median_shape_at_target": median_shape,
        "normalization": norm,
        "patch": {
            "stride": stride,
            "memory_gb": float(memory_gb),
            "bytes_per_voxel": dict(BYTES_PER_VOXEL),
            **patches,
        },
    }


def make_plan(
    layout: Layout,
    *,
    stride: int = DEFAULT_STRIDE,
    memory_gb: float = DEFAULT_MEMORY_GB,
    voxels: bool = True,
    digest: str | None = None,
) -> dict[str, Any]:
    """The full plan of a user's dataset (``voxels=False``: headers only, no intensities)."""
    fp = fingerprint(layout.cases, channels=layout.channels, labels=layout.labels, voxels=voxels)
    plan = plan_from_fingerprint(fp, modality=layout.modality, stride=stride, memory_gb=memory_gb)
    return {
        "format": PLAN_FORMAT,
        "dataset": layout.name,
        "source": str(layout.source),
        "layout": layout.kind,
        "digest": digest,
        "channels": list(layout.channels),
        "labels": {str(k): v for k, v in layout.labels.items()},
        **plan,
        "fingerprint": fp,
    }


def _settings(stride: int, memory_gb: float) -> str:
    return f"s{int(stride)}-m{float(memory_gb):g}"


def read_plan(path: Path | str) -> dict[str, Any]:
    """A plan file, checked: readable JSON of this format with every field training uses."""
    path = Path(path)
    try:
        plan = json.loads(path.read_text(encoding="utf-8"))
        ok = (
            plan["format"] == PLAN_FORMAT
            and len(plan["spacing"]["target"]) == 3
            and all(len(plan["patch"][k]) == 3 for k in ("search", "retrain"))
            and plan["normalization"]["modality"] in ("CT", "MRI")
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path}: unreadable plan ({type(exc).__name__}: {exc})") from None
    if not ok:
        raise DataError(f"{path}: not a raynas plan of format {PLAN_FORMAT}")
    return plan


def load_or_make_plan(
    layout: Layout,
    *,
    cache_dir: Path | str,
    stride: int = DEFAULT_STRIDE,
    memory_gb: float = DEFAULT_MEMORY_GB,
    write: bool = True,
) -> tuple[dict[str, Any], Path]:
    """The cached plan of ``layout`` (same files, same settings), else a new one, written there
    unless ``write`` is false (then :func:`save_plan` writes it once the run has started).

    Returns:
        ``(plan, path of plan.json)``.
    """
    digest = f"{dataset_digest(layout.cases)}-{_settings(stride, memory_gb)}"
    path = Path(cache_dir) / f"plan-{layout.name}-{digest}.json"
    if path.is_file():
        try:
            plan = read_plan(path)
            if plan.get("digest") == digest:
                return plan, path
        except DataError:
            pass  # a damaged cache entry: plan again and replace it
    plan = make_plan(layout, stride=stride, memory_gb=memory_gb, digest=digest)
    if write:
        _write(plan, path)
    return plan, path


def _write(plan: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(plan, indent=1) + "\n")
    os.replace(tmp, path)


def save_plan(ds: Any) -> Path | None:
    """Writes a user dataset's plan to its ``plan_file`` if it is not there yet (a run opens the
    dataset and checks every option first, and writes nothing until they all pass)."""
    if not getattr(ds, "plan_file", None):
        return None
    path = Path(ds.plan_file)
    if not path.is_file() and ds.plan_data is not None:
        _write(ds.plan_data, path)
    return path


def info_from_plan(layout: Layout, plan: dict[str, Any]) -> DatasetInfo:
    """The :class:`DatasetInfo` training uses for a user's dataset, from its plan."""
    norm = plan["normalization"]
    if plan.get("channels") not in (None, list(layout.channels)):
        raise DataError(
            f"plan of {plan.get('source')}: channels {plan.get('channels')} differ from the "
            f"folder's {list(layout.channels)} (stale plan?)"
        )
    hu = norm.get("hu_window")
    zs = norm.get("ct_zscore")
    return DatasetInfo(
        name=layout.name,
        organ=", ".join(list(layout.labels.values())[1:]),
        modality=norm["modality"],
        channels=tuple(layout.channels),
        labels=dict(layout.labels),
        target_spacing=tuple(float(s) for s in plan["spacing"]["target"]),  # type: ignore[arg-type]
        search_patch=tuple(int(p) for p in plan["patch"]["search"]),  # type: ignore[arg-type]
        retrain_patch=tuple(int(p) for p in plan["patch"]["retrain"]),  # type: ignore[arg-type]
        hu_window=(float(hu[0]), float(hu[1])) if hu else None,
        ct_zscore=(float(zs[0]), float(zs[1])) if zs else None,
        description=f"{layout.kind} dataset at {layout.source}, planned from its data",
    )
