"""``raynas retrain`` and ``raynas baseline``: one Architecture trained from scratch as one Ray
trial (a retrain stage with a single candidate), under its own MLflow parent run, through the
same setup, stage runner and output folder as a search.

Output folder: ``<storage>/<experiment>/<command>_<name>_<dataset>_s<seed>/`` with
``retrain.csv``, ``split.json``, ``architectures/<name>.json``, ``models/<name>#<n>.pt`` +
``models/<name>#<n>.json`` (one per trial, ``n`` = 0 .. ``retrain.num_samples``-1) and
``search.log``. The reported Dice is the test Dice of the best trial (chosen by validation
Dice) on the held-out test cases. MLflow: a parent run tagged ``raynas.kind`` = ``command`` =
``retrain`` or ``baseline``, holding the nested trial runs (``stage=retrain``,
``kind=searched|baseline``), so ``raynas pareto`` counts baselines beside the search of the same
experiment; the trained network is an MLflow logged model of its trial run (tag
``best_model_uri`` on the parent, as a search points at its best), and the parent's description
is the network's summary with its ``architecture.json`` / ``architecture.png``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from raynas.errors import UserError
from raynas.pipeline.baselines import BASELINES, baseline_architecture
from raynas.pipeline.options import Resolved, RunOptions
from raynas.pipeline.outputs import slug
from raynas.pipeline.running import run_tracked_stage
from raynas.pipeline.setup import SearchSetup, open_run

__all__ = ["RetrainOptions", "RetrainResult", "run_retrain"]

logger = logging.getLogger("raynas.search")


@dataclass(kw_only=True)
class RetrainOptions(RunOptions):
    """The options of ``raynas retrain`` (``architecture``) or ``raynas baseline`` (``model``).

    Example:
        >>> RetrainOptions(dataset="synthetic", architecture=Path("arch.json"), preset="smoke")
    """

    architecture: Path | None = None  # raynas retrain ARCH.json
    model: str | None = None  # raynas baseline --model unet|unetpp|dynunet
    epochs: int | None = None
    width: int | None = None

    @property
    def command(self) -> str:
        return "baseline" if self.model is not None else "retrain"


@dataclass
class RetrainResult:
    name: str  # the trial's, <name>#<n>
    kind: str  # "searched" | "baseline"
    dice: float  # test Dice of the best-epoch weights (sliding window, held-out test cases)
    per_class: dict[str, float]  # test Dice per class, by label name
    val_dice: float  # validation Dice of the best epoch (what chose the epoch)
    params: int
    epochs: int
    model_path: Path | None
    folder: Path
    tracking_uri: str
    experiment: str
    parent_run_id: str


def _check_numbers(options: RetrainOptions) -> list[str]:
    overrides = []
    for flag, value in (("--epochs", options.epochs), ("--width", options.width)):
        if value is not None and value < 1:
            raise UserError(f"{flag} {value}: must be >= 1")
    if options.epochs is not None:
        overrides.append(f"retrain.epochs={options.epochs}")
    if options.width is not None:
        overrides.append(f"retrain.width={options.width}")
    return overrides


def _load_architecture(options: RetrainOptions) -> tuple[str, Any]:
    from raynas.nets import load_architecture

    path = Path(options.architecture or "")
    if not path.is_file():
        raise UserError(f"{path}: architecture file not found")
    arch = load_architecture(path)  # ConfigError naming the file and the field
    if options.width is not None:
        data = arch.to_dict()
        if "width" not in data:
            raise UserError(
                f"--width {options.width}: {path} ({arch.space}) has no base width; leave it out"
            )
        arch = load_architecture({**data, "width": options.width})
    return slug(path.stem), arch


def _check_channels(options: RetrainOptions, arch: Any, dataset: Any) -> None:
    expected = (dataset.in_channels, dataset.num_classes)
    if (arch.in_channels, arch.out_channels) != expected:
        raise UserError(
            f"{options.architecture}: in_channels={arch.in_channels}, "
            f"out_channels={arch.out_channels}, but {dataset.info.name} has {expected[0]} "
            f"input channel(s) and {expected[1]} classes"
        )


def _resolve(options: RetrainOptions) -> tuple[Resolved, Any, str]:
    """All user input, checked before Ray starts (UserError / ConfigError with one line):
    ``(resolved options, architecture, name)``."""
    from raynas.pipeline.validate import make_resolved, resolve_preset, resolve_target, run_dataset

    if (options.architecture is None) == (options.model is None):
        raise UserError("give an ARCH.json (raynas retrain) or --model (raynas baseline)")
    if options.model is not None and options.model not in BASELINES:
        raise UserError(f"--model {options.model}: unknown; valid: {', '.join(BASELINES)}")
    preset, blame = resolve_preset(options, _check_numbers(options))
    if options.architecture is not None:
        name, arch = _load_architecture(options)  # before the (slow) dataset check
        dataset = run_dataset(options, preset)
        _check_channels(options, arch, dataset)
    else:
        dataset = run_dataset(options, preset)
        dims = 2 if dataset.info.default_mode == "2d" else 3
        arch = baseline_architecture(
            str(options.model), preset=preset, dataset=dataset, spatial_dims=dims
        )
        name = f"baseline-{options.model}"
    target = resolve_target(options.tracking_uri, options.workdir)
    run = make_resolved(options, preset, blame, dataset, target, space_ref=arch.space)
    return run, arch, name


def _per_class(scores: dict[str, float], labels: dict[Any, str], n: int) -> dict[str, float]:
    from raynas.engine.dice_names import class_keys

    out = {}
    for i, key in enumerate(class_keys(labels, n), start=1):
        if f"test_dice_{key}" in scores:
            out[str(labels.get(i, key))] = float(scores[f"test_dice_{key}"])
    return out


def _finish(setup: SearchSetup, records: list[Any], name: str, arch_json: str, kind: str) -> Any:
    from raynas.pipeline.finish import (
        log_best_model,
        log_trial_model,
        save_best_weights,
        trial_scores,
    )
    from raynas.pipeline.results import rank_records
    from raynas.tracking import find_trial_run, finish_run, log_metrics, set_tags
    from raynas.tracking.frontier import learned_tags
    from raynas.tracking.names import point_label
    from raynas.tracking.notes import log_network_summary
    from raynas.tracking.pareto import learned

    ranked = rank_records(records)  # by validation Dice: the test cases choose nothing
    if not ranked:
        errors = "; ".join(r.error or r.status for r in records) or "no trial ran"
        raise RuntimeError(f"retrain {name}: the trial failed ({errors}); see search.log")
    paths = {r.trial: save_best_weights(setup.folder, r, r.trial, arch_json) for r in ranked}
    best = ranked[0]
    path = paths[best.trial]
    run_id = find_trial_run(
        setup.target, setup.experiment_id, setup.parent_run_id, best.trial_id, stage="retrain"
    )
    scores = trial_scores(setup, best, arch_json, path, run_id)
    params = int(best.last.get("params", 0))
    target, parent = setup.target, setup.parent_run_id
    summary = {"best_dice": best.best_dice, "params": params, **scores}
    log_metrics(target, parent, summary, step=0)
    learnt = learned_tags(learned(best.best_dice))  # "did not learn": Dice 0.00 every epoch
    set_tags(target, parent, {"model_path": str(path) if path else "", "trial": best.trial,
                              **learnt})  # fmt: skip
    if run_id:
        set_tags(target, run_id, learnt)
    uri = None
    if path is not None:
        figures = {**scores, "params": float(params)}
        uri = log_trial_model(setup, best.trial, arch_json, path, run_id, figures)
    log_best_model(setup, best.trial, uri)
    log_network_summary(target, parent, arch_json, name=point_label(best.trial, params, kind),
                        metrics=summary, model_uri=uri)  # fmt: skip
    finish_run(target, parent, "FINISHED")
    setup.folder.state["finished"] = True
    setup.folder.save_state()
    setup.close(failed=False)
    logger.info(
        "retrain %s finished: test dice %.4f (validation %.4f), %d parameters",
        best.trial,
        scores["test_dice"],
        best.best_dice,
        params,
    )
    return RetrainResult(
        name=best.trial,
        kind=kind,
        dice=scores["test_dice"],
        per_class=_per_class(scores, setup.dataset.labels, setup.dataset.num_classes),
        val_dice=best.best_dice,
        params=params,
        epochs=best.iterations,
        model_path=path,
        folder=setup.folder.root,
        tracking_uri=target.uri,
        experiment=setup.experiment,
        parent_run_id=parent,
    )


def run_retrain(options: RetrainOptions) -> RetrainResult:
    """Trains one architecture (``options.architecture``) or baseline (``options.model``) from
    scratch as one Ray trial, tracked in MLflow, and saves its best weights."""
    run, arch, name = _resolve(options)  # every option resolved once, here
    command = options.command
    kind = "baseline" if command == "baseline" else "searched"
    arch_json = json.dumps(arch.to_dict(), sort_keys=True, indent=1)
    setup = open_run(
        run,
        name=f"{command}_{name}_{run.dataset.info.name}_s{run.seed}",
        tags={"space": arch.space, "command": command, "architecture": name},
        kind=command,
    )
    try:
        setup.folder.write_architecture(name, arch_json)
        candidates = {name: {"label": name, "arch_json": arch_json}}
        records = run_tracked_stage(setup, "retrain", candidates, {name: kind})
        return _finish(setup, records, name, arch_json, kind)
    except BaseException:
        setup.close(failed=True)
        raise
