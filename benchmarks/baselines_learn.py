"""Baselines that learn: the retrain recipe of the smoke preset, epoch by epoch, per network.

Runs the retrain stage *program* (:class:`raynas.stages.RetrainProgram`, Ray-free, as a retrain
trial runs it) on the generated ``synthetic`` task with the ``smoke`` preset's retrain section,
for the baselines U-Net, UNet++ and DynUNet (built as ``raynas search`` / ``raynas baseline``
build them, :func:`raynas.pipeline.baselines.baseline_architecture`) and for ``searched``: a C2F
architecture drawn from the ``c2f`` space (``sample_architecture(seed=<seed>)``, the same builder
and width as a derived network). Every network gets the same recipe (no per-network setting).

Each network's row holds, per epoch, the training loss, the learning rate the epoch trained at and
the validation Dice (mean foreground, sliding window on whole volumes; per class too), then the
validation Dice of the best epoch, the first epoch whose validation Dice left 0 (``null`` when
none did), whether it learnt (:func:`raynas.tracking.pareto.learned`), and the test Dice of the
best-validation weights, measured once. Validation picks; test only reports.

Writes ``benchmarks/results/baselines_learn.json`` (``baselines_learn_smoke.json`` with
``--smoke-test``), keeping the other labels already in the file, so ``before`` (the code before
the fix) and ``after`` sit side by side; each label carries its own ``stamp``
(:mod:`raynas.bench.provenance`: commit, dirty flag, code digest, the resolved retrain/data
config and overrides, the datasets' digest, the seeds) and ``seconds`` per network. Labels written
before the stamp existed carry only ``commit`` / ``dirty`` (older code).

Usage:
    python benchmarks/baselines_learn.py --smoke-test
    flock /work/heavy.lock timeout 900 python benchmarks/baselines_learn.py --label after
    python benchmarks/baselines_learn.py --models unet --set retrain.lr=0.001 --label lr1e-3
    python benchmarks/baselines_learn.py --models unet --init torch --max-epochs 12 \
        --label bisect_torch_init_warmup
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results" / "baselines_learn.json"
MODELS = ("unet", "unetpp", "dynunet", "searched")
SMOKE_EPOCHS = 2  # --smoke-test: epochs actually run (of the preset's schedule)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--smoke-test", action="store_true",
                   help=f"run only the first {SMOKE_EPOCHS} epochs of each network (CI)")
    p.add_argument("--label", default="after", help="key of this run in the JSON")
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    p.add_argument("--seeds", nargs="+", type=int, default=[0], help="search seeds (data, split)")
    p.add_argument("--max-epochs", type=int, default=None,
                   help="stop each network after this many epochs (the schedule keeps the "
                        "preset's retrain.epochs)")
    p.add_argument("--set", dest="overrides", action="append", default=[],
                   metavar="KEY=VALUE", help="preset override, e.g. retrain.lr=0.001")
    p.add_argument("--init", choices=("product", "torch"), default="product",
                   help="torch: re-initialise U-Net/UNet++ with PyTorch's default (the init "
                        "before the fix) to bisect the cause; product: as built")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    if args.smoke_test:
        args.max_epochs = SMOKE_EPOCHS
        if args.out == RESULTS:  # keep the full run's figures
            args.out = RESULTS.with_name("baselines_learn_smoke.json")
    if args.max_epochs is not None and args.max_epochs < 1:
        p.error(f"--max-epochs must be >= 1, got {args.max_epochs}")
    return args


def architecture(model: str, seed: int, preset: Any, dataset: Any) -> Any:
    """The network ``model`` as the pipeline builds it (3D on ``synthetic``)."""
    from raynas.pipeline.baselines import baseline_architecture

    if model != "searched":
        return baseline_architecture(model, preset=preset, dataset=dataset, spatial_dims=3)
    from raynas.spaces import load_space

    return load_space("c2f").sample_architecture(
        seed=seed, in_channels=dataset.in_channels, out_channels=dataset.num_classes,
        width=preset.retrain.width,
    )


def torch_default_init(program: Any) -> None:
    """Re-draws every convolution of ``program.model`` with PyTorch's default initialiser
    (``reset_parameters``, seeded by the trial seed): the U-Net/UNet++ init before the fix."""
    import copy

    import torch
    from torch import nn

    torch.manual_seed(program.seed)
    convs = (nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.ConvTranspose3d)
    for m in program.model.modules():
        if isinstance(m, convs):
            m.reset_parameters()
    program.best_state = copy.deepcopy(program.model.state_dict())


def train(model: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """One retrain of ``model``: per-epoch figures and the summary row."""
    from raynas.config import load_preset
    from raynas.data import open_dataset
    from raynas.stages import RetrainProgram, TrialSpec
    from raynas.tracking.pareto import learned

    preset = load_preset("smoke", args.overrides)
    dataset = open_dataset("synthetic", None, seed=seed, limit_cases=preset.data.cases,
                           synthetic_cases=preset.data.synthetic_cases)
    arch = architecture(model, seed, preset, dataset)
    key = model if model == "searched" else f"baseline-{model}"
    cand = {"key": key, "label": key, "arch_json": arch.to_json()}
    spec = TrialSpec(stage="retrain", space="c2f", dataset="synthetic", data_root=None,
                     seed=seed, preset=preset.model_dump(mode="json"), candidate=cand,
                     device="cpu")
    t0 = time.perf_counter()
    program = RetrainProgram(spec)
    if args.init == "torch" and model in ("unet", "unetpp"):
        torch_default_init(program)
    stop = min(program.epochs, args.max_epochs or program.epochs)
    epochs: list[dict[str, Any]] = []
    while program.epoch < stop:
        lr = float(program.optimizer.param_groups[0]["lr"])  # the lr this epoch trained at
        m = program.run_epoch()
        epochs.append({"epoch": m["epoch"], "lr": lr, "train_loss": round(m["loss"], 5),
                       "val_dice": round(m["dice"], 5),
                       "val_dice_per_class": [round(m[k], 5) for k in sorted(m)
                                              if k.startswith("val_dice_class_")]})
        print(f"  {model} seed {seed} epoch {m['epoch']:3d}: lr {lr:.2e} "
              f"loss {m['loss']:.4f} val Dice {m['dice']:.4f}", flush=True)
    final = program.final_metrics()  # the best epoch's validation Dice and, once, its test Dice
    val = max(e["val_dice"] for e in epochs)
    first = next((e["epoch"] for e in epochs if e["val_dice"] > 0), None)
    test = final.get("test_dice")
    return {
        "model": model, "seed": seed, "key": key, "params": int(program.params),
        "init": args.init if model in ("unet", "unetpp") else "product",
        "epochs_run": len(epochs), "schedule_epochs": program.epochs,
        "val_dice": val, "first_epoch_val_dice_above_0": first, "learned": learned(val),
        "test_dice": test if test is not None and math.isfinite(test) else None,
        "seconds": round(time.perf_counter() - t0, 1), "per_epoch": epochs,
        "arch_json": arch.to_json(),
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    from raynas.bench import Timer, json_ready, preset_dataset_digest, stamp, write_labelled
    from raynas.config import load_preset

    torch.set_num_threads(args.threads)
    preset = load_preset("smoke", args.overrides)
    config = {"preset": "smoke", "dataset": "synthetic", "models": args.models,
              "max_epochs": args.max_epochs, "overrides": args.overrides, "init": args.init,
              "threads": args.threads, "retrain": preset.retrain.model_dump(mode="json"),
              "data": preset.data.model_dump(mode="json"), "seed": preset.seed}  # fmt: skip
    st = stamp(config, dataset="synthetic", seeds=args.seeds, script=__file__,
               dataset_digest=preset_dataset_digest("synthetic", preset, seeds=args.seeds))
    timer = Timer()
    rows = []
    for seed in args.seeds:
        for model in args.models:
            with timer.part(f"{model}@{seed}"):
                rows.append(train(model, seed, args))
    run = {
        "stamp": st, "smoke_test": args.smoke_test, "seeds": args.seeds, "models": args.models,
        "max_epochs": args.max_epochs, "overrides": args.overrides, "init": args.init,
        "config": config, "seconds": timer.seconds(),
        "summary": {f"{r['model']}@{r['seed']}": {
            k: r[k] for k in ("params", "val_dice", "first_epoch_val_dice_above_0", "learned",
                              "test_dice")} for r in rows},
        "rows": rows,
    }  # fmt: skip
    run = json_ready(run)  # an undefined (NaN) Dice or loss: null
    write_labelled(args.out, args.label, run, smoke_test=args.smoke_test)
    for name, s in run["summary"].items():
        print(f"{name}: val Dice {s['val_dice']} (first > 0 at epoch "
              f"{s['first_epoch_val_dice_above_0']}), learned {s['learned']}, test Dice "
              f"{s['test_dice']}")
    print(f"wrote {args.out} [{args.label}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
