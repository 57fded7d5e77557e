"""A run's records outside its trials: ``search.log`` (the run log, with Ray's and MLflow's own
lines), and the MLflow parent run: opened with the preset as params and the run's tags, the
dataset logged as its input, the split beside it. MLflow is reached only through
:mod:`raynas.tracking`."""

from __future__ import annotations

import logging
from typing import Any

from raynas.pipeline.outputs import SearchFolder

__all__ = ["RunLog", "log_dataset", "log_to_file", "open_parent_run"]

logger = logging.getLogger("raynas.search")


class RunLog(logging.FileHandler):
    """``search.log``: a line that cannot be written (a full disk) is dropped, not printed on
    stderr as logging's own traceback; the run's error says what failed."""

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's name
        return


def log_to_file(folder: SearchFolder) -> logging.Handler:
    """Sends the ``raynas`` loggers (and Ray's and MLflow's) to ``<folder>/search.log``; the
    caller removes the handler when the run ends (:meth:`SearchSetup.close`)."""
    handler = RunLog(folder.root / "search.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("raynas")
    root.setLevel(logging.INFO)
    root.addHandler(handler)
    from raynas.logs import capture_library_logs

    capture_library_logs(handler)  # Ray's and MLflow's own log lines go to search.log too
    return handler


def log_dataset(target: Any, run_id: str, dataset: Any, preset: Any) -> None:
    """The dataset as an MLflow input of the parent run: name, case digest, fold, test split."""
    from raynas.tracking.inputs import log_dataset_input

    data = preset.data
    split = {"fold": data.fold, "folds": data.folds}
    for key in ("test_fraction", "test_cases"):  # the held-out test split, where the preset has it
        if getattr(data, key, None) is not None:
            split[key] = getattr(data, key)
    info = dataset.info
    try:
        log_dataset_input(
            target, run_id, name=info.name, case_names=[c.name for c in dataset.cases],
            source=f"synthetic:{info.name}" if info.synthetic else str(dataset.root),
            split=split, seed=preset.seed if info.synthetic else None,
        )  # fmt: skip
    except Exception as exc:  # noqa: BLE001 - a missing input must never stop a run
        logger.warning("could not log the dataset as an MLflow input (%s)", exc)


def open_parent_run(
    target: Any,
    experiment_id: str,
    folder: SearchFolder,
    *,
    preset: Any,
    dataset: Any,
    space_ref: str,
    tags: dict[str, str],
    kind: str,
    split: dict[str, Any],
) -> str:
    """The run's MLflow parent run: the one ``state.json`` records (a resumed run), else a new
    one (named after the folder, the preset as params, ``tags``, the dataset input and the
    split), recorded in ``state.json``. Returns its id."""
    from raynas.pipeline.split import log_split
    from raynas.tracking import run_tags, start_parent_run

    parent = folder.state.get("parent_run_id")
    if parent is not None:
        return str(parent)
    extra = {k: v for k, v in tags.items() if k != "space"}
    parent = start_parent_run(
        target,
        experiment_id,
        run_name=folder.root.name,
        params=preset.model_dump(mode="json"),
        tags=run_tags(
            space=tags["space"], dataset=dataset.info.name, seed=preset.seed, extra=extra
        ),
        kind=kind,
    )
    log_dataset(target, parent, dataset, preset)
    folder.state.update(
        parent_run_id=parent, space=space_ref, dataset=dataset.info.name, seed=preset.seed
    )
    folder.save_state()
    log_split(target, parent, split)
    return parent
