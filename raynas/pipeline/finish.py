"""The end of a search: best weights of each retrained network, the Pareto frontier (files on
disk and on the parent run, ``pareto=true`` tags), and the best model logged to MLflow.

Everything is keyed by retrain trial, ``<candidate>#<sample>`` (two samples of one candidate
are two rows, two weight files, two runs). **Validation picks, test reports**: frontier
membership (``pareto=true``) and the best model are decided on each trial's validation Dice (its
best epoch's) by :mod:`raynas.strategy.selection`; the test Dice each trial measured once at its
end on the held-out cases (a trial that ASHA stopped early is scored here, on the driver, from
its best weights) is reported beside it and decides nothing. Every retrained trial's best
weights are logged as an MLflow logged model of its own run (the experiment's Models tab lists
them with their Dice and parameters). The best model is, among the frontier's searched trials,
the one with the highest validation Dice (:func:`raynas.strategy.selection.best_model`): the
parent's tag ``best_model_uri`` points at its logged model.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from raynas.pipeline.outputs import slug

__all__ = [
    "finish_search",
    "log_best_model",
    "log_trial_model",
    "model_file",
    "model_name",
    "save_best_weights",
    "trial_scores",
]

logger = logging.getLogger("raynas.search")


def model_file(name: str) -> str:
    """The file stem of trial ``name``: each part slugged, the ``#`` of ``<candidate>#<n>``
    kept. ``#`` is a plain character in a local file name, but must never go into an MLflow
    artifact path: through an ``mlflow server`` artifact proxy (MLflow 3.17) ``models/a#0.json``
    was stored as ``models/a`` (the URL fragment is cut). Trial names go into run names, tags
    and params only; artifacts keep fixed names (``best_model``, ``architecture.json``)."""
    return "#".join(slug(part) for part in name.split("#"))


def save_best_weights(folder: Any, record: Any, name: str, arch_json: str) -> Path | None:
    """Writes ``models/<name>.pt`` (the best weights of a retrain trial, a plain state dict) and
    ``models/<name>.json`` (its Architecture) in the output ``folder``; ``None`` when the trial
    left no reachable checkpoint. ``name`` is the trial's, ``<candidate>#<sample>``."""
    from raynas.tune import load_checkpoint_state

    if record.checkpoint is None or not Path(record.checkpoint).is_dir():
        logger.warning("retrain %s: no checkpoint reachable at %s", name, record.checkpoint)
        return None
    state = load_checkpoint_state(record.checkpoint)
    best = state["extra"].get("best_state", state["model"])
    path = folder.root / "models" / f"{model_file(name)}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(best, path)
    path.with_suffix(".json").write_text(arch_json)
    folder.seal_output(path)  # what a resumed search reads back is verified first
    folder.seal_output(path.with_suffix(".json"))
    return path


def model_name(name: str, kind: str = "searched") -> str:
    """The MLflow model name of trial ``name``: the network's one name
    (:func:`raynas.tracking.names.network_name`, e.g. ``searched0-0``, ``unet-0``), which MLflow
    accepts as a logged-model name and which is safe in artifact paths (no ``#``, no ``.``)."""
    from raynas.tracking.names import network_name

    return network_name(name, kind)


def log_trial_model(
    setup: Any,
    name: str,
    arch_json: str,
    weights: Path,
    run_id: str | None,
    figures: dict[str, float],
    kind: str = "searched",
) -> str | None:
    """Logs retrain trial ``name`` (its saved best ``weights``) as an MLflow logged model whose
    source is its run ``run_id``, named :func:`model_name`, with its ``figures`` (``val_dice``,
    ``test_dice``, ``params`` first, then per class) as model metrics and its trial name as a
    model param; returns the model URI.

    A failure to log (an artifact store gone away at the end of a long run, no run) is a
    warning, not the end of the run: the weights and the JSON are already saved in ``models/``.
    """
    import math

    from raynas.nets import build_network, load_architecture
    from raynas.tracking import client_for, log_pytorch_model, set_tags

    if run_id is None:
        logger.warning("%s: no MLflow run found; its model is not logged", name)
        return None
    model = build_network(load_architecture(arch_json))
    model.load_state_dict(torch.load(weights, weights_only=True))
    metrics = {k: v for k, v in figures.items() if math.isfinite(v)}
    try:
        logged = client_for(setup.target).get_run(run_id).data.tags.get("model_uri")
        if logged:  # a resumed search that already logged it: no second copy
            return logged
        uri = log_pytorch_model(
            setup.target, run_id, model, arch_json, name=model_name(name, kind), metrics=metrics,
            params={"trial": name},
        )  # fmt: skip
        set_tags(setup.target, run_id, {"model_uri": uri})
    except Exception as exc:  # noqa: BLE001 - MLflow, HTTP and storage errors alike
        reason = " ".join(str(exc).split())[:300] or type(exc).__name__
        logger.warning(
            "%s: could not log it as an MLflow model (%s); its weights are in %s", name, reason,
            weights,
        )
        return None
    return uri


