"""The names of the Dice figures a trained network reports, shared by the retrain stage (which
reports them from its trial) and the pipeline (which scores a stopped trial on the driver and
reads the figures back): ``<split>_dice`` and ``<split>_dice_<class>``, ``<class>`` the label
name made safe for a metric key.

Example:
    >>> keys = class_keys({0: "background", 1: "left atrium"}, 2)
    >>> split_metrics("test", 0.8, [0.8], keys)
    {'test_dice': 0.8, 'test_dice_left_atrium': 0.8}
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["class_keys", "split_metrics"]


def class_keys(labels: Mapping[Any, str], num_classes: int) -> list[str]:
    """Metric-key names of the foreground classes ``1..num_classes-1``: the label names made
    safe (``"left atrium"`` -> ``left_atrium``), else ``class_<i>``; unique.

    Example:
        >>> class_keys({0: "background", 1: "organ", 2: "non-enhancing tumor"}, 3)
        ['organ', 'non_enhancing_tumor']
    """
    keys: list[str] = []
    for i in range(1, num_classes):
        name = str(labels.get(i, labels.get(str(i), "")))  # type: ignore[call-overload]
        key = re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_") or f"class_{i}"
        keys.append(key if key not in keys else f"{key}_{i}")
    return keys


def split_metrics(prefix: str, dice: float, per_class: list[float], keys: list[str]) -> dict:
    """``{"<prefix>_dice": dice, "<prefix>_dice_<class>": ...}`` (NaN kept as NaN)."""
    out: dict[str, float] = {f"{prefix}_dice": float(dice)}
    for key, value in zip(keys, per_class, strict=False):
        out[f"{prefix}_dice_{key}"] = float(value)
    return out
