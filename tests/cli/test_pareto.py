"""``raynas pareto`` end to end on a real SQLite MLflow store filled through raynas.tracking."""

from __future__ import annotations

import csv
import io
import logging
import sys
from pathlib import Path

import pytest

from raynas.cli.main import main
from raynas.tracking import (
    create_trial_run,
    ensure_experiment,
    finish_run,
    log_metrics,
    resolve_tracking_uri,
    start_parent_run,
)

# name, kind, test Dice (validation Dice: 0.05 more), params
RETRAINED = [("c2f-a", "searched", 0.61, 12_000), ("c2f-b", "searched", 0.58, 40_000)]
RETRAINED += [("unet", "baseline", 0.70, 300_000)]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store in a folder's default place (``./mlflow.db``) with one search in ``cli-exp``."""
    folder = tmp_path_factory.mktemp("cli-store")
    target = resolve_tracking_uri(None, workdir=folder)
    exp = ensure_experiment(target, "cli-exp")
    parent = start_parent_run(target, exp, run_name="search", params={}, tags={"space": "c2f"})
    for name, kind, dice, params in RETRAINED:
        run_id = create_trial_run(
            target,
            exp,
            parent_run_id=parent,
            run_name=name,
            stage="retrain",
            trial_id=name,
            params={},
            tags={"kind": kind},
        )
        val = dice + 0.05
        metrics = {"dice": val, "params": params, "best_dice": val, "test_dice": dice}
        log_metrics(target, run_id, metrics, 0)
        finish_run(target, run_id)
    ensure_experiment(target, "empty-exp")
    return folder


def test_pareto_prints_table_and_writes_files(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    code = main(
        ["pareto", "--experiment", "cli-exp", "--tracking-uri", str(store), "--out", "front"]
    )
    out = capsys.readouterr().out
    assert code == 0
    for name in ("c2f-a", "c2f-b", "unet"):
        assert name in out
    assert "2 of 3 retrained networks on the frontier" in out
    for ext in ("csv", "json", "png"):
        path = tmp_path / "front" / f"pareto.{ext}"
        assert path.is_file() and str(path) in out
    csv_text = (tmp_path / "front" / "pareto.csv").read_text()
    assert "c2f-b,searched,retrain,0.58,0.63,40000," in csv_text
    rows = list(csv.DictReader(io.StringIO(csv_text)))
    assert [r["on_front"] for r in rows].count("True") == 2
    assert all(r["learned"] == "True" for r in rows)


def test_pareto_default_store_in_cwd(
    store: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.chdir(store)
    assert main(["pareto", "--experiment", "cli-exp"]) == 0
    assert (store / "pareto.png").is_file()
    assert "unet" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--experiment", "nope"], "error: --experiment nope: no such experiment"),
        (["--experiment", "empty-exp"], "error: --experiment empty-exp: no retrain runs"),
    ],
)
def test_pareto_user_errors(
    store: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
    args: list[str],
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["pareto", "--tracking-uri", str(store), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(message) and "\n" not in err


def test_pareto_no_store_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["pareto"]) == 2
    assert "no MLflow store at" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # nothing created


def test_pareto_unreachable_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    import socket

    monkeypatch.chdir(tmp_path)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert main(["pareto", "--tracking-uri", f"http://127.0.0.1:{port}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"error: --tracking-uri http://127.0.0.1:{port}: MLflow server not reachable "
        "(connection refused)"
    )


def test_warnings_reach_the_console(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """A raynas warning (here: a ``file://`` store redirected to SQLite) is printed once, as a
    ``warning:`` line on stderr, even where a library put a handler on the root logger."""
    monkeypatch.chdir(tmp_path)
    root_handler = logging.StreamHandler(sys.stderr)  # what logging.basicConfig() installs
    logging.getLogger().addHandler(root_handler)
    try:
        code = main(["pareto", "--experiment", "cli-exp", "--tracking-uri", f"file://{store}"])
    finally:
        logging.getLogger().removeHandler(root_handler)
    captured = capsys.readouterr()
    assert code == 0
    warnings = [line for line in captured.err.splitlines() if "file store is disabled" in line]
    assert len(warnings) == 1 and warnings[0].startswith("warning: "), captured.err
    assert "2 of 3 retrained networks on the frontier" in captured.out
