"""Text the run commands share."""

from __future__ import annotations

__all__ = ["where_in_mlflow"]


def where_in_mlflow(tracking_uri: str, experiment: str, parent_run_id: str | None) -> str:
    """Where the runs are: the ``mlflow ui`` command for a local store (the server's address
    otherwise) and the one URL that opens this search's networks side by side in the UI's
    chart view (see :mod:`raynas.tracking.links`)."""
    from raynas.tracking.links import comparison_lines

    return "\n".join(comparison_lines(tracking_uri, experiment, parent_run_id))
