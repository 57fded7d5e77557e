"""Text the run commands share."""

from __future__ import annotations

__all__ = ["DATASET_HELP", "DATA_ROOT_HELP", "where_in_mlflow"]

DATASET_HELP = (
    "msd_task01..msd_task10 | synthetic(2d) | PATH: your own MSD or nnU-Net v2 folder, or a MONAI "
    "datalist .json (spacing, patches and normalisation planned from the data)"
)
DATA_ROOT_HELP = "The MSD task folder of an msd_task name; the base folder of a datalist .json."


def where_in_mlflow(tracking_uri: str, experiment: str, parent_run_id: str | None) -> str:
    """Where the runs are: the ``mlflow ui`` command for a local store (the server's address
    otherwise) and the one URL that opens this search's networks side by side in the UI's
    chart view (see :mod:`raynas.tracking.links`)."""
    from raynas.tracking.links import comparison_lines

    return "\n".join(comparison_lines(tracking_uri, experiment, parent_run_id))
