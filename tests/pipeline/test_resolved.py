"""A run command resolves its options once (:class:`raynas.pipeline.options.Resolved`): one walk
of ``raynas search --plan`` or ``raynas baseline`` locates and loads the preset once and opens
the dataset once, counted on the real functions (they still do their work)."""

from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path

import pytest

import raynas.config
import raynas.config.presets
import raynas.data
import raynas.data.msd
from raynas.cli.main import main
from raynas.pipeline.options import Resolved


@pytest.fixture
def calls(monkeypatch) -> Counter:
    """Counts the calls of the preset's locator and loader and of the dataset opener, wherever
    a caller takes them from."""
    counts: Counter = Counter()

    def counting(name: str, real):
        def wrapper(*args, **kwargs):
            counts[name] += 1
            return real(*args, **kwargs)

        return wrapper

    for name, modules in (("preset_path", [raynas.config.presets]),
                          ("load_preset", [raynas.config, raynas.config.presets]),
                          ("open_dataset", [raynas.data, raynas.data.msd])):  # fmt: skip
        wrapper = counting(name, getattr(modules[0], name))
        for module in modules:
            monkeypatch.setattr(module, name, wrapper)
    return counts


def test_search_plan_resolves_the_options_once(tmp_path: Path, monkeypatch, capsys, calls):
    monkeypatch.chdir(tmp_path)
    argv = ["search", "--space", "c2f_small", "--dataset", "synthetic", "--preset", "smoke",
            "--gpus", "0", "--seed", "3", "--set", "coarse.epochs=2", "--plan", "--json",
            "--assume-step-s", "0.01"]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    assert '"coarse"' in capsys.readouterr().out
    assert calls == {"preset_path": 1, "load_preset": 1, "open_dataset": 1}


def test_baseline_resolves_the_options_once(tmp_path: Path, monkeypatch, capsys, calls):
    """Resolved, then stopped by the unwritable storage path before Ray starts."""
    monkeypatch.chdir(tmp_path)
    argv = ["baseline", "--model", "unet", "--dataset", "synthetic", "--preset", "smoke",
            "--storage-path", "/proc/raynas-runs"]  # fmt: skip
    assert main(argv) == 2
    assert "--storage-path /proc/raynas-runs" in capsys.readouterr().err
    assert calls == {"preset_path": 1, "load_preset": 1, "open_dataset": 1}


def test_resolved_is_frozen():
    fields = {f.name for f in dataclasses.fields(Resolved)}
    assert {"preset", "blame", "dataset", "target", "storage", "space"} <= fields
    run = Resolved(preset=None, blame=None, dataset=None, target=None, storage=Path("/x"),
                   experiment="e")  # fmt: skip
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.storage = Path("/y")  # type: ignore[misc]
