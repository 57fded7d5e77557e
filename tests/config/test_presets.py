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
    assert smoke.fine.arch_betas == [0.5, 0.999]


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


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["coarse.epochs=true"], ["--set coarse.epochs=true", "valid integer", "True"]),
        (["coarse.epochs='3'"], ["--set coarse.epochs='3'", "valid integer"]),
        (["coarse.epochs=2.5"], ["coarse.epochs", "valid integer"]),
        (["coarse.lr=true"], ["--set coarse.lr=true", "coarse.lr", "valid number"]),
        (["coarse.lr=.nan"], ["coarse.lr", "finite number"]),
        (["retrain.weight_decay=.inf"], ["retrain.weight_decay", "finite number"]),
        (["resources.cpus_per_trial=.inf"], ["resources.cpus_per_trial", "finite"]),
        (["seed=4294967296"], ["--set seed=4294967296", "seed", "less than or equal"]),
        (["data.folds=3", "data.fold=1", "data.fold=7"], ["--set data.fold=7", "fold must be"]),
        (["data.fold=7"], ["--set data.fold=7", "fold must be < folds"]),
        (["data.fold=3", "data.folds=2", "coarse.epochs=2"], ["--set data.folds=2", "fold must"]),
        (["coarse.epochs=0", "coarse.epochs=-2", "fine.epochs=4"], ["--set coarse.epochs=-2"]),
        (["retrain.hparams.lr={type: choice, values: [true]}"], ["retrain.hparams.lr.values"]),
    ],
)
def test_strict_numbers_and_the_culprit(overrides: list[str], expected: list[str]) -> None:
    """Numbers are strict (``true`` and ``'3'`` are no integers), finite and in range; the
    ``--set`` named is the one that set the bad value (the last of repeated ones)."""
    with pytest.raises(ConfigError) as info:
        load_preset("smoke", overrides)
    message = str(info.value)
    assert "\n" not in message
    for part in expected:
        assert part in message, message


def test_yaml_floats_without_a_dot_are_floats(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("inherits: smoke\ncoarse: {lr: 1e-3}\nretrain: {weight_decay: 2E-5}\n")
    preset = load_preset(path, ["fine.lr=5e-2"])
    assert (preset.coarse.lr, preset.retrain.weight_decay, preset.fine.lr) == (1e-3, 2e-5, 5e-2)


def test_a_file_seed_blames_the_file_and_a_flag_blames_the_flag(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("inherits: smoke\nseed: -1\n")
    with pytest.raises(ConfigError, match=rf"^{path}: seed: "):
        load_preset(path)
    with pytest.raises(ConfigError, match=r"^--seed 99999999999: seed: "):
        load_preset(
            "smoke", ["seed=99999999999"], labels={"seed=99999999999": "--seed 99999999999"}
        )


BOMB = (  # 336 bytes that yaml.safe_load expands to 9**7 list items
    "name: bomb\ninherits: smoke\n"
    'a: &a ["x","x","x","x","x","x","x","x","x"]\n'
    "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
    "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
    "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
    "retrain: {hparams: {lr: {type: choice, values: [*g]}}}\n"
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (BOMB, "(line 3): not valid YAML: anchors (&a) are not allowed"),
        ("retrain: {hparams: {lr: {type: choice, values: [*x]}}}\n", "aliases (*x) are not"),
        ("coarse: " + "[" * 200 + "]" * 200 + "\n", "nested deeper than 50"),
        ("description: '" + "x" * 1_000_001 + "'\n", "larger than 1000000 bytes"),
        ("coarse: {epochs: !!python/name:os.system }\n", "not valid YAML"),
    ],
)
def test_yaml_is_bounded(tmp_path: Path, text: str, expected: str) -> None:
    import resource
    import time

    path = tmp_path / "bad.yaml"
    path.write_text(text)
    before, start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, time.monotonic()
    with pytest.raises(ConfigError) as info:
        load_preset(path)
    assert str(info.value).startswith(f"{path}") and expected in str(info.value), info.value
    assert "\n" not in str(info.value)
    assert time.monotonic() - start < 2.0
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100_000  # kB


def test_set_values_are_bounded_yaml() -> None:
    with pytest.raises(ConfigError, match=r"^--set 'retrain.hparams=&a \[1\]': the value"):
        load_preset("smoke", ["retrain.hparams=&a [1]"])
