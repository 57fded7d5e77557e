"""A user's folder or datalist opened as an :class:`MSDDataset` (``--dataset PATH``): the
layout read by :mod:`raynas.data.layouts`, every case checked, then the spacing, patches and
normalisation taken from the dataset's plan (:mod:`raynas.data.plan`).

Example:
    >>> ds = open_user_dataset("/data/Dataset501_Prostate", plan_cache=tmp)  # doctest: +SKIP
    >>> ds.info.target_spacing, ds.plan_file  # doctest: +SKIP
    ((0.6, 0.6, 3.6), '/tmp/plan-Dataset501_Prostate-....json')
"""

from __future__ import annotations

from pathlib import Path

from raynas.data.cases import MSDDataset
from raynas.data.layouts import read_layout
from raynas.data.plan import info_from_plan, load_or_make_plan, make_plan, read_plan
from raynas.errors import DataError

__all__ = ["open_user_dataset"]


def open_user_dataset(
    ref: str | Path,
    data_root: Path | str | None = None,
    *,
    limit_cases: int | None = None,
    plan: Path | str | None = None,
    plan_cache: Path | str | None = None,
    write_plan: bool = True,
    validate: str = "none",
) -> MSDDataset:
    """A user's folder or datalist as an :class:`MSDDataset` whose :class:`DatasetInfo` comes
    from its plan: the ``plan`` file (checked against the folder), else the full plan cached
    under ``plan_cache`` (written there now, or with ``write_plan=False`` kept in ``plan_data``
    for :func:`raynas.data.plan.save_plan`), else a header-only plan (no intensities).
    ``validate`` (``"header"`` or ``"full"``) checks every case first, before any planning.
    """
    layout = read_layout(ref, data_root, limit_cases=limit_cases)
    if validate != "none":
        from raynas.data.validate import check_dataset

        quick = info_from_plan(layout, make_plan(layout, voxels=False))
        ds = MSDDataset(layout.root, layout.cases, layout.labels, layout.channels, quick)
        check_dataset(ds, deep=validate == "full")
    plan_file: Path | None = None
    if plan is not None:
        plan_file = Path(plan)
        planned = read_plan(plan_file)
        names = set(planned.get("fingerprint", {}).get("cases", {}))
        if planned.get("source") != str(layout.source) or names != {c.name for c in layout.cases}:
            raise DataError(
                f"{plan_file}: the plan is of {planned.get('source')} with {len(names)} case(s), "
                f"not of {layout.source} with {len(layout.cases)} (a stale plan?)"
            )
    elif plan_cache is not None:
        planned, plan_file = load_or_make_plan(layout, cache_dir=plan_cache, write=write_plan)
    else:
        planned = make_plan(layout, voxels=False)
    return MSDDataset(
        root=layout.root,
        cases=layout.cases,
        labels=layout.labels,
        channels=layout.channels,
        info=info_from_plan(layout, planned),
        source=str(layout.source),
        plan_file=str(plan_file) if plan_file is not None else None,
        plan_data=planned if plan_file is not None and not plan_file.is_file() else None,
    )
