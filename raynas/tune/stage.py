"""One stage = one ``Tuner``: candidates as trials, ASHA on validation Dice, Optuna where the
preset declares distributions, a checkpoint per epoch, retries from it, and ``Tuner.restore``.

Trials are a grid over the candidates x ``num_samples``: each trial's config holds
``candidate`` (a key) and ``sample`` (``0..num_samples-1``), and its name is
``<candidate>#<sample>`` (:attr:`TrialRecord.trial`). Where hyper-parameters are declared,
Optuna samples only those; the (candidate, sample) of a trial is fixed by its place in the grid.
"""

from __future__ import annotations

import contextlib
import logging
import math
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ray import tune
from ray.tune import CheckpointConfig, FailureConfig, RunConfig, TuneConfig, Tuner
from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback
from ray.tune.schedulers import ASHAScheduler

from raynas.interrupts import InterruptGuard, active_guard
from raynas.tune.guard import (
    SearchSeal,
    SigningCallback,
    sign_staged,
    sign_tuner,
    signing,
    verify_stage,
)
from raynas.tune.runtime import keep_secrets_from_trials
from raynas.tune.trainables import stage_trainable
from raynas.tune.trials import trial_name

__all__ = ["StageRequest", "TrialRecord", "grid_slots", "run_stage", "trial_name"]

logger = logging.getLogger(__name__)


@dataclass
class StageRequest:
    """What :func:`run_stage` needs; ``candidates`` maps a key to the candidate's data."""

    stage: str
    spec: dict[str, Any]
    candidates: dict[str, dict[str, Any]]
    epochs: int
    storage_path: Path
    cpus_per_trial: float
    gpus_per_trial: float
    max_concurrent: int
    max_failures: int
    reuse_actors: bool = True
    asha: dict[str, Any] | None = None  # {"grace_period", "reduction_factor"}; None = no ASHA
    hparams: dict[str, dict[str, Any]] = field(default_factory=dict)  # Optuna distributions
    num_samples: int = 1
    seed: int = 0
    callbacks: list[Any] = field(default_factory=list)
    resume: bool = False
    # what the stage's digests are bound to (the search's identity and counters)
    seal: SearchSeal = field(default_factory=lambda: SearchSeal(""))
    # what ASHA compares (higher is better): the validation Dice, or the asha coarse
    # strategy's ``rank_score`` (coarse.rank_by of each stand-alone network)
    metric: str = "dice"


@dataclass
class TrialRecord:
    """The outcome of one trial, as the pipeline needs it."""

    trial_id: str
    candidate: str
    status: str  # "done", "stopped", "failed"
    iterations: int
    best_dice: float
    last: dict[str, Any]
    checkpoint: str | None
    error: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    sample: int = 0

    @property
    def trial(self) -> str:
        """The trial's name, ``<candidate>#<sample>``: what records, weights, runs and the
        frontier are keyed by."""
        return trial_name(self.candidate, self.sample)


def grid_slots(keys: list[str], num_samples: int) -> list[tuple[str, int]]:
    """Every (candidate, sample) pair once, sample-major: each candidate's ``#0`` comes first."""
    return [(key, n) for n in range(num_samples) for key in keys]


class _DefineByRun:
    """Optuna define-by-run space: the declared hyper-parameters only; the candidate and sample
    are constants given by the trial's number in the study (Optuna numbers trials 0, 1, ...,
    the enqueued centre points first), so the trials cover the grid of candidates x samples. A
    class, not a closure, so Tune can pickle the searcher for ``--resume``."""

    def __init__(self, slots: list[tuple[str, int]], hparams: dict[str, dict[str, Any]]) -> None:
        self.slots = slots
        self.hparams = hparams

    def __call__(self, trial: Any) -> dict[str, Any]:
        for name, dist in self.hparams.items():
            kind = dist["type"]
            if kind == "choice":
                trial.suggest_categorical(name, list(dist["values"]))
            elif kind == "int":
                trial.suggest_int(name, int(dist["low"]), int(dist["high"]))
            else:
                trial.suggest_float(name, dist["low"], dist["high"], log=kind == "loguniform")
        key, sample = self.slots[trial.number % len(self.slots)]
        return {"candidate": key, "sample": sample}


def _optuna(request: StageRequest) -> Any:
    from ray.tune.search.optuna import OptunaSearch

    slots = grid_slots(list(request.candidates), request.num_samples)
    space = _DefineByRun(slots, request.hparams)
    # Sample #0 of every candidate is trained at the centre of each distribution.
    centre = {name: _centre(dist) for name, dist in request.hparams.items()}
    points = [dict(centre) for _ in request.candidates]
    return OptunaSearch(
        space=space, metric="dice", mode="max", seed=request.seed, points_to_evaluate=points
    )


def _centre(dist: dict[str, Any]) -> Any:
    kind = dist["type"]
    if kind == "choice":
        return dist["values"][0]
    if kind == "int":
        return int(round((dist["low"] + dist["high"]) / 2))
    if kind == "loguniform":
        return float(math.sqrt(dist["low"] * dist["high"]))
    return float((dist["low"] + dist["high"]) / 2)


def _trainable(request: StageRequest) -> Any:
    spec = dict(request.spec, cpus_per_trial=request.cpus_per_trial)
    from raynas.tune.callbacks import MlflowTrialCallback

    for cb in request.callbacks:  # where the trial logs its system metrics (its run's store)
        if isinstance(cb, MlflowTrialCallback):
            spec["tracking"] = {"target": cb.target, "experiment_id": cb.experiment_id,
                                "parent_run_id": cb.parent_run_id, "stage": cb.stage}  # fmt: skip
    fn = tune.with_parameters(stage_trainable, spec=spec, candidates=request.candidates)
    resources: dict[str, float] = {"cpu": request.cpus_per_trial}
    if request.gpus_per_trial > 0:
        resources["gpu"] = request.gpus_per_trial
    return tune.with_resources(fn, resources)


