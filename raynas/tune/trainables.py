"""The one function trainable every stage runs: a stage program driven epoch by epoch, with
``tune.report`` each epoch and a checkpoint when the program asks for one (every
``checkpoint_every`` epochs, at ASHA's rungs, at the end), resumed from ``tune.get_checkpoint()``
after a failure or a ``--resume``. The checkpoint's cost (writing it, and persisting the previous
one to the storage path inside ``tune.report``) is reported as ``time_ckpt_s``."""

from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from ray import tune

from raynas.stages.checkpoint import STATE_FILE, write_checkpoint

__all__ = ["stage_trainable", "STATE_FILE", "load_checkpoint_state"]

_HPARAMS = ("lr", "weight_decay", "optimizer")


def load_checkpoint_state(folder: str | Path) -> dict[str, Any]:
    """The program state saved in a checkpoint folder (tensors and plain containers only)."""
    return torch.load(Path(folder) / STATE_FILE, map_location="cpu", weights_only=True)


def _trial_key(config: dict[str, Any]) -> str:
    """The key a trial's seed derives from: ``config["trial"]`` when the stage names its trials,
    else the candidate, with ``#<sample>`` when several samples of one candidate run."""
    if config.get("trial"):
        return str(config["trial"])
    key = str(config["candidate"])
    return f"{key}#{config['sample']}" if "sample" in config else key


def stage_trainable(
    config: dict[str, Any], *, spec: dict[str, Any], candidates: dict[str, dict[str, Any]]
) -> None:
    """Ray Tune function trainable. ``config["candidate"]`` is a key of ``candidates``; Optuna
    may add training hyper-parameters (``lr``, ``weight_decay``, ``optimizer``) to ``config``."""
    from raynas.stages import TrialSpec, make_program

    cpus = max(1, int(spec.get("cpus_per_trial", 1)))
    torch.set_num_threads(cpus)
    key = config["candidate"]
    candidate = {"key": key, **candidates[key], "trial": _trial_key(config)}
    hparams = {k: config[k] for k in _HPARAMS if k in config}
    if hparams:
        candidate["hparams"] = hparams
    trial_spec = TrialSpec.from_dict(
        {k: v for k, v in spec.items() if k not in ("cpus_per_trial", "tracking")}
        | {"candidate": candidate}
    )
    program = make_program(trial_spec)

    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            program.load_state_dict(load_checkpoint_state(folder))

    from raynas.tracking.system import start_trial_system_metrics

    stop_system_metrics = start_trial_system_metrics(
        spec.get("tracking"), tune.get_context().get_trial_id()
    )
    try:
        _run_epochs(program, key, config)
    finally:
        stop_system_metrics()


def _run_epochs(program: Any, key: str, config: dict[str, Any]) -> None:
    from raynas.engine import NonFiniteLossError

    persist = 0.0  # seconds the previous report took to persist its checkpoint
    while not program.finished:
        try:
            metrics = program.run_epoch()
        except NonFiniteLossError as exc:
            # Retrying a diverged trial from its checkpoint would diverge again: end it, with
            # the reason, and let the search go on without it.
            tune.report({"dice": 0.0, "best_dice": 0.0, "failure": f"non-finite loss: {exc}"})
            return
        metrics = {
            k: (float(v) if isinstance(v, float) and math.isfinite(v) else v)
            for k, v in metrics.items()
        }
        metrics["candidate"] = key
        metrics["sample"] = int(config.get("sample", 0))
        if not program.wants_checkpoint():
            if persist:
                program.note_checkpoint(metrics, persist)
                persist = 0.0
            tune.report(metrics)
            continue
        with tempfile.TemporaryDirectory(prefix="raynas-ckpt-") as tmp:
            write_checkpoint(program, tmp, metrics, extra_seconds=persist)
            start = time.perf_counter()
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(tmp))
            persist = time.perf_counter() - start
