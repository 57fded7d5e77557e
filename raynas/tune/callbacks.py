"""Tune callbacks: MLflow tracking of every trial (nested under the search's parent run) and the
live progress view. Both run wherever Tune's driver loop runs (on the cluster with Ray Client)."""

from __future__ import annotations

import logging
import sys
from typing import Any

from ray.tune import Callback

from raynas.tracking import (
    TrackingTarget,
    create_trial_run,
    find_trial_run,
    finish_run,
    last_logged_step,
    log_metrics,
    log_text,
    set_tags,
)

__all__ = ["MlflowTrialCallback", "ProgressCallback"]

logger = logging.getLogger(__name__)
_METRIC_KEYS = ("dice", "best_dice", "loss", "params", "epoch", "evaluated", "train_steps", "evals")
_TEXT_KEYS = ("topology", "choice_json", "arch_json", "failure", "candidate")


class MlflowTrialCallback(Callback):
    """One nested MLflow run per trial: params, per-epoch metrics, stage tag, architecture JSON.

    A resumed stage finds the runs it already made (by trial id) and never duplicates them.
    """

    def __init__(
        self,
        target: TrackingTarget,
        *,
        experiment_id: str,
        parent_run_id: str,
        stage: str,
        labels: dict[str, str],
        kinds: dict[str, str] | None = None,
    ) -> None:
        self.target = target
        self.experiment_id = experiment_id
        self.parent_run_id = parent_run_id
        self.stage = stage
        self.labels = labels
        self.kinds = kinds or {}
        self.runs: dict[str, str] = {}
        self.logged_until: dict[str, int] = {}  # trial id -> last step already in MLflow
        self.last: dict[str, dict[str, Any]] = {}

    def _run_for(self, trial: Any) -> str:
        if trial.trial_id in self.runs:
            return self.runs[trial.trial_id]
        run_id = find_trial_run(
            self.target, self.experiment_id, self.parent_run_id, trial.trial_id, stage=self.stage
        )
        if run_id is not None:  # a resumed stage: this trial's run exists already
            self.logged_until[trial.trial_id] = last_logged_step(self.target, run_id)
        else:
            key = str(trial.config.get("candidate"))
            params = {k: v for k, v in trial.config.items() if k != "candidate"}
            params["candidate"] = self.labels.get(key, key)
            run_id = create_trial_run(
                self.target,
                self.experiment_id,
                parent_run_id=self.parent_run_id,
                run_name=f"{self.stage}-{self.labels.get(key, key)}"[:200],
                stage=self.stage,
                trial_id=trial.trial_id,
                params=params,
                tags={"candidate": key[:500], "kind": self.kinds.get(key, "searched")},
            )
        self.runs[trial.trial_id] = run_id
        return run_id

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._run_for(trial)

    def on_trial_result(
        self, iteration: int, trials: list, trial: Any, result: dict, **info: Any
    ) -> None:
        run_id = self._run_for(trial)
        numeric = {}
        for k, v in result.items():
            wanted = k in _METRIC_KEYS or k.startswith(("val_dice_class_", "time_"))
            if wanted and isinstance(v, int | float) and not isinstance(v, bool):
                numeric[k] = float(v)
        step = int(result.get("training_iteration", 0))
        if step > self.logged_until.get(trial.trial_id, -1):
            log_metrics(self.target, run_id, numeric, step=step)
        self.last[trial.trial_id] = {k: result[k] for k in _TEXT_KEYS if k in result}

    def _close(self, trial: Any, status: str, reason: str | None = None) -> None:
        run_id = self._run_for(trial)
        last = self.last.get(trial.trial_id, {})
        if last.get("arch_json"):
            log_text(self.target, run_id, last["arch_json"], "architecture.json")
        tags: dict[str, Any] = {}
        if last.get("topology"):
            tags["topology"] = last["topology"]
        if last.get("failure"):
            status, reason = "FAILED", last["failure"]
        if reason:
            tags["failure"] = reason[:4000]
        if tags:
            set_tags(self.target, run_id, tags)
        finish_run(self.target, run_id, status)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._close(trial, "FINISHED")

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        error = getattr(trial, "error_message", None) or "trial raised an error"
        self._close(trial, "FAILED", str(error).strip().splitlines()[-1])


class ProgressCallback(Callback):
    """A live view (rich) of the stage: trials, epochs, Dice, best Dice and parameters."""

    def __init__(self, *, stage: str, epochs: int, labels: dict[str, str]) -> None:
        self.stage = stage
        self.epochs = epochs
        self.labels = labels
        self.rows: dict[str, dict[str, Any]] = {}
        self._live: Any = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_live"] = None
        return state

    def _table(self) -> Any:
        from rich.table import Table

        table = Table(title=f"raynas · {self.stage} stage", expand=False)
        for col in ("trial", "candidate", "status", "epoch", "dice", "best", "params"):
            table.add_column(col)
        for tid, row in sorted(self.rows.items()):
            table.add_row(
                tid,
                row.get("label", "")[:40],
                row.get("status", ""),
                f"{row.get('epoch', 0)}/{self.epochs}",
                f"{row['dice']:.3f}" if "dice" in row else "",
                f"{row['best']:.3f}" if "best" in row else "",
                f"{int(row['params']):,}" if "params" in row else "",
            )
        return table

    def _refresh(self) -> None:
        if self._live is None and sys.stderr.isatty():
            from rich.console import Console
            from rich.live import Live

            self._live = Live(self._table(), console=Console(stderr=True), refresh_per_second=2)
            self._live.start()
        if self._live is not None:
            self._live.update(self._table())

    def _row(self, trial: Any) -> dict[str, Any]:
        key = str(trial.config.get("candidate"))
        return self.rows.setdefault(trial.trial_id, {"label": self.labels.get(key, key)})

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._row(trial)["status"] = "running"
        self._refresh()

    def on_trial_result(
        self, iteration: int, trials: list, trial: Any, result: dict, **info: Any
    ) -> None:
        row = self._row(trial)
        row.update(
            status="running",
            epoch=result.get("epoch", result.get("training_iteration", 0)),
            dice=float(result.get("dice", 0.0)),
            best=float(result.get("best_dice", 0.0)),
        )
        if "params" in result:
            row["params"] = result["params"]
        if self._live is None and not sys.stderr.isatty():
            logger.info(
                "[%s] %s epoch %s/%s dice %.3f best %.3f",
                self.stage,
                row["label"],
                row["epoch"],
                self.epochs,
                row["dice"],
                row["best"],
            )
        self._refresh()

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        row = self._row(trial)
        row["status"] = "done" if row.get("epoch", 0) >= self.epochs else "stopped (ASHA)"
        self._refresh()

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._row(trial)["status"] = "error"
        self._refresh()

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        if self._live is not None:
            self._live.update(self._table())
            self._live.stop()
            self._live = None
