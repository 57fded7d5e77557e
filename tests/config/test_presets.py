"""Preset loading: built-ins, inheritance, --set overrides and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from raynas.config import builtin_names, load_preset
from raynas.errors import ConfigError


@pytest.mark.parametrize("name", ["smoke", "default", "msd_task02_8gpu"])
def test_builtin_presets_load(name: str) -> None:
    preset = load_preset(name)
    assert preset.name == name
    assert preset.fine.warmup_epochs < preset.fine.epochs


def test_builtins_are_listed() -> None:
    assert {"smoke", "default", "msd_task02_8gpu"} <= set(builtin_names("tune_configs"))


def test_smoke_inherits_default_and_overrides() -> None:
    default, smoke = load_preset("default"), load_preset("smoke")
    assert smoke.coarse.epochs == 3 != default.coarse.epochs
    # not set in smoke.yaml: comes from default.yaml
    assert smoke.fine.arch_lr == default.fine.arch_lr == 6e-4
    assert smoke.fine.arch_betas == (0.5, 0.999)


def test_inherits_relative_path_and_chain(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text("inherits: smoke\ncoarse: {epochs: 5}\n")
    (tmp_path / "child.yaml").write_text("inherits: base.yaml\ncoarse: {lr: 0.5}\n")
    preset = load_preset(tmp_path / "child.yaml")
    assert (preset.coarse.epochs, preset.coarse.lr) == (5, 0.5)
    assert preset.coarse.width == load_preset("smoke").coarse.width
    assert preset.name == "child"


@pytest.mark.parametrize(
    ("overrides", "check"),
    [
        (["coarse.epochs=7"], lambda p: p.coarse.epochs == 7),
        (["fine.arch_lr=1e-3"], lambda p: p.fine.arch_lr == 1e-3),
        (["retrain.baselines=[unet, unetpp]"], lambda p: p.retrain.baselines == ["unet", "unetpp"]),
        (["coarse.asha.enabled=false"], lambda p: p.coarse.asha.enabled is False),
        (
            ["retrain.hparams.lr={type: loguniform, low: 0.001, high: 0.1}"],
            lambda p: p.retrain.hparams["lr"].high == 0.1,
        ),
    ],
)
def test_set_overrides(overrides: list[str], check) -> None:
    assert check(load_preset("smoke", overrides))


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["coarse.epochs=-1"], ["--set coarse.epochs=-1", "coarse.epochs", "greater than 0"]),
        (["coarse.optimizer=adam"], ["coarse.optimizer", "'sgd' or 'adamw'", "'adam'"]),
        (["coarse.foo=1"], ["coarse.foo", "unknown key 'foo'", "allowed keys:", "epochs"]),
        (["retrain.baselines=[vnet]"], ["retrain.baselines", "'unet', 'unetpp' or 'dynunet'"]),
        (["coarse=3"], ["coarse"]),
        (["nokey"], ["--set 'nokey'", "key.path=value"]),
        (["coarse.epochs.x=1"], ["coarse.epochs is a value"]),
        (["fine.warmup_epochs=50"], ["warmup_epochs must be < epochs"]),
        (["retrain.hparams.lr={type: loguniform, low: 0, high: 1}"], ["low > 0"]),
    ],
)
def test_bad_values_give_one_line(overrides: list[str], expected: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        load_preset("smoke", overrides)
    message = str(info.value)
    assert "\n" not in message
    for part in expected:
        assert part in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("coarse: [1, 2\n", "not valid YAML"),
        ("- 1\n- 2\n", "expected a mapping"),
        ("inherits: nosuchpreset\n", "unknown preset 'nosuchpreset'"),
        ("inherits: 3\n", "inherits: expected a preset name"),
        ("data: {folds: 3, fold: 3}\n", "fold must be < folds"),
        ("resources: {gpus_per_trial: -1}\n", "resources.gpus_per_trial"),
        ("!!python/object/apply:os.system ['echo hi']\n", "not valid YAML"),
    ],
)
def test_bad_files_name_the_file(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_preset(path)
    assert str(path) in str(info.value) or "bad.yaml" in str(info.value)
    assert expected in str(info.value)
    assert "\n" not in str(info.value)


def test_inherits_cycle(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("inherits: b.yaml\n")
    (tmp_path / "b.yaml").write_text("inherits: a.yaml\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_preset(tmp_path / "a.yaml")


def test_unknown_preset_lists_valid() -> None:
    with pytest.raises(ConfigError, match="valid: .*smoke"):
        load_preset("nope")
