"""The end of a search: best weights of each retrained network, the Pareto frontier (files on
disk and on the parent run, ``pareto=true`` tags), and the best model logged to MLflow."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from raynas.pipeline.outputs import slug

__all__ = ["finish_search", "log_best_model", "save_best_weights"]

logger = logging.getLogger("raynas.search")


def save_best_weights(folder: Any, record: Any, name: str, arch_json: str) -> Path | None:
    """Writes ``models/<name>.pt`` (the best weights of a retrain trial, a plain state dict) and
    ``models/<name>.json`` (its Architecture) in the output ``folder``; ``None`` when the trial
    left no reachable checkpoint."""
    from raynas.tune import load_checkpoint_state

    if record.checkpoint is None or not Path(record.checkpoint).is_dir():
        logger.warning("retrain %s: no checkpoint reachable at %s", name, record.checkpoint)
        return None
    state = load_checkpoint_state(record.checkpoint)
    best = state["extra"].get("best_state", state["model"])
    path = folder.root / "models" / f"{slug(name)}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(best, path)
    path.with_suffix(".json").write_text(arch_json)
    return path


def log_best_model(setup: Any, name: str, arch_json: str, weights: Path) -> str | None:
    """Logs the network ``name`` with its saved best ``weights`` as an MLflow PyTorch model
    (``best_model``, Architecture JSON inside) on the parent run, tags the run, and records it
    in the folder's state; returns the model URI.

    A failure to log (an artifact store gone away at the end of a long run) is a warning, not
    the end of the run: the weights and the JSON are already saved in ``models/``."""
    from raynas.nets import build_network, load_architecture
    from raynas.tracking import log_pytorch_model, set_tags

    model = build_network(load_architecture(arch_json))
    model.load_state_dict(torch.load(weights, weights_only=True))
    try:
        uri = log_pytorch_model(
            setup.target, setup.parent_run_id, model, arch_json, name="best_model"
        )
    except Exception as exc:  # noqa: BLE001 - MLflow, HTTP and storage errors alike
        reason = " ".join(str(exc).split())[:300] or type(exc).__name__
        logger.warning(
            "%s: could not log it as an MLflow model (%s); its weights are in %s", name, reason,
            weights,
        )
        return None
    set_tags(setup.target, setup.parent_run_id, {"best_model": name, "best_model_uri": uri})
    setup.folder.state["model"] = name
    setup.folder.save_state()
    return uri


def finish_search(
    setup: Any,
    records: dict[str, list[Any]],
    candidates: dict[str, dict[str, Any]],
    kinds: dict[str, str],
) -> Any:
    from raynas.pipeline.results import SearchResult, rank_records
    from raynas.tracking import (
        ParetoPoint,
        find_trial_run,
        finish_run,
        log_frontier,
        save_frontier,
        set_tags,
    )

    points, weights = [], {}
    for record in records["retrain"]:
        if record.status == "failed":
            continue
        name = record.candidate
        run_id = find_trial_run(
            setup.target,
            setup.experiment_id,
            setup.parent_run_id,
            record.trial_id,
            stage="retrain",
        )
        weights[name] = save_best_weights(setup.folder, record, name, candidates[name]["arch_json"])
        points.append(
            ParetoPoint(
                name=name,
                dice=record.best_dice,
                params=int(record.last.get("params", 0)),
                run_id=run_id,
                kind=kinds.get(name, "searched"),
            )
        )
    if not points:
        raise RuntimeError("retrain stage: every trial failed; see the log and the MLflow runs")
    save_frontier(points, setup.folder.root, stem="frontier")
    front = log_frontier(setup.target, setup.parent_run_id, points)

    best = rank_records([r for r in records["retrain"] if kinds.get(r.candidate) == "searched"])
    best = best or rank_records(records["retrain"])
    if best and weights.get(best[0].candidate) is not None and not setup.folder.state.get("model"):
        top = best[0].candidate
        log_best_model(setup, top, candidates[top]["arch_json"], weights[top])

    stopped = sum(r.status == "stopped" for rs in records.values() for r in rs)
    set_tags(setup.target, setup.parent_run_id, {"asha.stopped_trials": str(stopped)})
    finish_run(setup.target, setup.parent_run_id, "FINISHED")
    setup.folder.state["finished"] = True
    setup.folder.save_state()
    setup.close(failed=False)
    logger.info(
        "search finished: %d retrained networks, %d on the frontier", len(points), len(front)
    )
    return SearchResult(
        folder=setup.folder.root,
        tracking_uri=setup.target.uri,
        experiment=setup.experiment,
        parent_run_id=setup.parent_run_id,
        points=points,
        front=front,
        stopped_early=stopped,
    )
