"""``raynas search --plan`` with ``coarse.strategy=asha``: one stand-alone trial per sampled
choice, one scoring per scoring epoch (no evolution), the stand-alone network's FLOPs."""

from __future__ import annotations

import json

from raynas.cli.main import main

ASHA = ["--set", "coarse.strategy=asha", "--set", "coarse.epochs=4", "--set",
        "coarse.eval_every=2", "--set", "coarse.asha.enabled=false"]  # fmt: skip


def _plan(tmp_path, monkeypatch, capsys, *args: str, space: str = "c2f_small") -> dict:
    monkeypatch.chdir(tmp_path)
    dataset = "synthetic2d" if space.startswith("thrifty") else "synthetic"
    argv = ["search", "--space", space, "--dataset", dataset, "--preset", "smoke", "--plan",
            "--json", "--assume-step-s", "0.01", *args]  # fmt: skip
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_plan_models_the_asha_strategy(tmp_path, monkeypatch, capsys) -> None:
    from raynas.config import load_preset
    from raynas.nets import build_network, model_cost
    from raynas.pipeline.coarse import coarse_candidates
    from raynas.spaces import load_space

    plan = _plan(tmp_path, monkeypatch, capsys, *ASHA, "--set", "coarse.asha_samples=7")
    coarse = plan["stages"]["coarse"]
    assert coarse["trials"] == 7  # one per sampled topology (the supernet strategy: clusters)
    assert coarse["scorings_per_trial"] == 3  # epochs 1, 2 and 4 score the one network
    assert plan["stages"]["fine"]["trials"] == 2  # smoke's coarse.top_k survivors
    preset = load_preset("smoke", ["coarse.strategy=asha", "coarse.asha_samples=7"])
    first = json.loads(next(iter(coarse_candidates(load_space("c2f_small"), preset).values()))[
        "choice_json"])
    net = build_network(load_space("c2f_small").coarse_architecture(
        first, in_channels=1, out_channels=3, width=preset.coarse.width))  # synthetic: 3 labels
    assert coarse["flops_forward"] == model_cost(net, (32, 32, 16), in_channels=1,
                                                 device="cpu").flops  # fmt: skip
    supernet = _plan(tmp_path, monkeypatch, capsys, "--set", "coarse.epochs=4")
    assert supernet["stages"]["coarse"]["trials"] != 7


def test_plan_caps_asha_trials_at_the_space_choices(tmp_path, monkeypatch, capsys) -> None:
    """thrifty_small (a 2D space: its networks' FLOPs from the patch's first two sides)."""
    plan = _plan(tmp_path, monkeypatch, capsys, *ASHA, space="thrifty_small")
    assert plan["stages"]["coarse"]["trials"] == 4  # thrifty_small has 2 depths x 2 widths


def test_plan_of_a_2d_space_costs_its_networks(tmp_path, monkeypatch, capsys) -> None:
    """The supernet strategy's plan of a 2D space: no conv2d error on a 3D patch (a traceback
    before), every stage's FLOPs counted on the patch's first two sides."""
    plan = _plan(tmp_path, monkeypatch, capsys, space="thrifty_small")
    assert all(plan["stages"][s]["flops_forward"] > 0 for s in ("coarse", "fine", "retrain"))
