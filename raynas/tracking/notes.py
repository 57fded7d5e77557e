"""Run descriptions (the MLflow tag ``mlflow.note.content``, shown as the run's "Description"):
the architecture summary of a retrain run and the frontier table of a search's parent run, plus
the summary metrics a parent carries so searches compare row by row in the runs table.

Text from plain data; :func:`log_search_summary` logs a search's on its parent run (called by
:func:`raynas.tracking.log_frontier`), :func:`log_network_summary` a trained network's (with its
``architecture.json`` and ``architecture.png``) on the parent of ``raynas retrain`` / ``baseline``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from raynas.tracking.names import point_label

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
        f"- space `{space}`, {data.get('spatial_dims')}D, {data.get('in_channels')} input "
        f"channel(s), {data.get('out_channels')} classes, width {data.get('width')}"
    )
    lines = [head]
    if space == "c2f":
        lines.append(f"- topology (level of each cell) `{data.get('topology')}`")
        ops = [" + ".join(row) for row in data.get("ops", [])]
        lines.append("- cell operations: " + ", ".join(f"{i}: `{op}`" for i, op in enumerate(ops)))
    elif space == "thrifty":
        lines.append(f"- grid depth {data.get('depth')}, {data.get('nodes')} nodes per cell")
        for cell in ("dn", "up"):
            cells = data.get(cell, [])
            nodes = [" + ".join(f"{op}({src})" for src, op in edges) for edges in cells]
            lines.append(f"- {cell.upper()} cell: " + "; ".join(f"`{n}`" for n in nodes))
    else:
        extra = {k: v for k, v in data.items()
                 if k not in ("space", "schema_version", "spatial_dims", "in_channels",
                              "out_channels", "width")}  # fmt: skip
        if extra:
            lines.append("- " + ", ".join(f"{k} `{v}`" for k, v in extra.items())[:1500])
    return lines


def architecture_note(
    arch_json: str | Mapping[str, Any], *, name: str, metrics: Mapping[str, Any] | None = None
) -> str:
    """Markdown description of a retrained network: its figures and its Architecture.

    Example:
        >>> note = architecture_note('{"space": "unet", "spatial_dims": 3, "in_channels": 1, '
        ...                          '"out_channels": 2, "width": 8}', name="unet (1.4M)",
        ...                          metrics={"val_dice": 0.43, "params": 1_400_000})
        >>> note.splitlines()[0]
        '### unet (1.4M)'
    """
    data = json.loads(arch_json) if isinstance(arch_json, str) else dict(arch_json)
    metrics = metrics or {}
    lines = [f"### {name}", ""]
    figures = [(k, metrics[k]) for k in ("test_dice", "val_dice", "best_dice", "params")
               if k in metrics]  # fmt: skip
    if figures:
        lines.append(" · ".join(
            f"{k} {int(v):,}" if k == "params" else f"{k} {_fmt(float(v))}" for k, v in figures
        ))
        lines.append("")
    lines += _arch_lines(data)
    lines += ["", "Files: `architecture.json` (rebuild with `raynas retrain`), `architecture.png`."]
    return "\n".join(lines)


def _dice(p: Any) -> float:
    test = getattr(p, "test_dice", None)
    return float(test) if test is not None else float(p.dice)


def frontier_note(points: Sequence[Any], front: Sequence[Any], *, dice_label: str) -> str:
    """Markdown description of a search's parent run: the frontier table, then the rest."""
    on_front = {id(p) for p in front}
    rows = sorted(points, key=lambda p: (id(p) not in on_front, p.params, -_dice(p)))
    lines = [
        f"### Pareto frontier ({dice_label} up, parameters down)",
        "",
        f"| front | network | kind | {dice_label} | params |",
        "|:-:|---|---|--:|--:|",
    ]
    for p in rows:
        mark = "*" if id(p) in on_front else ""
        label = point_label(p.name, p.params, p.kind)
        dice = _fmt(_dice(p)) if getattr(p, "learned", True) else "did not learn"
        lines.append(f"| {mark} | {label} | {p.kind} | {dice} | {p.params:,} |")
    lines += ["", "Files: `pareto.png`, `pareto.csv`, `pareto.json`. Compare the networks in the "
              "runs table filtered with `tags.stage = \"retrain\"`."]  # fmt: skip
    return "\n".join(lines)


def summary_metrics(points: Sequence[Any], front: Sequence[Any]) -> dict[str, float]:
    """``best_searched_dice`` / ``best_searched_params``, ``best_baseline_dice`` /
    ``best_baseline_params``, ``frontier_size``, ``networks`` and ``networks_did_not_learn`` (see
    :func:`raynas.tracking.pareto.learned`) of a search."""
    out: dict[str, float] = {"frontier_size": float(len(front)), "networks": float(len(points))}
    out["networks_did_not_learn"] = float(sum(not getattr(p, "learned", True) for p in points))
    for kind in ("searched", "baseline"):
        pts = [p for p in points if p.kind == kind and math.isfinite(_dice(p))]
        if pts:
            best = max(pts, key=lambda p: (_dice(p), -p.params))
            out[f"best_{kind}_dice"] = _dice(best)
            out[f"best_{kind}_params"] = float(best.params)
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
) -> None:
    """Logs a trained network's description (:func:`architecture_note`, plus its model URI),
    ``architecture.json`` and ``architecture.png`` on run ``run_id`` (the parent run of
    ``raynas retrain`` / ``raynas baseline``). A picture that cannot be drawn is a warning."""
    import logging
    import tempfile
    from pathlib import Path

    from raynas.tracking.runs import log_artifact_file, log_text, set_tags

    note = architecture_note(arch_json, name=name, metrics=metrics)
    if model_uri:
        note += f"\n\nModel: `{model_uri}` (the trial run's logged model)."
    set_tags(target, run_id, {NOTE_TAG: note})
    log_text(target, run_id, arch_json, "architecture.json")
    try:
        from raynas.nets.drawing import save_architecture_png

        with tempfile.TemporaryDirectory(prefix="raynas-arch-") as tmp:
            png = save_architecture_png(arch_json, Path(tmp) / "architecture.png", name=name)
            log_artifact_file(target, run_id, png)
    except Exception as exc:  # noqa: BLE001 - a picture must never fail the run
        logging.getLogger(__name__).warning("%s: no architecture picture (%s)", run_id, exc)
