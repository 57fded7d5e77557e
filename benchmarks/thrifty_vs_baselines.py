"""Thrifty NAS vs U-Net vs UNet++ on ``synthetic2d``: Dice and parameters (the paper's Table 1).

Every model is trained with the same budget (epochs, steps per epoch, optimiser, learning rate,
batch, patch, seed) through the engine used for searched networks (``raynas.engine``), then
evaluated with sliding-window inference slice by slice on the whole validation volumes.

Models:

- ``thrifty``: a derived Thrifty network at the space's default depth 4 and C = 32. By default
  the fixed genotype :data:`THRIFTY_GENOTYPE` below (a hand-picked, PC-DARTS-looking cell pair,
  not a search result); ``--thrifty-arch ARCH.json`` uses a searched one, ``--thrifty-seed S``
  ``space.sample_architecture(seed=S)``, ``--thrifty-default`` the uniform-weight derivation
  (``space.default_architecture()``, what the coarse stage reports).
- ``unet`` / ``unetpp``: the UNet++ paper's configurations (filters 32..512) unless
  ``--baseline-width W`` reduces them to ``W * 2**i`` (recorded in the results).

Usage:
    python benchmarks/thrifty_vs_baselines.py --smoke-test      # < 2 minutes on CPU
    python benchmarks/thrifty_vs_baselines.py --epochs 30 --steps 50 --device cuda

Writes ``benchmarks/results/thrifty_vs_baselines.json`` (``--out`` to change), stamped
(:mod:`raynas.bench.provenance`: commit, code digest, budget, dataset digest, seed) with the
seconds per model. An undefined Dice (NaN) is stored as null.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

THRIFTY_GENOTYPE: dict[str, list[list[list[Any]]]] = {
    "dn": [[[0, "sep_conv3"], [1, "conv3"]], [[1, "dil_conv3"], [2, "skip"]]],
    "up": [[[0, "conv3"], [1, "sep_conv3"]], [[0, "skip"], [2, "conv3"]]],
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--smoke-test", action="store_true", help="tiny budget (CI, < 2 min on CPU)")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--steps", type=int, default=40, help="training steps per epoch")
    p.add_argument("--batch-size", type=int, default=4, help="cases per batch")
    p.add_argument("--samples-per-case", type=int, default=2)
    p.add_argument("--patch", type=int, nargs=2, default=(64, 64))
    p.add_argument("--eval-roi", type=int, nargs=2, default=(96, 96),
                   help="sliding-window ROI on the validation slices (synthetic2d: 96x96)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (1 avoids OpenMP stalls on a shared machine)")
    p.add_argument("--optimizer", default="adamw", choices=["sgd", "adamw"])
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=3e-5)
    p.add_argument("--cases", type=int, default=16, help="synthetic cases generated")
    p.add_argument("--val-cases", type=int, default=None, help="limit the validation volumes")
    p.add_argument("--baseline-width", type=int, default=None,
                   help="reduced U-Net/UNet++ filters W*2**i (default: the paper's 32..512)")
    p.add_argument("--thrifty-arch", type=Path, default=None, help="a derived ARCH.json")
    p.add_argument("--thrifty-seed", type=int, default=None,
                   help="use space.sample_architecture(seed=S) instead of the fixed genotype")
    p.add_argument("--thrifty-default", action="store_true",
                   help="use space.default_architecture() (uniform-weight derivation: conv3 on "
                        "in_0 and in_1 of every node) instead of the fixed genotype")
    p.add_argument("--models", nargs="+", default=["thrifty", "unet", "unetpp"],
                   choices=["thrifty", "unet", "unetpp"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--out", type=Path, default=HERE / "results" / "thrifty_vs_baselines.json")
    args = p.parse_args(argv)
    if args.smoke_test:
        args.epochs, args.steps, args.batch_size, args.samples_per_case = 1, 2, 2, 1
        args.patch, args.cases, args.val_cases = (32, 32), 4, 1
    return args


def architectures(args: argparse.Namespace, in_channels: int, classes: int) -> dict[str, Any]:
    """The Architecture of each model, and a note on where it came from."""
    from raynas.nets import ThriftyArchitecture, load_architecture
    from raynas.nets.baselines import unet_architecture, unetpp_architecture
    from raynas.spaces import load_space

    space = load_space("thrifty")
    if args.thrifty_arch is not None:
        thrifty = load_architecture(args.thrifty_arch)
        note = f"derived architecture from {args.thrifty_arch}"
    elif args.thrifty_default:
        thrifty = space.default_architecture(in_channels=in_channels, out_channels=classes)
        note = "space.default_architecture() (uniform-weight derivation, all conv3)"
    elif args.thrifty_seed is not None:
        thrifty = space.sample_architecture(seed=args.thrifty_seed, in_channels=in_channels,
                                            out_channels=classes, width=space.config.width)
        note = f"space.sample_architecture(seed={args.thrifty_seed})"
    else:
        thrifty = ThriftyArchitecture(
            spatial_dims=2, in_channels=in_channels, out_channels=classes,
            width=space.config.width, depth=space.config.depth, nodes=space.config.nodes,
            **THRIFTY_GENOTYPE)
        note = "fixed hand-picked genotype THRIFTY_GENOTYPE (not a search result)"
    kw = {"spatial_dims": 2, "in_channels": in_channels, "out_channels": classes,
          "width": args.baseline_width}
    filters_note = ("paper filters 32-512" if args.baseline_width is None
                    else f"REDUCED filters {args.baseline_width}*2**i")
    return {
        "thrifty": (thrifty, note),
        "unet": (unet_architecture(**kw), f"U-Net, UNet++ paper configuration, {filters_note}"),
        "unetpp": (unetpp_architecture(**kw),
                   f"UNet++ without deep supervision, {filters_note}"),
    }


def _defined(value: Any) -> float | None:
    """A float, or None for NaN / inf (an undefined Dice is null, never a number)."""
    value = float(value)
    return value if math.isfinite(value) else None


def run_model(name: str, arch: Any, bundle: Any, args: argparse.Namespace, device: Any):
    import torch

    from raynas.engine import evaluate, make_loss, make_optimizer, seed_everything, train_epoch
    from raynas.nets import build_network, count_parameters

    seed_everything(args.seed)
    net = build_network(arch).to(device)
    optimizer = make_optimizer(net.parameters(), name=args.optimizer, lr=args.lr,
                               weight_decay=args.weight_decay)
    loss_fn = make_loss()
    start, history = time.perf_counter(), []
    for epoch in range(args.epochs):
        stats = train_epoch(net, bundle.train, optimizer, loss_fn, device=device,
                            max_steps=args.steps, epoch=epoch)
        history.append(round(float(stats.loss), 5))
    train_s = time.perf_counter() - start
    with torch.no_grad():
        result = evaluate(net, bundle.val, num_classes=bundle.num_classes,
                          roi_size=tuple(args.eval_roi), spatial_dims=2, device=device,
                          max_cases=args.val_cases)
    return {
        "params": count_parameters(net),
        "dice": _defined(result.dice),
        "per_class_dice": [_defined(v) for v in result.per_class],
        "val_cases": result.cases,
        "train_loss": history,
        "train_seconds": round(train_s, 2),
        "eval_seconds": round(float(result.seconds), 2),
        "architecture": arch.to_dict(),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    from raynas.bench import Timer, dataset_digest, stamp, write_result
    from raynas.data import build_loaders, open_dataset
    from raynas.engine import resolve_device

    timer = Timer()
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    ds = open_dataset("synthetic2d", seed=args.seed, synthetic_cases=args.cases)
    bundle = build_loaders(ds, mode="2d", patch_size=tuple(args.patch),
                           batch_size=args.batch_size, samples_per_case=args.samples_per_case,
                           folds=4 if args.cases >= 4 else 2, seed=args.seed,
                           max_val_cases=args.val_cases)
    archs = architectures(args, bundle.in_channels, bundle.num_classes)
    budget = {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(args).items()
              if k in ("epochs", "steps", "batch_size", "samples_per_case", "patch",
                       "optimizer", "lr", "weight_decay", "seed", "cases", "val_cases",
                       "eval_roi", "baseline_width", "threads", "models", "thrifty_seed",
                       "thrifty_default")}  # fmt: skip
    thrifty = archs["thrifty"][0].to_dict() if "thrifty" in args.models else None
    st = stamp({**budget, "thrifty_arch": thrifty, "device": str(device)}, dataset="synthetic2d",
               dataset_digest=dataset_digest("synthetic2d", seed=args.seed, cases=args.cases),
               seeds=[args.seed], script=__file__)  # the code this run starts with
    rows: dict[str, Any] = {}
    for name in args.models:
        arch, note = archs[name]
        print(f"[{name}] training ({note})", file=sys.stderr, flush=True)
        with timer.part(name):
            rows[name] = {"note": note, **run_model(name, arch, bundle, args, device)}
        r = rows[name]
        print(f"[{name}] params {r['params']:,}  dice {r['dice']}  "
              f"({r['train_seconds']:.1f} s train)", file=sys.stderr, flush=True)
    result = {
        "benchmark": "thrifty_vs_baselines",
        "dataset": "synthetic2d",
        "smoke_test": args.smoke_test,
        "stamp": st,
        "budget": budget,
        "device": str(device),
        "table": [
            {"architecture": n, "params": r["params"], "params_M": round(r["params"] / 1e6, 2),
             "dice": None if r["dice"] is None else round(r["dice"], 4)}
            for n, r in rows.items()
        ],
        "models": rows,
        "seconds": timer.seconds(),
    }
    write_result(args.out, result)
    for row in result["table"]:
        print(f"{row['architecture']:<8} {row['params_M']:>6.2f}M  DSC {row['dice']}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
