"""``raynas summary``: exact params, FLOPs, activations from an ARCH.json; errors exit 2."""

from __future__ import annotations

import json

import pytest

from raynas.cli.main import main
from raynas.nets import build_network, count_parameters, load_architecture, model_cost

ARCH = {
    "space": "c2f", "spatial_dims": 3, "in_channels": 1, "out_channels": 2, "width": 4,
    "levels": 3, "topology": "0-1-2-1-0",
    "ops": [["conv3"], ["p3d"], ["conv2d_in_3d"], ["conv3", "skip"], ["skip", "conv3"]],
}


@pytest.fixture
def arch_file(tmp_path):
    path = tmp_path / "ARCH.json"
    path.write_text(json.dumps(ARCH))
    return path


@pytest.mark.parametrize("size_args", [["--input-size", "16", "16", "16"],
                                       ["--input-size", "16x16x16"]])
def test_summary_json_is_exact(capsys, arch_file, size_args):
    assert main(["summary", str(arch_file), *size_args, "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    net = build_network(load_architecture(arch_file))
    cost = model_cost(net, (16, 16, 16), device="cpu")
    assert got["params"] == count_parameters(net) == cost.params
    assert (got["flops"], got["act_bytes"]) == (cost.flops, cost.act_bytes)
    assert got["input_size"] == [16, 16, 16]


def test_summary_text(capsys, arch_file):
    assert main(["summary", str(arch_file), "--input-size", "32", "32", "32"]) == 0
    out = capsys.readouterr().out
    assert "parameters:" in out and "FLOPs" in out and "MiB" in out


@pytest.mark.parametrize("argv_tail,needle", [
    (["nope_model"], "nope_model"),
    (["missing.json"], "missing.json"),
    (["{arch}", "--input-size", "16", "16"], "--input-size"),
    (["{arch}", "--input-size", "a", "b", "c"], "--input-size"),
])
def test_summary_errors_exit_2(capsys, arch_file, argv_tail, needle):
    argv = ["summary", *[a.replace("{arch}", str(arch_file)) for a in argv_tail]]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err


def test_summary_bad_architecture_names_field(capsys, tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({**ARCH, "width": 5000}))
    assert main(["summary", str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "width" in err


def test_summary_png(capsys, arch_file, tmp_path):
    out = tmp_path / "pics" / "arch.png"
    assert main(["summary", str(arch_file), "--input-size", "16", "16", "16", "--png",
                 str(out)]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG" and f"picture:      {out}" in capsys.readouterr().out
    assert main(["summary", str(arch_file), "--png", str(tmp_path / "arch.jpg")]) == 2
    assert "--png" in capsys.readouterr().err
