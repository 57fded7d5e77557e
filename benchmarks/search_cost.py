"""Search cost: where one coarse and one fine trial of ``msd_task02_8gpu`` spend their time.

Runs the coarse and the fine stage *programs* (``raynas.stages``, Ray-free) epoch by epoch, as
``raynas/tune/trainables.py`` does, including its checkpoint writing, with the settings of the
``msd_task02_8gpu`` preset on a synthetic dataset shaped like MSD Task02 after resampling
(20 cases of ~320x320x110 voxels; search patch 96x96x64, width 16), scaled down by ``--scale``
(volume, patch and width by the same factor, the patch rounded up to the space's stride of 16
and the width to a multiple of PC-DARTS' K=4; 1/3 by default: 107x107x37 volumes, 32x32x32
patches, width 4 — the same 50 sliding windows per volume as at full size; 0.5 is exact:
160x160x55, 48x48x32, width 8) so that it runs on a shared 2-core CPU. The synthetic volumes are
written at the target spacing, so resampling is a no-op and the cached volume has that shape.

The trial's epochs are cut to ``--coarse-epochs`` / ``--fine-epochs`` (the preset has 40 and 50;
the coarse evolution's population and generations are scaled by the same ratio, the fine warm-up
is one epoch) and, with ``--coarse-steps`` / ``--fine-steps``, the steps per epoch too; every
other key is the preset's (``--set key=value`` changes one). From the measured unit costs
(seconds per training step, per scoring, per checkpoint, other per epoch) each stage also gets a
``projected`` split of the whole trial at the preset's own epochs, steps, scoring cadence and
checkpoint cadence (at the scaled sizes).

Time split of each trial (seconds and % of the epochs' wall time; data setup is separate):
``train`` (forward/backward/update steps), ``data`` (waiting for the training loader),
``eval`` (scoring/validation), ``ckpt`` (building and writing the checkpoint as the trainable
does), ``other`` (the rest: derivation, parameter counts, bookkeeping).

- ``--label before``: the code before issue 8 has no timing of its own; the split is measured
  from outside by wrapping the engine's step function, its epoch functions, ``evaluate`` and the
  checkpoint save.
- ``--label after`` (or any other label): the figures the programs report themselves
  (``time_train_s`` ... in each epoch's metrics); where a program reports none, the outside
  wrappers are used as for ``before``.

Writes ``benchmarks/results/search_cost.json`` (``search_cost_smoke.json`` with ``--smoke-test``),
keeping the other labels already in the file, so ``before`` and ``after`` sit side by side; each
label carries its own ``stamp`` (:mod:`raynas.bench.provenance`: commit, dirty flag, code digest,
the resolved preset and scale, the generated data's digest) and ``seconds`` per part.

Usage:
    python benchmarks/search_cost.py --smoke-test
    nice python benchmarks/search_cost.py --label before
    python benchmarks/search_cost.py --label after --device cuda --scale 1 --coarse-epochs 1
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results" / "search_cost.json"
PRESET = "msd_task02_8gpu"
# MSD Task02 after resampling to 1.25 mm (x, y) and the preset's search patch and width.
TASK02_SHAPE = (320, 320, 110)
TASK02_CASES = 20
TARGETS = {"eval_pct_max": 15.0, "ckpt_pct_max": 3.0, "data_pct_max": 5.0, "train_pct_min": 75.0}
PARTS = ("train", "data", "eval", "ckpt", "other")


class Clock:
    """Seconds and counts gathered by the outside wrappers."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.seconds = {p: 0.0 for p in PARTS}
        self.steps = 0
        self.arch_steps = 0
        self.evals = 0


def _sync(device: Any) -> None:
    import torch

    if getattr(device, "type", str(device)) == "cuda":
        torch.cuda.synchronize()


