"""Proxy agreement: does the coarse stage's patch proxy rank topologies as sliding window does?

For each seed, one C2F cluster's supernet is trained as the coarse stage trains it (the
product's :class:`raynas.stages.CoarseProgram`, its sampler and :func:`raynas.engine.
supernet_epoch`); then every topology of the cluster is scored with the same shared weights:

- ``sliding_window``: the whole validation volumes (:meth:`CoarseProgram.evaluate`, MONAI
  sliding window, Dice with ``ignore_empty=True`` per case) - the reference ranking;
- each proxy variant: validation patches (:func:`raynas.engine.build_patch_set`) scored by
  :func:`raynas.engine.evaluate_patches`. ``before`` is the proxy as it was: foreground-centred
  patches only, a class absent from every patch left out (``ignore_empty=True``). ``share_S``:
  a share ``S`` of background-centred patches and absent classes scored as MONAI's
  ``ignore_empty=False`` (1 if not predicted, else 0).

Kendall tau between each proxy's ranking and the sliding-window ranking, for the score the
coarse stage ranks by (``rank_by``: ``loss`` = minus the validation loss, the default) and for
Dice. A tau that is undefined (a constant ranking) is stored as null and counted out
(``n_valid``). The file is stamped (:mod:`raynas.bench.provenance`: commit, code digest, config,
the datasets' joint digest over the seeds) with the seconds per seed.

    flock /work/heavy.lock timeout 900 python benchmarks/proxy_agreement.py   # ~10 min, 2 cores
    python benchmarks/proxy_agreement.py --smoke-test --out /tmp/p.json        # CI, < 1 min
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

from raynas.bench import Timer, json_ready, mean_valid, preset_dataset_digest, stamp, write_result

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CRITERIA = ("loss", "dice")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--smoke-test", action="store_true", help="tiny budget (CI)")
    p.add_argument("--dataset", default="synthetic_hard")
    p.add_argument("--space", default="c2f_small")
    p.add_argument("--cluster", default=None, help="coarse candidate (default: the largest)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--shares", type=float, nargs="+", default=[0.0, 0.25, 0.5],
                   help="background shares of the new proxy")
    p.add_argument("--patches-per-case", type=int, default=8)
    p.add_argument("--cases", type=int, default=12)
    p.add_argument("--width", type=int, default=8)
    p.add_argument("--epochs", type=int, default=8, help="supernet epochs")
    p.add_argument("--steps", type=int, default=12, help="supernet steps per epoch")
    p.add_argument("--lr", type=float, default=0.01, help="AdamW learning rate")
    p.add_argument("--patch", type=int, nargs=3, default=None, help="default: the dataset's")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=HERE / "results" / "proxy_agreement.json")
    args = p.parse_args(argv)
    if args.smoke_test:
        args.seeds = args.seeds[:1] if args.seeds != [0, 1, 2] else [0]
        args.cases, args.width, args.epochs, args.steps = 5, 2, 1, 2
        args.patches_per_case = 2
        args.patch = args.patch or [32, 32, 16]
    if any(not 0 <= s < 1 for s in args.shares):
        p.error("--shares must lie in [0, 1)")
    return args


def overrides(args: argparse.Namespace) -> list[str]:
    out = [f"data.cases={args.cases}", f"data.synthetic_cases={args.cases}", "data.folds=2",
           "data.batch_size=2", "data.samples_per_case=1", "data.num_workers=0",
           "coarse.optimizer=adamw", f"coarse.lr={args.lr}", f"coarse.width={args.width}",
           f"coarse.epochs={args.epochs}", f"coarse.steps_per_epoch={args.steps}",
           f"coarse.patches_per_case={args.patches_per_case}"]
    if args.patch:
        out.append(f"data.patch_size={list(args.patch)}")
    return out


def kendall(a: list[float], b: list[float]) -> float | None:
    """Kendall's tau-b of two score lists (:func:`raynas.bench.stats.agreement`); None where it
    is undefined (a constant list, NaN)."""
    from raynas.bench.stats import agreement

    if len(a) < 2 or any(math.isnan(v) for v in [*a, *b]):
        return None
    return agreement(a, b)["kendall_tau"]


def variants(shares: list[float]) -> dict[str, dict[str, Any]]:
    out = {"before": {"background_share": 0.0, "ignore_empty": True}}
    for s in shares:
        out[f"share_{s:g}"] = {"background_share": s, "ignore_empty": False}
    return out


def run_seed(args: argparse.Namespace, seed: int, log) -> dict[str, Any]:
    from raynas.config import load_preset
    from raynas.engine import build_patch_set, evaluate_patches, supernet_epoch
    from raynas.spaces import load_space
    from raynas.stages import CoarseProgram, TrialSpec
    from raynas.stages.coarse import choice_key

    preset = load_preset("smoke", overrides(args)).model_dump(mode="json")
    space = load_space(args.space)
    candidates = space.coarse_candidates()
    if args.cluster is None:
        sizes = [len(c) for c in space.clusters]
        key = candidates[sizes.index(max(sizes))].key
    else:
        key = args.cluster
    spec = TrialSpec(stage="coarse", space=args.space, dataset=args.dataset, data_root=None,
                     seed=seed, preset=preset, candidate={"key": key}, device="cpu")
    program = CoarseProgram(spec)
    t0 = time.perf_counter()
    for epoch in range(args.epochs):  # the coarse stage's training, without its scoring
        supernet_epoch(program.model, program.data.bundle.train, program.optimizer,
                       program.loss_fn, sample=lambda: program.by_genome[program.sampler.next()],
                       device=program.device, max_steps=program.section.steps_per_epoch,
                       amp=program.amp, epoch=epoch)
    train_s = time.perf_counter() - t0
    data = program.data
    kinds = variants(args.shares)
    patch_sets = {
        name: build_patch_set(data.bundle.val, roi_size=data.roi_size,
                              spatial_dims=data.spatial_dims, num_classes=program.num_classes,
                              patches_per_case=args.patches_per_case,
                              background_share=v["background_share"], seed=seed)
        for name, v in kinds.items()
    }
    rows = []
    t1 = time.perf_counter()
    for choice in program.choices:
        program.model.set_active(choice)
        sw = program.evaluate(loss=True)
        row = {"topology": choice_key(choice), "sliding_window": {"dice": sw.dice,
                                                                  "loss": sw.loss}}
        for name, v in kinds.items():
            r = evaluate_patches(program.model, patch_sets[name], num_classes=program.num_classes,
                                 device=program.device, amp=program.amp,
                                 loss_fn=program.loss_fn, ignore_empty=v["ignore_empty"])
            row[name] = {"dice": r.dice, "loss": r.loss, "per_class": r.per_class}
        rows.append(row)
    score_s = time.perf_counter() - t1

    def score(entry: dict[str, float], criterion: str) -> float:
        return -entry["loss"] if criterion == "loss" else entry["dice"]

    taus = {name: {c: kendall([score(r[name], c) for r in rows],
                              [score(r["sliding_window"], c) for r in rows])
                   for c in CRITERIA}
            for name in kinds}
    log(f"seed {seed} {key}: {len(rows)} topologies, train {train_s:.0f} s, scoring "
        f"{score_s:.0f} s; tau (loss, dice): "
        + ", ".join(f"{n} ({t['loss']}, {t['dice']})" for n, t in taus.items()))
    return {"seed": seed, "cluster": key, "topologies": len(rows), "patches": {
        n: {"count": len(ps), "background": sum(ps.background)} for n, ps in patch_sets.items()},
        "tau": taus, "rows": rows, "seconds": {"train": round(train_s, 1),
                                               "scoring": round(score_s, 1)}}


def summarize(seeds: list[dict[str, Any]], names: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in names:
        out[name] = {}
        for c in CRITERIA:
            taus = [s["tau"][name][c] for s in seeds]
            vals = [t for t in taus if t is not None]
            out[name][c] = {**mean_valid(taus),
                            "std": statistics.stdev(vals) if len(vals) > 1 else None}
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    from raynas.config import load_preset

    start = time.perf_counter()
    timer = Timer()
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
              if k != "out"}  # fmt: skip
    preset = load_preset("smoke", overrides(args))
    st = stamp({**config, "overrides": overrides(args), "preset": preset.model_dump(mode="json")},
               dataset=args.dataset,
               dataset_digest=preset_dataset_digest(args.dataset, preset, seeds=args.seeds),
               seeds=args.seeds, script=__file__)  # the code this run starts with

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - start:6.0f} s] {msg}", flush=True)

    seeds = []
    for s in args.seeds:
        with timer.part(f"seed{s}"):
            seeds.append(run_seed(args, s, log))
    names = list(variants(args.shares))
    summary = summarize(seeds, names)
    before = summary["before"]["loss"]["mean"]
    for name in names:
        after = summary[name]["loss"]["mean"]
        summary[name]["loss_at_least_before"] = (
            None if after is None or before is None else bool(after >= before))
    result = {"benchmark": "proxy_agreement", "smoke_test": args.smoke_test, "stamp": st,
              "config": config, "overrides": overrides(args), "seeds": args.seeds,
              "seconds": timer.seconds(), "summary": summary, "per_seed": seeds}
    write_result(args.out, json_ready(result))  # a NaN Dice or loss of a row: null
    for name in names:
        s = summary[name]
        log(f"{name}: tau loss {s['loss']['mean']} (n_valid {s['loss']['n_valid']}), "
            f"dice {s['dice']['mean']} (n_valid {s['dice']['n_valid']})")
    log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
