"""Tune callbacks: MLflow tracking of every trial (nested under the search's parent run) and the
live progress view. Both run wherever Tune's driver loop runs (on the cluster with Ray Client)."""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ray.tune import Callback

from raynas.tracking import (
    TrackingTarget,
    create_trial_run,
    find_trial_run,
    finish_run,
    last_logged_step,
    log_artifact_file,
    log_metrics,
    log_text,
    reopen_run,
    set_tags,
)
from raynas.tracking.names import (
    SUPERNET_STAGES,
    final_metrics,
    is_constant,
    mlflow_metrics,
    network_name,
    short_run_name,
)
from raynas.tracking.notes import architecture_note
from raynas.tune.trials import trial_name

__all__ = ["MlflowTrialCallback", "ProgressCallback"]

logger = logging.getLogger(__name__)
_TEXT_KEYS = ("topology", "choice_json", "arch_json", "failure", "candidate")


class MlflowTrialCallback(Callback):
    """One nested MLflow run per trial: params, per-epoch metrics, stage tag, architecture JSON.

    Run and metric names come from :mod:`raynas.tracking.names`: short unique run names (a
    retrain run is named by its network's one name, ``searched0-0``, ``unet-0``, its size in the
    ``params`` metric beside it; ``coarse cluster3``), plain metric names on retrain runs and
    stage-prefixed ones on supernet runs (``coarse/dice``); ``epoch`` is the step, not a metric,
    and ``params`` is logged when it changes. A trial that ends logs its architecture
    (``architecture.json`` + ``architecture.png``) and, for a retrain run, ``val_dice``,
    ``params_M`` and a description (``mlflow.note.content``) summarising the network.

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
        architectures: dict[str, str] | None = None,
    ) -> None:
        self.target = target
        self.experiment_id = experiment_id
        self.parent_run_id = parent_run_id
        self.stage = stage
        self.labels = labels
        self.kinds = kinds or {}
        self.architectures = architectures or {}
        self.runs: dict[str, str] = {}
        self.names: dict[str, str] = {}  # trial id -> run name
        self.logged_until: dict[str, int] = {}  # trial id -> last step already in MLflow
        self.constants: dict[str, dict[str, float]] = {}  # trial id -> constants logged
        self.last: dict[str, dict[str, Any]] = {}

    def _step_key(self) -> str:
        return f"{self.stage}/dice" if self.stage in SUPERNET_STAGES else "dice"

    def _unique(self, name: str) -> str:
        taken = set(self.names.values())
        unique, n = name, 1
        while unique in taken:
            n += 1
            unique = f"{name} [{n}]"
        return unique

    def _run_for(self, trial: Any) -> str:
        if trial.trial_id in self.runs:
            return self.runs[trial.trial_id]
        key = str(trial.config.get("candidate"))
        kind = self.kinds.get(key, "searched")
        # a retrain trial is named <candidate>#<sample>, like its weights and frontier row
        name = trial_name(key, trial.config.get("sample", 0))
        short = short_run_name(self.stage, name if self.stage == "retrain" else key, kind=kind)
        self.names[trial.trial_id] = self._unique(short)
        run_id = find_trial_run(
            self.target, self.experiment_id, self.parent_run_id, trial.trial_id, stage=self.stage
        )
        if run_id is not None:  # a resumed stage: this trial's run exists already
            self.logged_until[trial.trial_id] = last_logged_step(
                self.target, run_id, key=self._step_key()
            )
            reopen_run(self.target, run_id)  # KILLED by an interrupt: running again
        else:
            params = {k: v for k, v in trial.config.items() if k != "candidate"}
            params["candidate"] = self.labels.get(key, key)
            run_id = create_trial_run(
                self.target,
                self.experiment_id,
                parent_run_id=self.parent_run_id,
                run_name=self.names[trial.trial_id],
                stage=self.stage,
                trial_id=trial.trial_id,
                params=params,
                tags={
                    "candidate": key[:500],
                    "trial": name[:500],
                    "label": self.labels.get(key, key)[:500],
                    "kind": kind,
                },
            )
        self.runs[trial.trial_id] = run_id
        return run_id

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._run_for(trial)

    def on_trial_result(
        self, iteration: int, trials: list, trial: Any, result: dict, **info: Any
    ) -> None:
        run_id = self._run_for(trial)
        tid = trial.trial_id
        step = int(result.get("training_iteration", 0))
        if step > self.logged_until.get(tid, -1):
            logged = self.constants.setdefault(tid, {})
            metrics = {}
            for name, value in mlflow_metrics(self.stage, result).items():
                if is_constant(name):
                    if logged.get(name) == value:
                        continue
                    logged[name] = value
                metrics[name] = value
            log_metrics(self.target, run_id, metrics, step=step)
        self.last[tid] = {k: v for k, v in result.items() if k in _TEXT_KEYS or _numeric(v)}

    def _architecture(self, trial: Any, run_id: str, arch_json: str) -> None:
        from raynas.nets.drawing import save_architecture_png

        log_text(self.target, run_id, arch_json, "architecture.json")
        try:
            with tempfile.TemporaryDirectory(prefix="raynas-arch-") as tmp:
                name = self.names.get(trial.trial_id)
                png = save_architecture_png(arch_json, Path(tmp) / "architecture.png", name=name)
                log_artifact_file(self.target, run_id, png)
        except Exception as exc:  # noqa: BLE001 - a picture must never fail a trial's run
            logger.warning("%s: no architecture picture (%s)", run_id, exc)

    def _close(self, trial: Any, status: str, reason: str | None = None) -> None:
        run_id = self._run_for(trial)
        last = self.last.get(trial.trial_id, {})
        key = str(trial.config.get("candidate"))
        arch_json = last.get("arch_json") or self.architectures.get(key)
        if arch_json:
            self._architecture(trial, run_id, arch_json)
        tags: dict[str, Any] = {}
        if last.get("topology"):
            tags["topology"] = last["topology"]
        if last.get("failure"):
            status, reason = "FAILED", last["failure"]
        if reason:
            tags["failure"] = reason[:4000]
        final = final_metrics(self.stage, last)
        if final:
            log_metrics(self.target, run_id, final, step=int(last.get("epoch", 0) or 0))
        if self.stage not in SUPERNET_STAGES and arch_json:
            tags["mlflow.note.content"] = architecture_note(
                arch_json,
                name=self.names.get(trial.trial_id, key),
                metrics={**last, **final},
                kind=self.kinds.get(key, "searched"),
            )
        if tags:
            set_tags(self.target, run_id, tags)
        finish_run(self.target, run_id, status)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._close(trial, "FINISHED")

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        error = getattr(trial, "error_message", None) or "trial raised an error"
        self._close(trial, "FAILED", str(error).strip().splitlines()[-1])


def _numeric(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def progress_interval() -> float:
    """Seconds between progress lines when stderr is not a terminal (``RAYNAS_PROGRESS_EVERY_S``,
    default 30)."""
    try:
        return max(0.0, float(os.environ.get("RAYNAS_PROGRESS_EVERY_S", "30")))
    except ValueError:
        return 30.0


class ProgressCallback(Callback):
    """The stage's progress: trials, epochs, Dice, best Dice and parameters.

    On a terminal, a live view (rich) on stderr. Otherwise (output redirected to a file, a CI
    log, a Ray Job), one line on stdout at most every :func:`progress_interval` seconds and at
    the stage's end, e.g. ``[coarse 1m30s] 3/8 trials done, 2 running, 0 stopped; best val Dice
    0.412 (cluster3)``, so a long search is never silent.
    """

    def __init__(
        self, *, stage: str, epochs: int, labels: dict[str, str],
        kinds: dict[str, str] | None = None,
    ) -> None:  # fmt: skip
        self.stage = stage
        self.epochs = epochs
        self.labels = labels
        self.kinds = kinds or {}
        self.rows: dict[str, dict[str, Any]] = {}
        self._live: Any = None
        self._started = time.monotonic()
        self._last_line = self._started

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_live"] = None
        return state

    def summary_line(self) -> str:
        """One line: elapsed time, trials by state, the best validation Dice so far."""
        elapsed = int(time.monotonic() - self._started)
        counts = {"done": 0, "running": 0, "stopped (ASHA)": 0, "error": 0}
        for row in self.rows.values():
            counts[row.get("status", "running")] = counts.get(row.get("status", "running"), 0) + 1
        best = max(self.rows.values(), key=lambda r: r.get("best", -1.0), default=None)
        line = (f"[{self.stage} {elapsed // 60}m{elapsed % 60:02d}s] {counts['done']}/"
                f"{len(self.rows)} trials done, {counts['running']} running, "
                f"{counts['stopped (ASHA)']} stopped")
        if counts["error"]:
            line += f", {counts['error']} failed"
        if best is not None and "best" in best:
            line += f"; best val Dice {best['best']:.3f} ({best['label']}, epoch " \
                    f"{best.get('epoch', 0)}/{self.epochs})"
        return line

    def _print_line(self, *, force: bool = False) -> None:
        if self._live is not None or sys.stderr.isatty():
            return
        now = time.monotonic()
        if force or now - self._last_line >= progress_interval():
            self._last_line = now
            print(self.summary_line(), file=sys.stdout, flush=True)

    def on_step(self, iteration: int, trials: list, **info: Any) -> None:
        self._print_line()

    def _table(self) -> Any:
        from rich.table import Table

        table = Table(title=f"raynas · {self.stage} stage", expand=False)
        for col in ("trial", "candidate", "status", "epoch", "dice", "best", "params"):
            table.add_column(col, overflow="fold")  # folded where narrow, never cut
        for tid, row in sorted(self.rows.items()):
            table.add_row(
                tid,
                row.get("label", ""),
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
        self._print_line()

    def _row(self, trial: Any) -> dict[str, Any]:
        key = str(trial.config.get("candidate"))
        label = self.labels.get(key, key)
        if self.stage == "retrain":  # the network's one name, as in MLflow and the frontier
            trial_key = trial_name(label, trial.config.get("sample", 0))
            label = network_name(trial_key, self.kinds.get(key, "searched"))
        return self.rows.setdefault(trial.trial_id, {"label": label})

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
        if "precision" in result:  # a trial's first epoch
            logger.info("[%s] %s runs on %s", self.stage, row["label"], result["precision"])
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
        self._print_line(force=True)
        if self._live is not None:
            self._live.update(self._table())
            self._live.stop()
            self._live = None