def _tuner(request: StageRequest, trainable: Any) -> Tuner:
    scheduler = None
    if request.asha is not None:
        scheduler = ASHAScheduler(
            time_attr="training_iteration",
            max_t=request.epochs,
            grace_period=min(request.asha["grace_period"], request.epochs),
            reduction_factor=request.asha["reduction_factor"],
        )
    if request.hparams:
        search_alg = _optuna(request)
        param_space: dict[str, Any] = {}
        num_samples = len(request.candidates) * request.num_samples
    else:
        search_alg = None
        param_space = {
            "candidate": tune.grid_search(list(request.candidates)),
            "sample": tune.grid_search(list(range(request.num_samples))),
        }
        num_samples = 1
    return Tuner(
        trainable,
        param_space=param_space,
        tune_config=TuneConfig(
            metric=request.metric,
            mode="max",
            scheduler=scheduler,
            search_alg=search_alg,
            num_samples=num_samples,
            max_concurrent_trials=request.max_concurrent,
            reuse_actors=request.reuse_actors,
        ),
        run_config=RunConfig(
            name=request.stage,
            storage_path=str(request.storage_path),
            failure_config=FailureConfig(max_failures=request.max_failures),
            checkpoint_config=CheckpointConfig(num_to_keep=2),
            # Tune's per-trial result.json / progress.csv (what ExperimentAnalysis and
            # ResultGrid read); the automatic loggers are off so no TensorBoardX logger warns
            callbacks=[
                *request.callbacks,
                CSVLoggerCallback(),
                JsonLoggerCallback(),
                SigningCallback(),
            ],
            verbose=0,
        ),
    )


def _record(result: Any, epochs: int) -> TrialRecord:
    metrics = dict(result.metrics or {})
    iterations = int(metrics.get("training_iteration", 0))
    error = None
    if result.error is not None:
        status, error = "failed", str(result.error).strip().splitlines()[-1][:500]
    elif metrics.get("failure"):
        status, error = "failed", str(metrics["failure"])
    elif iterations < epochs:
        status = "stopped"
    else:
        status = "done"
    best = float(metrics.get("best_dice", metrics.get("dice", 0.0)) or 0.0)
    trial_id = metrics.get("trial_id") or Path(result.path).name
    return TrialRecord(
        trial_id=str(trial_id),
        candidate=str(result.config.get("candidate", metrics.get("candidate", ""))),
        status=status,
        iterations=iterations,
        best_dice=best if status != "failed" or iterations else 0.0,
        last=metrics,
        checkpoint=result.checkpoint.path if result.checkpoint is not None else None,
        error=error,
        config=dict(result.config),
        sample=int(result.config.get("sample", metrics.get("sample", 0)) or 0),
    )


def _tune_stopper() -> Any:
    """A stop hook for the interrupt guard: Tune's ``fit()`` installs a SIGUSR1 handler that
    ends the run after a last save of the experiment state (the same as its own Ctrl-C
    handler, which raynas turns off); the hook calls it, once ``fit()`` has installed it."""
    before = signal.getsignal(signal.SIGUSR1)

    def stop() -> bool:
        handler = signal.getsignal(signal.SIGUSR1)
        if handler is before or not callable(handler):
            return False  # fit() has not reached its loop yet: raise where we are
        # Tune's "Stop signal received" / "Experiment has been interrupted ... Tuner.restore"
        # warnings: raynas prints the one line that says how to continue (reset after fit)
        logging.getLogger("ray.tune").setLevel(logging.CRITICAL)
        handler(signal.SIGUSR1, None)
        return True

    return stop


def run_stage(request: StageRequest) -> list[TrialRecord]:
    """Runs (or, with ``resume``, restores and finishes) one stage; one record per trial.

    Raises :class:`raynas.interrupts.SignalReceived` when a signal stopped the stage (Tune has
    then saved its state, and the stage folder is signed for ``--resume``). The stage's
    force-exit cleanup (signing what Tune staged) is registered for the stage only, and a
    forced exit waits for it to finish."""
    keep_secrets_from_trials()
    trainable = _trainable(request)
    folder = request.storage_path / request.stage
    if request.resume and Tuner.can_restore(str(folder)):
        # checks, then replaces each file by a private copy of the bytes it checked: what
        # Tuner.restore unpickles below is what was verified
        verify_stage(folder, request.seal)
        logger.info("%s stage: restoring %s", request.stage, folder)
        tuner = Tuner.restore(
            str(folder), trainable=trainable, resume_unfinished=True, resume_errored=True
        )
    else:
        tuner = _tuner(request, trainable)
    sign_tuner(folder, request.seal)  # written just now
    # a command without a guard of its own (retrain, baseline) gets one for the stage
    own = InterruptGuard() if active_guard() is None else contextlib.nullcontext()
    tune_log = logging.getLogger("ray.tune")
    level = tune_log.level
    try:
        with own, signing(folder, request.seal) as active:
            guard = active_guard()
            assert guard is not None
            cleanup = guard.on_force_exit(
                lambda: sign_staged(active), name=f"sign {request.stage}", finish=True
            )
            with cleanup, guard.stopping(_tune_stopper()):
                grid = tuner.fit()
            guard.check()
    finally:
        tune_log.setLevel(level)
    return [_record(result, request.epochs) for result in grid]
