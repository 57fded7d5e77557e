"""The printed link, opened in a real browser: headless Chromium against ``mlflow server`` on
127.0.0.1, with a store written the way a finished search writes it (the real trial callback,
frontier, logged-model and link code; no training: the suite has no session-wide finished search
to reuse). Issue 25: one name per network in the terminal table, the runs, the logged model; the
descriptions rendered (no raw ``|---|`` or ``###``); the model's metrics led by Dice; the
architecture picture with its legend, at most 1200 px wide.
With Playwright installed (the ``dev`` extra), Playwright drives the system Chromium (its own
browser download is not needed) and checks what is visible; without it, the Chromium CLI's DOM
dump and screenshot are checked. Skipped where no Chromium is installed
(``apt-get install -y chromium``). Screenshots go to ``$RAYNAS_TEST_ARTIFACTS`` (default: the
test's temporary folder)."""

from __future__ import annotations

import os
import shutil
import subprocess
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from procs import mlflow_server

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
NETWORKS = [  # candidate key, kind, Dice per epoch, parameters
    ("searched0-0-1-1-0", "searched", [0.1, 0.25, 0.32], 13_000),
    ("searched1-0-1-2-1-0", "searched", [0.1, 0.2, 0.28], 40_000),
    ("baseline-unet", "baseline", [0.2, 0.35, 0.43], 1_411_787),
]


@dataclass
class _Trial:
    """What the Tune callback reads of a trial."""

    trial_id: str
    config: dict[str, Any] = field(default_factory=dict)


def _finished_search(uri: str) -> tuple[Any, str, str]:
    from raynas.tracking import (
        ensure_experiment,
        finish_run,
        log_frontier,
        points_from_runs,
        resolve_tracking_uri,
        start_parent_run,
    )
    from raynas.tracking.runs import client_for
    from raynas.tune.callbacks import MlflowTrialCallback

    target = resolve_tracking_uri(uri, workdir=Path.cwd())
    exp = ensure_experiment(target, "raynas")
    parent = start_parent_run(target, exp, run_name="c2f_synthetic_s0", params={},
                              tags={"space": "c2f", "dataset": "synthetic"})  # fmt: skip
    from raynas.nets.baselines import unet_architecture

    arch = unet_architecture(spatial_dims=3, in_channels=1, out_channels=2, width=8).to_json()
    callback = MlflowTrialCallback(
        target, experiment_id=exp, parent_run_id=parent, stage="retrain",
        labels={k: k for k, *_ in NETWORKS}, kinds={k: kind for k, kind, *_ in NETWORKS},
        architectures={k: arch for k, *_ in NETWORKS},
    )  # fmt: skip
    for i, (key, _, dice, params) in enumerate(NETWORKS):
        trial = _Trial(f"t{i}", {"candidate": key})
        callback.on_trial_start(0, [], trial)
        for epoch, d in enumerate(dice, start=1):
            result = {"dice": d, "best_dice": max(dice[:epoch]), "loss": 1.0 / epoch,
                      "params": params, "epoch": epoch, "training_iteration": epoch,
                      "test_dice": d - 0.02}  # fmt: skip
            callback.on_trial_result(0, [], trial, result)
        callback.on_trial_complete(0, [], trial)
    client = client_for(target)
    runs = client.search_runs([exp], filter_string="tags.stage = 'retrain'")
    log_frontier(target, parent, points_from_runs(target, runs))
    finish_run(target, parent)
    return target, exp, parent


def _log_baseline_model(target: Any, exp: str, tmp: Path) -> tuple[str, str, Any]:
    """The U-Net's best weights logged as finish_search logs them (log_trial_model), after its
    trial's system metrics (step 0, as the monitor logs them); its run id, model id, points."""
    from types import SimpleNamespace

    import torch

    from raynas.nets import build_network
    from raynas.nets.baselines import unet_architecture
    from raynas.pipeline.finish import log_trial_model
    from raynas.tracking import points_from_runs
    from raynas.tracking.runs import client_for

    client = client_for(target)
    runs = client.search_runs([exp], filter_string="tags.stage = 'retrain'")
    (run,) = [r for r in runs if r.data.tags["kind"] == "baseline"]
    for key in ("system/cpu_utilization_percentage", "system/system_memory_usage_megabytes"):
        client.log_metric(run.info.run_id, key, 10.0, step=0)
    arch = unet_architecture(spatial_dims=3, in_channels=1, out_channels=2, width=8).to_json()
    weights = tmp / "unet.pt"
    torch.save(build_network(unet_architecture(spatial_dims=3, in_channels=1, out_channels=2,
                                               width=8)).state_dict(), weights)  # fmt: skip
    metrics = run.data.metrics
    figures = {k: metrics[k] for k in ("test_dice", "val_dice", "params")}
    uri = log_trial_model(SimpleNamespace(target=target), "baseline-unet#0", arch, weights,
                          run.info.run_id, figures, "baseline")  # fmt: skip
    assert uri is not None
    return run.info.run_id, uri.removeprefix("models:/"), points_from_runs(target, runs)


