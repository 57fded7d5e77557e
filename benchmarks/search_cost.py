"""Search cost: where one coarse and one fine trial of ``msd_task02_8gpu`` spend their time.

Runs the coarse and the fine stage *programs* (``raynas.stages``, Ray-free) epoch by epoch, as
``raynas/tune/trainables.py`` does, including its checkpoint writing, with the settings of the
``msd_task02_8gpu`` preset on a synthetic dataset shaped like MSD Task02 after resampling
(20 cases of ~320x320x110 voxels; search patch 96x96x64, width 16), scaled down uniformly by
``--scale`` (volume, patch and width by the same factor; 0.5 by default: 160x160x55 volumes,
48x48x32 patches, width 8) so that it runs on a 2-core CPU. The synthetic volumes are written
at the target spacing, so resampling is a no-op and the cached volume has the scaled shape.

The trial's epochs are cut to ``--coarse-epochs`` / ``--fine-epochs`` (the preset has 40 and 50;
the coarse evolution's population and generations are scaled by the same ratio, the fine warm-up
is one epoch); every other key is the preset's (``--set key=value`` changes one).

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
keeping the other labels already in the file, so ``before`` and ``after`` sit side by side.

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
    clock.reset()
    epochs: list[dict[str, Any]] = []
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
            clock.seconds["ckpt"] += ckpt
            wall = time.perf_counter() - t0
            if in_trial is None:
                in_trial = "time_train_s" in metrics
            row = {"epoch": program.epoch, "wall_s": wall, "ckpt_s": ckpt}
            if in_trial:
                row.update({k: float(metrics[k]) for k in metrics if k.startswith("time_")})
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
    return {
        "source": source,
        "wall_s": round(wall, 3),
        "seconds": {k: round(v, 3) for k, v in seconds.items()},
        "percent": {k: round(100.0 * v / total, 2) if total else 0.0 for k, v in seconds.items()},
        "epochs": len(epochs),
        "steps": steps,
        "arch_steps": clock.arch_steps if not in_trial else None,
        "evals": evals,
        "per_epoch": epochs,
    }


def _scaled(value: int, scale: float, multiple: int = 1) -> int:
    return max(multiple, int(round(value * scale / multiple)) * multiple)


def settings(args: argparse.Namespace) -> dict[str, Any]:
    """The preset overrides and the synthetic volume shape for this run."""
    from raynas.config import load_preset

    base = load_preset(PRESET)
    scale = args.scale
    shape = tuple(max(8, int(round(n * scale))) for n in TASK02_SHAPE)
    patch = [_scaled(p, scale, 16) for p in (96, 96, 64)]
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
        *args.set,
    ]
    return {"scale": scale, "shape": shape, "patch": patch, "width": width,
            "overrides": overrides}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke-test", action="store_true", help="tiny sizes, ~1 min on CPU")
    parser.add_argument("--label", default="after", help="key of this run in the JSON")
    parser.add_argument("--device", choices=["cpu", "cuda", "auto"], default="cpu")
    parser.add_argument("--scale", type=float, default=0.5)
    parser.add_argument("--cases", type=int, default=TASK02_CASES)
    parser.add_argument("--coarse-epochs", type=int, default=2)
    parser.add_argument("--fine-epochs", type=int, default=2)
    parser.add_argument("--space", default="c2f")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.smoke_test:
        args.space, args.scale, args.cases = "c2f_small", 1 / 6, 8
        args.coarse_epochs, args.fine_epochs = 1, 2
        args.set = ["data.folds=4", "coarse.eval_topologies=2", *args.set]
        if args.out == RESULTS:  # keep the full run's figures
            args.out = RESULTS.with_name("search_cost_smoke.json")
    if args.fine_epochs < 2:
        parser.error("--fine-epochs must be >= 2 (one warm-up epoch, then bi-level epochs)")

    import torch

    torch.set_num_threads(args.threads)
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
    clock = Clock()
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="raynas-bench-data-") as tmp:
        t0 = time.perf_counter()
        root = write_synthetic(Path(tmp) / "task02like", name="synthetic", cases=args.cases,
                               seed=0, shape=cfg["shape"])
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
            result["fine"] = run_trial(fine, device, clock)
            result["fine"]["setup_s"] = round(setup_f, 3)
            result["fine"]["candidate"] = choice_json
            del fine

    for stage in ("coarse", "fine"):
        r = result[stage]
        pct = r["percent"]
        r["targets_met"] = {
            "eval": pct["eval"] <= TARGETS["eval_pct_max"],
            "ckpt": pct["ckpt"] <= TARGETS["ckpt_pct_max"],
            "data": pct["data"] <= TARGETS["data_pct_max"],
            "train": pct["train"] >= TARGETS["train_pct_min"],
        }
        print(f"{args.label} {stage}: {r['wall_s']:.1f} s over {r['epochs']} epochs, "
              f"{r['steps']} steps, {r['evals']} evals; "
              + ", ".join(f"{k} {r['seconds'][k]:.1f} s ({pct[k]:.1f} %)" for k in PARTS))
    run = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
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
        "torch": torch.__version__,
    }
    out = args.out
    data: dict[str, Any] = {}
    if out.is_file():
        try:
            data = json.loads(out.read_text())
        except json.JSONDecodeError:
            data = {}
    data.update({"benchmark": "search_cost", "smoke_test": args.smoke_test, args.label: run})
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=2, default=_json_default) + "\n")
    print(f"wrote {out} [{args.label}]")
    return 0


def _json_default(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return str(value)


if __name__ == "__main__":
    sys.exit(main())
