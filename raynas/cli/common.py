"""Text the run commands share."""

from __future__ import annotations

__all__ = ["where_in_mlflow"]


def where_in_mlflow(tracking_uri: str, experiment: str, parent_run_id: str) -> str:
    """The line that tells where the runs are: the server's address for an ``http(s)://``
    store, else the ``mlflow ui`` command that opens the local store."""
    run = f"(experiment '{experiment}', parent run {parent_run_id})"
    if tracking_uri.startswith(("http://", "https://")):
        return f"MLflow:   open {tracking_uri}  {run}"
    return f"MLflow:   mlflow ui --backend-store-uri {tracking_uri}  {run}"
