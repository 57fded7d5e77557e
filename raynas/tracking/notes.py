"""Run descriptions (the MLflow tag ``mlflow.note.content``, shown as the run's "Description"):
the architecture summary of a retrain run and the frontier list of a search's parent run, plus
the summary metrics a parent carries so searches compare row by row in the runs table.

**Written in the form MLflow shows.** MLflow 3.17's run page renders a description with
showdown (GitHub flavour; a table there needs ``---`` under every header cell, else it shows
raw), but the runs table's Description column and the chart tooltips show the raw text. So a
description is plain lines and ``-`` bullet lists only: no headings (a raw ``###``), no tables
(raw ``|---|``), no backticks, and its first line alone says what it is about. Networks are
named by :func:`raynas.tracking.names.network_name`, their size beside the name.

Text from plain data; :func:`log_search_summary` logs a search's on its parent run (called by
:func:`raynas.tracking.log_frontier`), :func:`log_network_summary` a trained network's (with its
``architecture.json`` and ``architecture.png``) on the parent of ``raynas retrain`` / ``baseline``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from raynas.tracking.names import network_name

__all__ = [
    "NOTE_TAG",
    "architecture_note",
    "frontier_note",
    "summary_metrics",
    "log_search_summary",
    "log_network_summary",
]

NOTE_TAG = "mlflow.note.content"


def _fmt(value: Any, digits: int = 4) -> str:
    if isinstance(value, float):
        return f"{value:.{digits}f}" if math.isfinite(value) else "-"
    return str(value)


def _arch_lines(data: Mapping[str, Any]) -> list[str]:
    space = data.get("space")
    head = (
        f"- space {space}, {data.get('spatial_dims')}D, {data.get('in_channels')} input "
        f"channel(s), {data.get('out_channels')} classes, width {data.get('width')}"
    )
    lines = [head]
    if space == "c2f":
        lines.append(f"- topology (level of each cell): {data.get('topology')}")
        ops = [" + ".join(row) for row in data.get("ops", [])]
        lines.append("- cell operations: " + ", ".join(f"{i}: {op}" for i, op in enumerate(ops)))
    elif space == "thrifty":
        lines.append(f"- grid depth {data.get('depth')}, {data.get('nodes')} nodes per cell")
        for cell in ("dn", "up"):
            cells = data.get(cell, [])
            nodes = [" + ".join(f"{op}({src})" for src, op in edges) for edges in cells]
            lines.append(f"- {cell.upper()} cell: " + "; ".join(nodes))
    else:
        extra = {k: v for k, v in data.items()
                 if k not in ("space", "schema_version", "spatial_dims", "in_channels",
                              "out_channels", "width")}  # fmt: skip
        if extra:
            lines.append("- " + ", ".join(f"{k} {v}" for k, v in extra.items())[:1500])
    return lines


def _figures(metrics: Mapping[str, Any]) -> str:
    """``validation Dice 0.4300 · test Dice 0.4100 · 1,411,787 parameters`` (what is there)."""
    parts = []
    val = metrics.get("val_dice", metrics.get("best_dice"))
    if val is not None:
        parts.append(f"validation Dice {_fmt(float(val))}")
    if metrics.get("test_dice") is not None:
        parts.append(f"test Dice {_fmt(float(metrics['test_dice']))}")
    if metrics.get("params") is not None:
        parts.append(f"{int(metrics['params']):,} parameters")
    return " · ".join(parts)


def architecture_note(
    arch_json: str | Mapping[str, Any],
    *,
    name: str,
    metrics: Mapping[str, Any] | None = None,
    kind: str | None = None,
) -> str:
    """Description of a retrained network: a first line with its name and figures (validation
    Dice first: it picks), then its Architecture as a bullet list.

    Example:
        >>> note = architecture_note('{"space": "unet", "spatial_dims": 3, "in_channels": 1, '
        ...                          '"out_channels": 2, "width": 8}', name="unet-0",
        ...                          metrics={"val_dice": 0.43, "params": 1_400_000},
        ...                          kind="baseline")
        >>> note.splitlines()[0]
        'unet-0 (baseline): validation Dice 0.4300 · 1,400,000 parameters'
    """
    data = json.loads(arch_json) if isinstance(arch_json, str) else dict(arch_json)
    figures = _figures(metrics or {})
    head = f"{name} ({kind})" if kind else name
    lines = [f"{head}: {figures}" if figures else head, ""]
    lines += _arch_lines(data)
    lines += ["", "Files: architecture.json (rebuild with raynas retrain), architecture.png."]
    return "\n".join(lines)


def _point_line(p: Any) -> str:
    test = _fmt(float(getattr(p, "test_dice", math.nan)))
    if not getattr(p, "learned", True):  # its test Dice is no result
        test = "did not learn"
    return (f"- {network_name(p.name, p.kind)}: validation Dice {_fmt(float(p.val_dice))} · "
            f"test Dice {test} · {p.params:,} parameters ({p.kind})")


def frontier_note(points: Sequence[Any], front: Sequence[Any], *, dice_label: str) -> str:
    """Description of a search's parent run: the networks on the frontier (on ``dice_label``,
    the validation Dice), then the rest, one bullet each: name, validation Dice, test Dice
    (reported), parameters, kind."""
    on_front = {id(p) for p in front}
    rows = sorted(points, key=lambda p: (id(p) not in on_front, p.params, -_val(p)))
    lines = [f"Pareto frontier: {len(front)} of {len(rows)} networks ({dice_label} up, "
             "parameters down).", "", "On the frontier:", ""]  # fmt: skip
    lines += [_point_line(p) for p in rows if id(p) in on_front]
    rest = [_point_line(p) for p in rows if id(p) not in on_front]
    if rest:
        lines += ["", "Not on it:", "", *rest]
    lines += ["", "The validation Dice chose the frontier and the best model; the test Dice of "
              "the held-out cases is measured once and decides nothing.", "",
              "Files: pareto.png, pareto.csv, pareto.json. Compare the networks in the runs "
              "table filtered with tags.stage = \"retrain\"."]  # fmt: skip
    return "\n".join(lines)


def _val(p: Any) -> float:
    v = float(p.val_dice)
    return v if math.isfinite(v) else -math.inf


def summary_metrics(points: Sequence[Any], front: Sequence[Any]) -> dict[str, float]:
    """``frontier_size``, ``networks`` and, per kind (``searched``, ``baseline``, ``random``),
    the network with the best **validation** Dice (:func:`raynas.strategy.selection.best_by_val`):
    ``best_<kind>_val_dice``, ``best_<kind>_test_dice`` (its test Dice, reported; left out when
    not finite) and ``best_<kind>_params``; with random controls, ``search_vs_random_val_dice``
    and ``search_vs_random_test_dice``: best searched minus best random control, each best by
    validation Dice (:func:`raynas.strategy.selection.search_vs_random`; left out when
    undefined). Positive: the search beat chance on this data. ``networks_did_not_learn``
    counts the networks :func:`raynas.tracking.pareto.learned` says did not learn."""
    from raynas.strategy.selection import best_by_val, search_vs_random

    out: dict[str, float] = {"frontier_size": float(len(front)), "networks": float(len(points))}
    out["networks_did_not_learn"] = float(sum(not getattr(p, "learned", True) for p in points))
    for kind in ("searched", "baseline", "random"):
        best = best_by_val(p for p in points if p.kind == kind)
        if best is None:
            continue
        out[f"best_{kind}_val_dice"] = float(best.val_dice)
        test = float(getattr(best, "test_dice", math.nan))
        if math.isfinite(test):
            out[f"best_{kind}_test_dice"] = test
        out[f"best_{kind}_params"] = float(best.params)
    for key, diff in search_vs_random(points).items():
        if diff is not None:  # undefined (no random control, a NaN figure): not logged
            out[f"search_vs_random_{key}"] = diff
    return out


def log_search_summary(
    target: Any, parent_run_id: str, points: Sequence[Any], front: Sequence[Any]
) -> None:
    """Logs :func:`summary_metrics` and the frontier description on a search's parent run."""
    from raynas.tracking.plots import dice_label
    from raynas.tracking.runs import log_metrics, set_tags

    log_metrics(target, parent_run_id, summary_metrics(points, front), step=0)
    note = frontier_note(points, front, dice_label=dice_label(points))
    set_tags(target, parent_run_id, {NOTE_TAG: note})