@contextmanager
def outside_timers(clock: Clock, device: Any):
    """Wraps the engine's step, epoch and evaluate functions to time them from outside."""
    import raynas.engine as engine
    from raynas.engine import loops

    saved: list[tuple[Any, str, Any]] = []

    def patch(owner: Any, name: str, wrapper: Any) -> None:
        saved.append((owner, name, getattr(owner, name)))
        setattr(owner, name, wrapper)

    step_fn = loops._step

    def timed_step(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        out = step_fn(*args, **kwargs)
        _sync(device)
        clock.seconds["train"] += time.perf_counter() - t0
        if kwargs.get("phase") == "architecture":
            clock.arch_steps += 1
        else:
            clock.steps += 1
        return out

    def epoch_wrapper(fn: Any) -> Any:
        def run(*args: Any, **kwargs: Any) -> Any:
            before = clock.seconds["train"]
            t0 = time.perf_counter()
            out = fn(*args, **kwargs)
            wall = time.perf_counter() - t0
            clock.seconds["data"] += max(0.0, wall - (clock.seconds["train"] - before))
            return out

        return run

    eval_fn = engine.evaluate

    def timed_eval(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        out = eval_fn(*args, **kwargs)
        clock.seconds["eval"] += time.perf_counter() - t0
        clock.evals += 1
        return out

    patch(loops, "_step", timed_step)
    for name in ("train_epoch", "supernet_epoch", "bilevel_epoch"):
        patch(engine, name, epoch_wrapper(getattr(engine, name)))
    patch(engine, "evaluate", timed_eval)
    try:
        yield clock
    finally:
        for owner, name, value in reversed(saved):
            setattr(owner, name, value)


def save_checkpoint(program: Any, metrics: dict[str, Any], folder: Path) -> None:
    """What the trainable writes each epoch (``state.pt``, artifacts, ``metrics.json``)."""
    try:
        from raynas.stages.checkpoint import write_checkpoint
    except ImportError:  # the code before issue 8: the trainable's own _save, copied
        import torch

        torch.save(program.state_dict(), folder / "state.pt")
        for name, text in program.artifacts().items():
            (folder / name).write_text(text, encoding="utf-8")
        (folder / "metrics.json").write_text(json.dumps(metrics, default=str))
        return
    write_checkpoint(program, folder, metrics)


def _wants_checkpoint(program: Any) -> bool:
    wants = getattr(program, "wants_checkpoint", None)
    return True if wants is None else bool(wants())


def run_trial(program: Any, device: Any, clock: Clock) -> dict[str, Any]:
    """Drives a program to the end as the trainable does; returns the trial's split."""
    import torch

    clock.reset()
    cuda = getattr(device, "type", str(device)) == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    epochs: list[dict[str, Any]] = []
    checkpoints = 0
    in_trial = None
    wall_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="raynas-bench-ckpt-") as root:
        while not program.finished:
            t0 = time.perf_counter()
            metrics = program.run_epoch()
            _sync(device)
            ckpt = 0.0
            if _wants_checkpoint(program):
                t1 = time.perf_counter()
                folder = Path(root) / f"epoch{program.epoch:04d}"
                folder.mkdir()
                save_checkpoint(program, metrics, folder)
                ckpt = time.perf_counter() - t1
                checkpoints += 1
            clock.seconds["ckpt"] += ckpt
            wall = time.perf_counter() - t0
            if in_trial is None:
                in_trial = "time_train_s" in metrics
            row = {"epoch": program.epoch, "wall_s": wall, "ckpt_s": ckpt}
            if in_trial:
                row.update({k: float(metrics[k]) for k in metrics
                            if k.startswith("time_") and "total" not in k})
                row["steps"] = int(metrics.get("train_steps", 0))
                row["evals"] = int(metrics.get("evals", 0))
            epochs.append(row)
    wall = time.perf_counter() - wall_start
    if in_trial:
        seconds = {
            "train": sum(r["time_train_s"] for r in epochs),
            "data": sum(r["time_data_s"] for r in epochs),
            "eval": sum(r["time_eval_s"] for r in epochs),
            "ckpt": sum(r["ckpt_s"] for r in epochs),
        }
        steps = sum(r["steps"] for r in epochs)
        evals = sum(r["evals"] for r in epochs)
        source = "in-trial (the programs' own time_*_s metrics; checkpoint timed here)"
    else:
        seconds = {p: clock.seconds[p] for p in ("train", "data", "eval", "ckpt")}
        steps = clock.steps
        evals = clock.evals
        source = "outside (wrapped engine step/epoch/evaluate functions and checkpoint save)"
    seconds["other"] = max(0.0, wall - sum(seconds.values()))
    total = sum(seconds.values())
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if cuda else None
    return {
        "step_s": round(seconds["train"] / steps, 4) if steps else None,
        "peak_memory_mib": round(peak, 1) if peak is not None else None,
        "amp": program.precision.describe(),
        "source": source,
        "wall_s": round(wall, 3),
        "seconds": {k: round(v, 3) for k, v in seconds.items()},
        "percent": {k: round(100.0 * v / total, 2) if total else None for k, v in seconds.items()},
        "epochs": len(epochs),
        "checkpoints": checkpoints,
        "steps": steps,
        "arch_steps": clock.arch_steps if not in_trial else None,
        "evals": evals,
        "per_epoch": epochs,
    }


def _cadence(epochs: int, every: int, milestones: set[int]) -> int:
    """Epochs (of ``1..epochs``) that score or checkpoint: every ``every``, rungs, the last."""
    return sum(1 for e in range(1, epochs + 1) if e % every == 0 or e in milestones or e == epochs)


def project(stage: str, measured: dict[str, Any], preset: Any, train_cases: int) -> dict[str, Any]:
    """The split of a whole trial at the preset's settings, from the measured unit costs."""
    section = getattr(preset, stage)
    steps, evals, epochs = max(1, measured["steps"]), max(1, measured["evals"]), measured["epochs"]
    ckpts = max(1, measured.get("checkpoints", epochs))
    sec = measured["seconds"]
    unit = {"train": sec["train"] / steps, "data": sec["data"] / steps,
            "eval": sec["eval"] / evals, "ckpt": sec["ckpt"] / ckpts,
            "other": sec["other"] / max(1, epochs)}
    cases = train_cases if stage == "coarse" else train_cases // 2  # fine: the weights half
    one_pass = math.ceil(cases / preset.data.batch_size)
    per_epoch = section.steps_per_epoch or one_pass
    asha = section.asha
    try:
        from raynas.stages.timing import asha_milestones

        rungs = (asha_milestones(asha.grace_period, asha.reduction_factor, section.epochs)
                 if asha.enabled else set())
    except ImportError:  # the code before issue 8 checkpointed and scored every epoch
        rungs = set()
    every_eval = int(getattr(section, "eval_every", 1))
    every_ckpt = int(getattr(section, "checkpoint_every", 1))
    scoring_epochs = _cadence(section.epochs, every_eval, rungs)
    if stage == "coarse":
        scorings = scoring_epochs * section.eval_topologies
        scorings += section.population + section.generations * max(1, section.population // 2)
    else:
        scorings = scoring_epochs
    n_steps = section.epochs * per_epoch
    seconds = {
        "train": unit["train"] * n_steps,
        "data": unit["data"] * n_steps,
        "eval": unit["eval"] * scorings,
        "ckpt": unit["ckpt"] * _cadence(section.epochs, every_ckpt, rungs),
        "other": unit["other"] * section.epochs,
    }
    total = sum(seconds.values())
    return {
        "epochs": section.epochs,
        "steps": n_steps,
        "steps_per_epoch": per_epoch,
        "scorings": scorings,
        "checkpoints": _cadence(section.epochs, every_ckpt, rungs),
        "unit_seconds": {k: round(v, 4) for k, v in unit.items()},
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
        "percent": {k: round(100.0 * v / total, 2) if total else None for k, v in seconds.items()},
        "note": "coarse scorings count the final evolution's upper bound (population + "
                "generations x population/2); fine steps count weights steps (a bi-level step "
                "after warm-up costs about two)",
    }


def _scaled(value: int, scale: float, multiple: int = 1) -> int:
    return max(multiple, int(round(value * scale / multiple)) * multiple)


def settings(args: argparse.Namespace) -> dict[str, Any]:
    """The preset overrides and the synthetic volume shape for this run."""
    from raynas.config import load_preset

    base = load_preset(PRESET)
    scale = args.scale
    shape = tuple(max(8, int(round(n * scale))) for n in TASK02_SHAPE)
    patch = [16 * math.ceil(p * scale / 16 - 1e-9) for p in (96, 96, 64)]  # the c2f stride
    width = _scaled(base.coarse.width, scale, 4)
    coarse_ratio = args.coarse_epochs / base.coarse.epochs
    overrides = [
        f"data.synthetic_cases={args.cases}",
        f"data.patch_size=[{','.join(str(p) for p in patch)}]",
        "data.spacing=[1.0,1.0,2.5]",  # the synthetic data's own spacing: resampling is a no-op
        f"data.num_workers={min(base.data.num_workers, args.threads)}",
        f"coarse.epochs={args.coarse_epochs}",
        f"coarse.width={width}",
        f"coarse.population={max(2, round(base.coarse.population * coarse_ratio))}",
        f"coarse.generations={max(1, round(base.coarse.generations * coarse_ratio))}",
        f"fine.epochs={args.fine_epochs}",
        f"fine.warmup_epochs={min(1, args.fine_epochs - 1)}",
        f"fine.width={width}",
        *([f"coarse.steps_per_epoch={args.coarse_steps}"] if args.coarse_steps else []),
        *([f"fine.steps_per_epoch={args.fine_steps}"] if args.fine_steps else []),
        *args.set,
    ]
    return {"scale": scale, "shape": shape, "patch": patch, "width": width,
            "overrides": overrides}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke-test", action="store_true", help="tiny sizes, ~1 min on CPU")
    parser.add_argument("--label", default="after", help="key of this run in the JSON")
    parser.add_argument("--device", choices=["cpu", "cuda", "auto"], default="cpu")
    parser.add_argument("--scale", type=float, default=1 / 3)
    parser.add_argument("--cases", type=int, default=TASK02_CASES)
    parser.add_argument("--coarse-epochs", type=int, default=2)
    parser.add_argument("--fine-epochs", type=int, default=2)
    parser.add_argument("--coarse-steps", type=int, default=None, help="steps_per_epoch")
    parser.add_argument("--fine-steps", type=int, default=None, help="steps_per_epoch")
    parser.add_argument("--space", default="c2f")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.smoke_test:
        args.space, args.scale, args.cases = "c2f_small", 1 / 6, 8
        args.coarse_epochs, args.fine_epochs = 1, 2
        args.coarse_steps, args.fine_steps = 3, 2
        args.set = ["data.folds=4", "coarse.eval_topologies=2", *args.set]
        if args.out == RESULTS:  # keep the full run's figures
            args.out = RESULTS.with_name("search_cost_smoke.json")
    if args.fine_epochs < 2:
        parser.error("--fine-epochs must be >= 2 (one warm-up epoch, then bi-level epochs)")

    import torch

    torch.set_num_threads(args.threads)
    from raynas.bench import Timer, json_ready, stamp, synthetic_digest, write_labelled
    from raynas.config import load_preset
    from raynas.data.synthetic import write_synthetic
    from raynas.engine import resolve_device
    from raynas.spaces import load_space
    from raynas.stages import CoarseProgram, FineProgram, TrialSpec

    cfg = settings(args)
    if args.smoke_test:
        cfg["shape"], cfg["patch"] = (32, 32, 24), [16, 16, 16]
        cfg["overrides"] = [o for o in cfg["overrides"] if not o.startswith("data.patch_size")]
        cfg["overrides"].append("data.patch_size=[16,16,16]")
    preset = load_preset(PRESET, overrides=cfg["overrides"])
    device = resolve_device(args.device)
    config = {"preset": PRESET, "space": args.space, "scale": cfg["scale"],
              "shape": list(cfg["shape"]), "cases": args.cases, "threads": args.threads,
              "device": str(device), "overrides": cfg["overrides"],
              "resolved": preset.model_dump(mode="json")}  # fmt: skip
    st = stamp(config, dataset="synthetic", seeds=[0], script=__file__,
               dataset_digest=synthetic_digest("synthetic", seed=0, cases=args.cases,
                                               shape=cfg["shape"]))  # fmt: skip
    timer = Timer()
    clock = Clock()
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="raynas-bench-data-") as tmp:
        t0 = time.perf_counter()
        with timer.part("data"):
            root = write_synthetic(Path(tmp) / "task02like", name="synthetic",
                                   cases=args.cases, seed=0, shape=cfg["shape"])  # fmt: skip
        generate_s = time.perf_counter() - t0
        space = load_space(args.space)
        coarse_key = space.coarse_candidates()[0].key
        spec = {"space": args.space, "dataset": "synthetic", "data_root": str(root), "seed": 0,
                "preset": preset.model_dump(mode="json"), "device": str(device)}
        with outside_timers(clock, device):
            t0 = time.perf_counter()
            coarse = CoarseProgram(TrialSpec(stage="coarse", candidate={"key": coarse_key},
                                             **spec))
            setup_c = time.perf_counter() - t0
            with timer.part("coarse"):
                result["coarse"] = run_trial(coarse, device, clock)
            result["coarse"]["setup_s"] = round(setup_c, 3)
            result["coarse"]["candidate"] = coarse_key
            best = coarse.scores and max(coarse.scores.items(), key=lambda kv: kv[1])[0]
            choice_json = best or json.dumps(coarse.choices[0], sort_keys=True)
            del coarse
            t0 = time.perf_counter()
            fine = FineProgram(TrialSpec(stage="fine", candidate={"choice_json": choice_json},
                                         **spec))
            setup_f = time.perf_counter() - t0
            with timer.part("fine"):
                result["fine"] = run_trial(fine, device, clock)
            result["fine"]["setup_s"] = round(setup_f, 3)
            result["fine"]["candidate"] = choice_json
            del fine

    full = load_preset(PRESET)  # the preset's own epochs, steps and cadences
    folds = preset.data.folds
    train_cases = args.cases - math.ceil(args.cases / folds)
    for stage in ("coarse", "fine"):
        r = result[stage]
        r["projected"] = project(stage, r, full, train_cases)
        pct = r["percent"]
        if pct["train"] is None:  # no time measured: shares (and targets) undefined
            r["targets_met"] = {k: None for k in ("eval", "ckpt", "data", "train")}
            continue
        r["targets_met"] = {
            "eval": pct["eval"] <= TARGETS["eval_pct_max"],
            "ckpt": pct["ckpt"] <= TARGETS["ckpt_pct_max"],
            "data": pct["data"] <= TARGETS["data_pct_max"],
            "train": pct["train"] >= TARGETS["train_pct_min"],
        }
        print(f"{args.label} {stage}: {r['wall_s']:.1f} s over {r['epochs']} epochs, "
              f"{r['steps']} steps, {r['evals']} evals; "
              + ", ".join(f"{k} {r['seconds'][k]:.1f} s ({pct[k]:.1f} %)" for k in PARTS))
        proj = r["projected"]
        print(f"  projected whole {stage} trial at the preset ({proj['epochs']} epochs x "
              f"{proj['steps_per_epoch']} steps, {proj['scorings']} scorings, "
              f"{proj['checkpoints']} checkpoints): "
              + ", ".join(f"{k} {proj['percent'][k]:.1f} %" for k in PARTS))
    run = {
        "stamp": st,
        "smoke_test": args.smoke_test,
        "device": str(device),
        "device_name": (torch.cuda.get_device_name() if device.type == "cuda"
                        else platform.processor() or platform.machine()),
        "threads": args.threads,
        "load_average": list(os.getloadavg()),
        "scale": {
            "factor": cfg["scale"],
            "statement": (
                f"volume, patch and width scaled by {cfg['scale']:.3g}: volumes "
                f"{'x'.join(map(str, cfg['shape']))} (Task02 after resampling: "
                f"{'x'.join(map(str, TASK02_SHAPE))}), patch {'x'.join(map(str, cfg['patch']))} "
                f"(preset 96x96x64), width {cfg['width']} (preset 16); coarse epochs "
                f"{args.coarse_epochs} of 40, fine epochs {args.fine_epochs} of 50"
            ),
            "volume": list(cfg["shape"]),
            "patch": cfg["patch"],
            "width": cfg["width"],
            "cases": args.cases,
        },
        "preset": PRESET,
        "space": args.space,
        "overrides": cfg["overrides"],
        "data_generation_s": round(generate_s, 3),
        "targets": TARGETS,
        "stages": result,
        "seconds": timer.seconds(),
    }
    write_labelled(args.out, args.label, json_ready(run), benchmark="search_cost",
                   smoke_test=args.smoke_test)  # fmt: skip
    print(f"wrote {args.out} [{args.label}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
