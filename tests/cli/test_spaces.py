"""``raynas spaces``: list, show, sample; bad names exit 2 with one line."""

from __future__ import annotations

import json

import pytest

from raynas.cli.main import main
from raynas.nets import load_architecture


def test_list_one_line_per_space(capsys):
    assert main(["spaces"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    names = [line.split()[0] for line in lines]
    assert {"c2f", "c2f_small", "thrifty"} <= set(names)
    c2f = next(line for line in lines if line.startswith("c2f "))
    assert " c2f " in c2f and "3D" in c2f


@pytest.mark.parametrize("ref,facts", [
    ("c2f", {"topologies": 1485, "clusters": 8, "levels": 4, "cells": 12}),
    ("c2f_small", {"topologies": 30, "clusters": 4, "levels": 3, "cells": 6}),
])
def test_show(capsys, ref, facts):
    assert main(["spaces", "show", ref, "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert {k: got[k] for k in facts} == facts
    assert got["operations"] == ["conv2d_in_3d", "conv3", "p3d", "skip"]
    assert main(["spaces", "show", ref]) == 0
    assert f"topologies:    {facts['topologies']}" in capsys.readouterr().out


def test_show_path(capsys, tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text("type: c2f\ncells: 4\nlevels: 2\nops: [conv3, skip]\n"
                    "clusters: {rule: canonical_order, count: 2}\n")
    assert main(["spaces", "show", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["topologies"] == 6


@pytest.mark.parametrize("argv", [["spaces", "show", "nope"], ["spaces", "sample", "nope.yaml"]])
def test_bad_space_exits_2_with_one_line(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "nope" in err


def test_bad_ops_exit_2_naming_ops(capsys, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("type: c2f\nspatial_dims: 2\nops: [conv3, p3d]\n")
    assert main(["spaces", "show", str(path)]) == 2
    err = capsys.readouterr().err
    assert "ops" in err and "p3d" in err and str(path) in err


def test_sample_prints_valid_architecture(capsys):
    argv = ["spaces", "sample", "c2f", "--seed", "5", "--width", "8", "--classes", "3",
            "--in-channels", "2"]
    assert main(argv) == 0
    first = capsys.readouterr().out
    arch = load_architecture(first)
    assert (arch.width, arch.out_channels, arch.in_channels) == (8, 3, 2)
    assert main(argv) == 0
    assert capsys.readouterr().out == first
    assert main([*argv[:4], "6", *argv[5:]]) == 0
    assert capsys.readouterr().out != first