def _chromium(url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--disable-background-networking", "--window-size=1600,1000",
         "--virtual-time-budget=60000", *args, url],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip


def _playwright() -> Any:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    return sync_playwright


def _urls(uri: str) -> tuple[Any, str, str, str]:
    from raynas.tracking.links import comparison_lines

    target, exp, parent = _finished_search(uri)
    (line,) = comparison_lines(uri, "raynas", parent)
    url = line.split("open ", 1)[1].split()[0]
    assert url.startswith(f"{uri}/#/experiments/{exp}/runs?")
    return target, exp, parent, url


RUN_NAMES = ("searched0-0", "searched1-0", "unet-0")  # one name per network: no size inside


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (apt-get install -y chromium)")
@pytest.mark.skipif(_playwright() is None, reason="no playwright (pip install playwright)")
def test_printed_link_in_playwright(tmp_path: Path) -> None:
    """What a user sees on the printed URL, in a browser driven by Playwright: the retrain runs by
    their short names, the saved scatters of test Dice against parameters, the parent's
    ``pareto.png`` on its artifacts page; then what issue 25 asked for (:func:`_check_issue25`)."""
    shots = Path(os.environ.get("RAYNAS_TEST_ARTIFACTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    with mlflow_server(tmp_path / "server") as uri, _playwright()() as p:
        _, exp, parent, url = _urls(uri)
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--disable-background-networking"],
        )  # fmt: skip
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.set_default_timeout(60_000)
            page.goto(url)
            try:
                for name in RUN_NAMES:  # visible text, not just somewhere in the DOM
                    page.get_by_text(name, exact=True).first.wait_for(state="visible")
                for title in ("Dice vs parameters (raynas)", "log10_params vs. val_dice",
                              "params vs. val_dice", "log10_params vs. test_dice"):  # fmt: skip
                    page.get_by_text(title, exact=True).first.wait_for(state="visible")
                tip = _scatter_tooltip(page)  # shows the run's description as raw text
                assert "validation Dice" in tip and "###" not in tip and "|" not in tip, tip
            finally:
                page.screenshot(path=str(shots / "playwright_compare.png"), full_page=True)
            # the machine-learning view's run page (without the query MLflow shows its GenAI one)
            ml = "workflowType=machine_learning"
            page.goto(f"{uri}/#/experiments/{exp}/runs/{parent}/artifacts?{ml}")
            try:
                page.get_by_text("pareto.png", exact=True).first.click()
                page.get_by_text("pareto.png").nth(1).wait_for(state="visible")  # the preview
                # the picture itself, fetched by the UI from the server and decoded (a blob: URL)
                page.wait_for_function(
                    "() => [...document.images].some(i => i.complete && i.naturalWidth > 400)"
                )
            finally:
                page.screenshot(path=str(shots / "playwright_pareto.png"), full_page=True)
            art = page.request.get(f"{uri}/get-artifact?path=pareto.png&run_uuid={parent}")
            assert art.ok and art.body()[:8] == b"\x89PNG\r\n\x1a\n"
            _check_issue25(page, uri, exp, parent, shots, tmp_path)
        finally:
            browser.close()
    assert (shots / "playwright_compare.png").stat().st_size > 10_000


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (apt-get install -y chromium)")
@pytest.mark.skipif(_playwright() is not None, reason="Playwright installed: its test runs")
def test_printed_link_shows_the_comparison(tmp_path: Path) -> None:
    from raynas.tracking.links import comparison_lines

    shots = Path(os.environ.get("RAYNAS_TEST_ARTIFACTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    with mlflow_server(tmp_path / "server") as uri:
        target, exp, parent = _finished_search(uri)
        (line,) = comparison_lines(uri, "raynas", parent)
        url = line.split("open ", 1)[1].split()[0]
        assert url.startswith(f"{uri}/#/experiments/{exp}/runs?")
        dom = _chromium(url, "--dump-dom").stdout
        (shots / "mlflow_compare.html").write_text(dom)
        shot = _chromium(url, f"--screenshot={shots / 'mlflow_compare.png'}")
        assert shot.returncode == 0 and (shots / "mlflow_compare.png").stat().st_size > 10_000
        # the retrain runs by their short names, in the chart view, with the saved scatter
        for name in RUN_NAMES:
            assert name in dom, name
        assert "Dice vs parameters (raynas)" in dom
        assert "log10_params vs. val_dice" in dom and "params vs. val_dice" in dom
        assert "log10_params vs. test_dice" in dom  # reported beside, never the order
        # the parent's pareto.png, served the way the UI fetches an artifact
        art = f"{uri}/get-artifact?path=pareto.png&run_uuid={parent}"
        with urllib.request.urlopen(art, timeout=30) as response:
            assert response.read(8) == b"\x89PNG\r\n\x1a\n"


def _scatter_tooltip(page: Any) -> str:
    """The text of the chart tooltip of the first scatter point that shows one (hovered)."""
    page.wait_for_timeout(3000)  # the charts draw their points after their titles
    points = page.locator(".scatterlayer .point")
    for i in range(min(points.count(), 8)):
        points.nth(i).hover(force=True)
        page.wait_for_timeout(1500)
        text = page.evaluate(
            "() => [...document.querySelectorAll('[role=tooltip], .hoverlayer, [class*=tooltip],"
            " [data-testid*=tooltip]')].map(e => e.innerText).join('\\n')"
        )
        if any(name in text for name in RUN_NAMES):
            return text
    raise AssertionError("no scatter point showed a tooltip with a run's name")


def _check_issue25(page: Any, uri: str, exp: str, parent: str, shots: Path, tmp: Path) -> None:
    """One name per network (terminal table, run, logged model); descriptions rendered, not raw;
    the logged model's metrics led by validation Dice, test Dice, params (no ``system/*``); the
    architecture picture with its legend, at most 1200 px wide and shown at 600 px or more."""
    import struct

    from rich.console import Console

    from raynas.nets.baselines import unet_architecture
    from raynas.nets.drawing import MAX_WIDTH_PX, architecture_figure
    from raynas.tracking import resolve_tracking_uri
    from raynas.tracking.pareto import frontier_table

    target = resolve_tracking_uri(uri, workdir=Path.cwd())
    run_id, model_id, points = _log_baseline_model(target, exp, tmp)
    console = Console(width=120, record=True)  # the terminal: the same names
    console.print(frontier_table(points))
    table = console.export_text()
    assert all(name in table for name in RUN_NAMES) and "#" not in table, table
    shot = "start.png"
    try:
        # the parent's description, rendered: a list of the networks, no raw table or heading
        shot = "playwright_description.png"
        page.goto(f"{uri}/#/experiments/{exp}/runs/{parent}")
        note = page.locator("[data-testid=note-editor-preview-content]").first
        note.wait_for(state="visible")
        items = note.locator("li").all_inner_texts()
        assert [i.split(":")[0] for i in items] == ["searched0-0", "unet-0", "searched1-0"]
        text = note.inner_text()
        assert "|---" not in text and "|:-" not in text and "###" not in text, text
        assert not note.locator("h1, h2, h3").count()
        page.screenshot(path=str(shots / shot), full_page=True)
        # a network's run: its one name, its description's first line, no raw heading
        shot = "playwright_run.png"
        page.goto(f"{uri}/#/experiments/{exp}/runs/{run_id}")
        note = page.locator("[data-testid=note-editor-preview-content]").first
        note.wait_for(state="visible")
        assert note.inner_text().startswith("unet-0 (baseline): validation Dice 0.4300")
        assert "###" not in note.inner_text()
        page.get_by_text("unet-0", exact=True).first.wait_for(state="visible")
        page.screenshot(path=str(shots / shot), full_page=True)
        # the logged model: the same name, Dice and params first, no system metrics
        shot = "playwright_model.png"
        page.goto(f"{uri}/#/experiments/{exp}/models/{model_id}")
        page.get_by_text("unet-0", exact=True).first.wait_for(state="visible")
        page.get_by_text("val_dice", exact=True).first.wait_for(state="visible")
        body = page.inner_text("body")
        assert "system/" not in body, body[-2000:]
        table = body[body.index("Metrics ("):]  # the model's metric table, row by row
        order = [table.find(k) for k in ("val_dice", "test_dice", "params")]
        assert -1 not in order and order == sorted(order), table[:600]
        page.screenshot(path=str(shots / shot), full_page=True)
        # the architecture picture, previewed from the run's artifacts
        shot = "playwright_architecture.png"
        page.goto(f"{uri}/#/experiments/{exp}/runs/{run_id}/artifacts")
        page.get_by_text("architecture.png", exact=True).first.click()
        page.wait_for_function(
            "() => [...document.images].some(i => i.complete && i.naturalWidth > 400)"
        )
        widths = page.evaluate(
            "() => [...document.images].filter(i => i.naturalWidth > 400)"
            ".map(i => [i.naturalWidth, i.getBoundingClientRect().width])"
        )
        page.screenshot(path=str(shots / shot), full_page=True)
    except BaseException:
        page.screenshot(path=str(shots / f"failed_{shot}"), full_page=True)
        raise
    natural, shown = max(widths, key=lambda w: w[1])  # the preview (another copy may be hidden)
    assert natural <= MAX_WIDTH_PX and shown >= 0.5 * natural, widths
    art = page.request.get(f"{uri}/get-artifact?path=architecture.png&run_uuid={run_id}")
    width, height = struct.unpack(">II", art.body()[16:24])  # the PNG's IHDR
    assert width == natural and width <= MAX_WIDTH_PX
    arch = unet_architecture(spatial_dims=3, in_channels=1, out_channels=2, width=8)
    legend = [t.get_text() for lg in architecture_figure(arch, name="unet-0").legends
              for t in lg.get_texts()]  # fmt: skip
    assert any("conv" in t for t in legend) and any("skip" in t for t in legend), legend