def log_network_summary(
    target: Any,
    run_id: str,
    arch_json: str,
    *,
    name: str,
    metrics: Mapping[str, Any] | None = None,
    model_uri: str | None = None,
    kind: str | None = None,
) -> None:
    """Logs a trained network's description (:func:`architecture_note`, plus its model URI),
    ``architecture.json`` and ``architecture.png`` on run ``run_id`` (the parent run of
    ``raynas retrain`` / ``raynas baseline``). A picture that cannot be drawn is a warning."""
    import logging
    import tempfile
    from pathlib import Path

    from raynas.tracking.runs import log_artifact_file, log_text, set_tags

    note = architecture_note(arch_json, name=name, metrics=metrics, kind=kind)
    if model_uri:
        note += f"\n\nModel: {model_uri} (the trial run's logged model)."
    set_tags(target, run_id, {NOTE_TAG: note})
    log_text(target, run_id, arch_json, "architecture.json")
    try:
        from raynas.nets.drawing import save_architecture_png

        with tempfile.TemporaryDirectory(prefix="raynas-arch-") as tmp:
            png = save_architecture_png(arch_json, Path(tmp) / "architecture.png", name=name)
            log_artifact_file(target, run_id, png)
    except Exception as exc:  # noqa: BLE001 - a picture must never fail the run
        logging.getLogger(__name__).warning("%s: no architecture picture (%s)", run_id, exc)
