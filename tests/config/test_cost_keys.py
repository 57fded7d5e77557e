"""Preset keys of issue 8: steps_per_epoch targets, checkpoint cadence, scoring proxy, AMP."""

from __future__ import annotations

import pytest

from raynas.config import load_preset
from raynas.errors import ConfigError


@pytest.mark.parametrize("name", ["default", "msd_task02_8gpu"])
def test_real_presets_give_supernets_ten_thousand_steps(name: str) -> None:
    preset = load_preset(name)
    assert preset.coarse.epochs * preset.coarse.steps_per_epoch >= 10_000
    assert preset.fine.steps_per_epoch is not None
    assert preset.coarse.scoring == preset.fine.scoring == "patches"
    assert preset.amp == "auto" and preset.deterministic is True
    assert preset.coarse.checkpoint_every >= 1 and preset.coarse.eval_every >= 1


def test_smoke_checkpoints_every_epoch() -> None:
    smoke = load_preset("smoke")
    assert {smoke.coarse.checkpoint_every, smoke.fine.checkpoint_every} == {1}
    assert smoke.retrain.checkpoint_every == 1


@pytest.mark.parametrize(
    ("override", "word"),
    [
        ("coarse.scoring=full", "scoring"),
        ("fine.eval_every=0", "eval_every"),
        ("coarse.checkpoint_every=0", "checkpoint_every"),
        ("fine.patches_per_case=0", "patches_per_case"),
        ("retrain.scoring=patches", "scoring"),  # retrain keeps sliding window: no such key
        ("amp=maybe", "amp"),
        ("amp=1", "amp"),
        ("deterministic=maybe", "deterministic"),
        ("coarse.background_share=1.0", "background_share"),
        ("fine.background_share=-0.1", "background_share"),
    ],
)
def test_bad_values_name_the_key(override: str, word: str) -> None:
    with pytest.raises(ConfigError, match=word):
        load_preset("smoke", [override])


@pytest.mark.parametrize(
    ("value", "setting"),
    [("auto", "auto"), ("bf16", "bf16"), ("fp16", "fp16"), ("off", "off"),
     ("true", "auto"), ("false", "off")],  # the old booleans, mapped
)
def test_every_amp_setting_is_reachable(value: str, setting: str) -> None:
    assert load_preset("smoke", [f"amp={value}"]).amp == setting
