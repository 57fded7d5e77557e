"""Topology rules, canonical strings and U-Net skips."""

from __future__ import annotations

import pytest

from raynas.nets import (
    check_topology,
    decoder_skips,
    edges_per_cell,
    format_topology,
    parse_topology,
    topology_errors,
)


@pytest.mark.parametrize("text,skips", [
    ("0-1-2-1-0", {3: 1, 4: 0}),
    ("1-1-0", {1: 0, 2: -1}),
    ("0-1-1-2-2-1-1-0", {4: 3, 5: 2, 6: 2, 7: 0}),
    ("0-0-1-0", {3: 1}),
])
def test_decoder_skips_take_latest_encoder_output(text, skips):
    t = check_topology(text, levels=4)
    assert decoder_skips(t) == skips
    assert edges_per_cell(t) == [2 if i in skips else 1 for i in range(len(t))]
    assert format_topology(parse_topology(text)) == text


@pytest.mark.parametrize("text,rule", [
    ("2-1-0", "first cell"),
    ("0-2-1-0", "at most one level"),
    ("0-1-1", "last cell"),
    ("0-1-0-1-0", "U-shaped"),
    ("0-1-2-3-2-1-0", "levels must lie"),
    ("0-0-0", "min_depth"),
])
def test_broken_rules_are_named(text, rule):
    errs = topology_errors(parse_topology(text), levels=3, min_depth=1)
    assert any(rule in e for e in errs)
    with pytest.raises(ValueError, match=rule):
        check_topology(text, levels=3, min_depth=1)
