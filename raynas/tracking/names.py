"""What networks and trial runs are called: one short name per network, and metric names that
mean one thing.

Pure functions (no MLflow, no Ray), used by the Tune callback that logs every trial, the
frontier files and plot, the terminal tables and the logged models.

**One name per network** (:func:`network_name`): a retrain trial ``<candidate>#<sample>`` is
shown everywhere (terminal tables, ``pareto.png``/``.csv``/``.json``, MLflow run names, the
parent's ``best_model`` tag, logged model names, descriptions, the architecture picture) as
``searched0-0``, ``random1-0``, ``unet-0`` or, for ``raynas retrain tiny.json``, ``tiny-0``.
The name holds only letters, digits, ``_`` and ``-``, so it is also a valid MLflow logged-model
name (which forbids ``/ : . % " '``) and a safe artifact path (``#`` is cut there). The size is
never part of the name: it is shown beside it (the ``params`` column and metric). The long
candidate key (``searched0-0-1-1-2-...``) stays in the tags ``candidate``, ``trial`` and
``topology``; the output folder's files (``models/<trial>.pt``) keep the trial's key.

Supernet run names: ``coarse cluster3`` (C2F) or ``coarse d3_w16`` (Thrifty); ``fine#0
cluster3`` (the fine trial of the coarse winner ``cluster3``).

Metric names:

- retrain runs (the networks to compare) keep plain names: per epoch ``dice`` (mean foreground
  validation Dice of the epoch), ``best_dice``, ``loss``, ``val_dice_class_<i>``, ``time_*_s``
  and whatever held-out figures the result carries (``val_dice``, ``test_dice``,
  ``test_dice_<class>``, ``val_dice_<class>``); once: ``params`` (at its first epoch), and when
  the run ends ``val_dice`` (the best validation Dice, unless the trial reported its own),
  ``params_M`` (parameters in millions) and ``log10_params`` (for a log-x scatter in the UI,
  whose scatter has no log axis).
- supernet runs (coarse, fine) prefix every name with the stage: ``coarse/dice``,
  ``coarse/best_dice``, ``coarse/loss``, ``coarse/evaluated``, ``coarse/params`` (of the best
  topology at search width), ``fine/dice``, ``fine/loss``, ``fine/derived_params`` (of the
  derived network), ``fine/time_train_s``, ... so a chart over all runs never mixes them with
  the retrained networks' ``dice`` and ``params``.
- ``epoch`` is never a metric (it is the step of every per-epoch metric); a value that stays
  the same from epoch to epoch (``params``) is logged again only when it changes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

__all__ = [
    "SUPERNET_STAGES",
    "CONSTANT_KEYS",
    "mlflow_metrics",
    "final_metrics",
    "short_run_name",
    "network_name",
]

SUPERNET_STAGES = ("coarse", "fine")
CONSTANT_KEYS = ("params",)  # logged once (again only if the value changes)
_PLAIN_KEYS = (
    "dice", "best_dice", "loss", "evaluated", "params", "val_dice", "test_dice", "train_steps",
    "evals", "val_loss",
)  # fmt: skip
_PREFIXES = ("val_dice_", "test_dice_", "time_")
_RENAMED = {"fine": {"params": "derived_params"}}
_NUMBERED = re.compile(r"^(searched\d+|random\d+)(?:-.*)?$")  # searched0-<topology>, random1
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")  # MLflow model names forbid / : . % " ' (and # cuts)
_FINE = re.compile(r"^fine(\d+)-(.+)$")


_RAY_KEYS = ("time_this_iter_s", "time_total_s", "time_since_restore")  # Tune's own


def _wanted(key: str) -> bool:
    return key in _PLAIN_KEYS or (key.startswith(_PREFIXES) and key not in _RAY_KEYS)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def mlflow_metrics(stage: str, result: Mapping[str, Any]) -> dict[str, float]:
    """The numeric metrics of one Tune result under their MLflow names for ``stage``.

    Example:
        >>> mlflow_metrics("coarse", {"dice": 0.5, "params": 10, "epoch": 2, "topology": "0-0"})
        {'coarse/dice': 0.5, 'coarse/params': 10.0}
        >>> mlflow_metrics("retrain", {"dice": 0.5, "params": 10, "time_train_s": 1.5,
        ...                            "time_total_s": 9.0})
        {'dice': 0.5, 'params': 10.0, 'time_train_s': 1.5}
    """
    out: dict[str, float] = {}
    renamed = _RENAMED.get(stage, {})
    for key, value in result.items():
        number = _number(value)
        if number is None or not _wanted(key):
            continue
        name = renamed.get(key, key)
        out[f"{stage}/{name}" if stage in SUPERNET_STAGES else name] = number
    return out


def is_constant(name: str) -> bool:
    """True for the metrics logged only when their value changes (``params``, ``coarse/params``,
    ``fine/derived_params``)."""
    base = name.rsplit("/", 1)[-1]
    return base in CONSTANT_KEYS or base == "derived_params"


def final_metrics(stage: str, last: Mapping[str, Any]) -> dict[str, float]:
    """The figures a retrain run carries once it ends: ``val_dice`` (its best validation Dice,
    unless the trial reported ``val_dice`` itself), ``params_M`` and ``log10_params``; nothing
    for supernets.

    Example:
        >>> final_metrics("retrain", {"best_dice": 0.7, "params": 1_000_000})
        {'val_dice': 0.7, 'params_M': 1.0, 'log10_params': 6.0}
    """
    if stage in SUPERNET_STAGES:
        return {}
    out: dict[str, float] = {}
    if _number(last.get("val_dice")) is None and _number(last.get("best_dice")) is not None:
        out["val_dice"] = float(last["best_dice"])
    params = _number(last.get("params"))
    if params is not None:
        out["params_M"] = round(params / 1e6, 6)
        out["log10_params"] = round(math.log10(max(params, 1.0)), 4)
    return out


def network_name(trial: Any, kind: str = "searched") -> str:
    """The one name of a network, from its retrain trial ``<candidate>#<sample>`` (or a bare
    candidate key): ``searched<i>`` or ``random<i>`` without the topology, a baseline without
    ``baseline-``, then ``-<sample>``; any character other than a letter, digit, ``_`` or ``-``
    becomes ``_`` (so it is a valid MLflow logged-model name and artifact path), at most 40
    characters before the sample.

    Example:
        >>> network_name("searched0-0-1-1-2-1-0#0"), network_name("random1#0", "random")
        ('searched0-0', 'random1-0')
        >>> network_name("baseline-unet#1", "baseline"), network_name("my.arch v2#0")
        ('unet-1', 'my_arch_v2-0')
    """
    base, hash_, sample = str(trial).partition("#")
    m = _NUMBERED.match(base)
    if m:
        base = m.group(1)
    elif kind == "baseline" and base.startswith("baseline-"):
        base = base[len("baseline-") :]
    base = _UNSAFE.sub("_", base).strip("_")[:40] or "network"
    return f"{base}-{_UNSAFE.sub('_', sample)}" if hash_ else base


def short_run_name(stage: str, key: str, *, kind: str = "searched") -> str:
    """A short run name for the trial of candidate ``key`` in ``stage``: for a retrain trial
    (``key`` = ``<candidate>#<sample>``) its :func:`network_name`.

    Example:
        >>> short_run_name("retrain", "searched0-0-1-1-0#0")
        'searched0-0'
        >>> short_run_name("retrain", "baseline-unet#1", kind="baseline")
        'unet-1'
        >>> short_run_name("coarse", "cluster3"), short_run_name("fine", "fine0-cluster3")
        ('coarse cluster3', 'fine#0 cluster3')
    """
    key = str(key)
    if stage == "coarse":
        return f"coarse {key}"
    if stage == "fine":
        m = _FINE.match(key)
        return f"fine#{m.group(1)} {m.group(2)[:40]}" if m else f"fine {key[:40]}"
    return network_name(key, kind)
