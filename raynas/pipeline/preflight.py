"""Checks of every value a trial will need, made before Ray or MLflow start, so a bad one is one
line naming the option or file that set it (exit 2) instead of a traceback in every trial.

- run options: ``--cpus-per-trial`` (finite, > 0), ``--seed`` (0 .. 2**32-1), ``--gpus`` (>= 0);
- ``--storage-path``: a probe file can be created (and removed) in the nearest existing folder;
- patch sizes (``data.patch_size``, ``data.retrain_patch_size`` or the dataset's defaults)
  against the space: their length against its dimensionality, and for every candidate the
  stage could build, divisibility by the network's total stride (C2F: the stem's 2 times
  ``2**level`` of the deepest level a topology reaches) and a deepest feature map of more than
  one voxel (instance norm needs two);
- ``fine.width`` against the space's PC-DARTS ``pc_k``;
- ``data.folds`` / ``data.fold`` against the number of cases, and the weights/architecture
  halves of the fine stage's training cases (both non-empty and disjoint).

Example:
    >>> who = Blame(source="tune_configs/smoke.yaml", overrides=["data.folds=9"])
    >>> who("data.folds"), who("coarse.epochs")
    ('--set data.folds=9', 'tune_configs/smoke.yaml')
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from raynas.config.presets import SEED_MAX
from raynas.errors import UserError

__all__ = [
    "Blame",
    "check_patch",
    "check_run_options",
    "check_search_values",
    "check_splits",
    "check_storage",
    "space_strides",
]

@dataclass
class Blame:
    """Names what set a preset key: the last ``--set`` (or flag) that did, else the file."""

    source: str
    overrides: Sequence[str] = ()
    labels: Mapping[str, str] = field(default_factory=dict)

    def __call__(self, *keys: str) -> str:
        from raynas.config.loader import blame

        return blame(keys, self.overrides, self.source, self.labels)


def check_run_options(options: Any) -> None:
    """``--cpus-per-trial``, ``--seed`` and ``--gpus``, before anything is loaded."""
    cpus = getattr(options, "cpus_per_trial", None)
    if cpus is not None and not (math.isfinite(cpus) and cpus > 0):
        raise UserError(f"--cpus-per-trial {cpus}: must be a finite number > 0")
    gpus = getattr(options, "gpus", None)
    if gpus is not None and gpus < 0:
        raise UserError(f"--gpus {gpus}: must be >= 0")
    seed = getattr(options, "seed", None)
    if seed is not None and not 0 <= seed <= SEED_MAX:
        raise UserError(f"--seed {seed}: must be in 0..{SEED_MAX}")


def check_storage(path: Path) -> None:
    """Checks that the output folder ``path`` can be created: a probe file is created and
    removed in its nearest existing ancestor (nothing else is written)."""
    path = Path(os.path.abspath(path))
    probe_in = path
    while not probe_in.exists():
        if probe_in.parent == probe_in:
            break
        probe_in = probe_in.parent
    flag = "--storage-path"
    if not probe_in.is_dir():
        raise UserError(f"{flag} {path}: {probe_in} is not a folder")
    try:
        fd, name = tempfile.mkstemp(prefix=".raynas-probe-", dir=probe_in)
        os.close(fd)
        os.unlink(name)
    except OSError as exc:
        raise UserError(
            f"{flag} {path}: cannot write in {probe_in} ({exc.strerror or type(exc).__name__})"
        ) from None


def space_strides(space: Any) -> list[tuple[str, int, int]]:
    """``(candidate, stride, deepest_level_scale)`` per distinct network shape the space builds:
    the factor every patch side must be divisible by, and the down-sampling of the deepest
    feature map (a side ``s`` becomes ``ceil(s / scale)`` there)."""
    config = space.config
    if config.type == "c2f":
        deepest = max(max(t) for t in space.topologies)
        scale = 2 ** (deepest + 1)  # the stem halves, every level below 0 halves again
        return [(f"{config.name} (levels 0..{deepest})", scale, scale)]
    if config.type == "thrifty":
        # DN cells halve with ceil and UP cells resize: any side works, the deepest map must
        # still hold more than one voxel.
        return [
            (f"{config.name} depth {d}", 1, 2**d) for d in sorted(set(config.candidates_depth))
        ]
    return []


def check_patch(
    patch: Sequence[int],
    *,
    spatial_dims: int,
    strides: Iterable[tuple[str, int, int]],
    culprit: str,
) -> None:
    """One patch against a space's dimensionality and strides; errors start with ``culprit``."""
    sides = [int(p) for p in patch]
    allowed = (3,) if spatial_dims == 3 else (2, 3)
    if len(sides) not in allowed:
        want = "3 sizes" if spatial_dims == 3 else "2 sizes (or 3: the third is ignored)"
        raise UserError(f"{culprit}: {sides}: a {spatial_dims}D space needs {want}")
    used = sides[:spatial_dims]
    for name, stride, scale in strides:
        bad = [s for s in used if s % stride]
        if bad:
            raise UserError(
                f"{culprit}: {sides}: every side must be divisible by {stride}, the total "
                f"stride of {name}"
            )
        if math.prod(math.ceil(s / scale) for s in used) < 2:
            smallest = [scale * (2 if i == 0 else 1) for i in range(len(used))]
            raise UserError(
                f"{culprit}: {sides}: too small for {name} (down-sampled {scale}x its deepest "
                f"feature map is a single voxel); use at least {smallest}"
            )