def log_best_model(setup: Any, name: str, uri: str | None, kind: str = "searched") -> None:
    """Tags the parent run with the best trial's network (``best_model``: its one name,
    :func:`model_name`; ``best_trial``: the trial ``name``) and its logged model
    (``best_model_uri``: the model logged by :func:`log_trial_model` on the trial's run, not a
    second copy) and records the trial in the folder's state."""
    from raynas.tracking import set_tags

    tags = {"best_model": model_name(name, kind), "best_trial": name}
    if uri is not None:
        tags["best_model_uri"] = uri
    set_tags(setup.target, setup.parent_run_id, tags)
    setup.folder.state["model"] = name
    setup.folder.save_state()


def _split_metrics(last: dict[str, Any]) -> dict[str, float]:
    return {
        k: float(v)
        for k, v in last.items()
        if k.startswith(("test_dice", "val_dice"))
        and not k.startswith("val_dice_class_")
        and isinstance(v, int | float)
    }


def trial_scores(
    setup: Any, record: Any, arch_json: str, weights: Path | None, run_id: str | None
) -> dict[str, float]:
    """``test_dice``, ``val_dice`` and their per-class values of one retrain trial: from its last
    report, or, for a trial that did not reach its last epoch (ASHA), measured here once on the
    test cases from its best ``weights`` and logged on its run."""
    import math

    scores = _split_metrics(record.last)
    if "test_dice" in scores:
        return scores
    from raynas.engine.dice_names import class_keys, split_metrics
    from raynas.nets import build_network, load_architecture
    from raynas.pipeline.evaluate import score_network
    from raynas.tracking import log_metrics

    keys = class_keys(setup.dataset.labels, setup.dataset.num_classes)
    best_val: list[float] = []
    if record.checkpoint is not None and Path(record.checkpoint).is_dir():
        from raynas.tune import load_checkpoint_state

        best_val = list(load_checkpoint_state(record.checkpoint)["extra"].get("best_val", []))
    val = record.best_dice if math.isfinite(record.best_dice) else math.nan
    scores = split_metrics("val", val, best_val, keys)
    if weights is None:
        return {**scores, "test_dice": math.nan}
    arch = load_architecture(arch_json)
    model = build_network(arch)
    model.load_state_dict(torch.load(weights, weights_only=True))
    device = "auto" if setup.gpus_per_trial > 0 else "cpu"
    result = score_network(
        model, arch, preset=setup.preset, dataset=setup.dataset, split="test", device=device
    )
    scores.update(split_metrics("test", result.dice, list(result.per_class), keys))
    logger.info("retrain %s: test Dice %.4f (scored on the driver)", record.trial, result.dice)
    if run_id is not None:
        log_metrics(setup.target, run_id, scores, step=max(record.iterations, 0))
    return scores


def finish_search(
    setup: Any,
    records: dict[str, list[Any]],
    candidates: dict[str, dict[str, Any]],
    kinds: dict[str, str],
) -> Any:
    from raynas.pipeline.results import SearchResult
    from raynas.strategy.selection import best_model
    from raynas.tracking import (
        ParetoPoint,
        find_trial_run,
        finish_run,
        log_frontier,
        save_frontier,
        set_tags,
    )

    points, weights, uris = [], {}, {}
    for record in records["retrain"]:
        if record.status == "failed":
            continue
        name = record.trial  # <candidate>#<sample>
        arch_json = candidates[record.candidate]["arch_json"]
        run_id = find_trial_run(
            setup.target,
            setup.experiment_id,
            setup.parent_run_id,
            record.trial_id,
            stage="retrain",
        )
        weights[name] = save_best_weights(setup.folder, record, name, arch_json)
        scores = trial_scores(setup, record, arch_json, weights[name], run_id)
        params = int(record.last.get("params", 0))
        kind = kinds.get(record.candidate, "searched")
        if weights[name] is not None and run_id is not None:
            figures = {**scores, "params": float(params)}
            uris[name] = log_trial_model(setup, name, arch_json, weights[name], run_id, figures,
                                         kind)  # fmt: skip
        points.append(
            ParetoPoint(
                name=name,
                val_dice=scores.pop("val_dice", record.best_dice),
                params=params,
                run_id=run_id,
                kind=kind,
                test_dice=scores.pop("test_dice"),
                per_class={k: v for k, v in scores.items() if k != "test_volumes"},
            )
        )
    if not points:
        raise RuntimeError("retrain stage: every trial failed; see the log and the MLflow runs")
    save_frontier(points, setup.folder.root, stem="frontier")
    front = log_frontier(setup.target, setup.parent_run_id, points)

    best = best_model(points)  # on validation Dice; test Dice only reported
    if best is not None and not setup.folder.state.get("model"):
        log_best_model(setup, best.name, uris.get(best.name), best.kind)

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