def _patch_culprit(key: str, value: Any, who: Blame, dataset: Any) -> str:
    if value is not None:
        return f"{who(key)}: {key}"
    return f"--dataset {dataset.info.name}: the default {key} (set {key} to change it)"


def check_search_values(preset: Any, space: Any, dataset: Any, who: Blame) -> None:
    """Every value the coarse, fine and retrain trials of a search take from the preset, the
    space and the dataset together."""
    dims = space.config.spatial_dims
    strides = space_strides(space)
    info = dataset.info
    for key, patch, default in (
        ("data.patch_size", preset.data.patch_size, info.search_patch),
        ("data.retrain_patch_size", preset.data.retrain_patch_size, info.retrain_patch),
    ):
        culprit = _patch_culprit(key, patch, who, dataset)
        check_patch(patch or default, spatial_dims=dims, strides=strides, culprit=culprit)
    pc_k = getattr(space.config, "pc_k", 1)
    if space.config.type == "c2f" and preset.fine.width % pc_k:
        raise UserError(
            f"{who('fine.width')}: fine.width: {preset.fine.width} must be divisible by the "
            f"space's pc_k ({pc_k}, {space.config.name})"
        )
    check_splits(preset, dataset, who, bilevel=True)


def check_splits(preset: Any, dataset: Any, who: Blame, *, bilevel: bool = False) -> None:
    """``data.folds`` / ``data.fold`` against the dataset's cases (the same split functions the
    trials call); with ``bilevel``, the fine stage's two halves of the training cases too."""
    from raynas.data.splits import bilevel_split, case_split
    from raynas.errors import DataError

    data = preset.data
    cases = list(dataset.cases)
    culprit = who("data.folds", "data.fold", "data.cases", "data.test_fraction", "data.test_cases")
    limit = f" (data.cases={data.cases})" if data.cases == len(cases) else ""
    try:
        split = case_split(
            [c.name for c in cases],
            folds=data.folds,
            fold=data.fold,
            seed=preset.seed,
            test_fraction=data.test_fraction,
            test_cases=data.test_cases,
        )
    except DataError as exc:  # names the test cases or the folds it could not make
        raise UserError(f"{culprit}: {exc}; {info_name(dataset)} has {len(cases)}{limit}") from None
    except ValueError:
        raise UserError(
            f"{culprit}: data.folds={data.folds} needs at least {data.folds} cases besides the "
            f"held-out test cases; {info_name(dataset)} has {len(cases)}{limit}"
        ) from None
    train, val = split["train"], split["val"]
    if not val or not train:
        raise UserError(f"{culprit}: data.fold={data.fold} leaves an empty training or "
                        f"validation split of {len(cases)} cases{limit}")
    if bilevel:
        weights, arch = bilevel_split(train, seed=preset.seed)
        if not weights or not arch or len(train) < 2:
            raise UserError(
                f"{culprit}: data.folds={data.folds} leaves {len(train)} training case(s) of "
                f"{len(cases)}{limit}; the fine stage needs 2 or more (disjoint weights and "
                "architecture halves)"
            )


def info_name(dataset: Any) -> str:
    info = dataset.info
    where = "" if info.synthetic else f" ({dataset.root})"
    return f"{info.name}{where}"
