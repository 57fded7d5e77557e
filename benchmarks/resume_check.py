"""Resume check: a stage program resumed from a checkpoint continues exactly like the run that
never stopped (same losses, bit-identical weights), on the device and precision given.

Three runs of the same trial (same spec, same seed) through the product's own stage programs
(:mod:`raynas.stages`) and checkpoint files (:func:`raynas.stages.checkpoint.write_checkpoint`,
:func:`~raynas.stages.checkpoint.read_state`):

- ``straight``: ``--epochs`` epochs in one go;
- ``rerun``: the same again (shows whether the kernels themselves are deterministic);
- ``resumed``: ``--resume-at`` epochs, a checkpoint written to disk, a fresh program (another
  trial object, RNGs disturbed) that loads it and runs the remaining epochs.

Verdict: ``exact`` when ``resumed`` equals ``straight`` bit for bit. When it does not:
``within_rerun_noise`` when the rerun differs too (kernels without a deterministic version:
on CUDA the backward of trilinear upsampling and of the cross-entropy's NLLLoss) and the
resumed run's largest weight difference is at most ``NOISE_FACTOR`` times the rerun's (the
resume adds nothing a rerun would not); else ``resume_differs`` (a state the checkpoint misses,
e.g. a GradScaler's loss scale: a bug). Exit 0 for ``exact`` and ``within_rerun_noise``.

    python benchmarks/resume_check.py --device cuda --amp fp16 --stage fine --out r.json
    python benchmarks/resume_check.py --smoke-test --out r.json     # CPU, fp16 with a scaler

``--smoke-test``: CPU, tiny sizes, the fine stage (two optimisers, two scalers), ``--amp fp16``
unless given (``torch.amp.GradScaler("cpu")``
runs, so the scaler's state goes through the checkpoint as it does on CUDA).

The result is stamped (:mod:`raynas.bench.provenance`: commit, code digest, config, dataset
digest, seed) with the seconds of each of the three runs.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from raynas.bench import Timer, json_ready, preset_dataset_digest, stamp, write_result
from raynas.config import load_preset
from raynas.stages import PROGRAMS, TrialSpec
from raynas.stages.checkpoint import read_state, write_checkpoint

ROOT = Path(__file__).resolve().parents[1]
ARCH = {"space": "c2f", "spatial_dims": 3, "in_channels": 1, "out_channels": 3, "width": 4,
        "levels": 3, "topology": "0-1-1-0",
        "ops": [["conv3"], ["p3d"], ["skip"], ["conv3", "sep_conv3"]]}
CHOICE = {"topology": "0-1-2-1-0-0"}
NOISE_FACTOR = 4.0


def make_spec(args: argparse.Namespace) -> TrialSpec:
    patch = "[" + ",".join(str(p) for p in args.patch) + "]"
    stage = args.stage
    overrides = [
        f"amp={args.amp}", f"deterministic={str(args.deterministic).lower()}",
        "data.cases=4", "data.synthetic_cases=8", "data.folds=2", "data.samples_per_case=1",
        f"data.batch_size={args.batch}", f"data.patch_size={patch}",
        f"data.retrain_patch_size={patch}", f"data.num_workers={args.workers}",
        f"{stage}.epochs={args.epochs}", f"{stage}.steps_per_epoch={args.steps}",
        f"{stage}.width={args.width}", f"{stage}.checkpoint_every=1",
    ]
    if stage == "fine":
        overrides.append("fine.warmup_epochs=1")
        candidate = {"key": "check", "choice_json": json.dumps(CHOICE)}
    else:
        candidate = {"key": "check", "arch_json": json.dumps({**ARCH, "width": args.width})}
    preset = load_preset("smoke", overrides)
    return TrialSpec(stage=stage, space="c2f_small", dataset="synthetic", data_root=None,
                     seed=args.seed, preset=preset.model_dump(mode="json"),
                     candidate=candidate, device=args.device)


def run(spec: TrialSpec, epochs: int, program: Any = None) -> tuple[Any, list[list[float]]]:
    program = program or PROGRAMS[spec.stage](spec)
    out = []
    for _ in range(epochs):
        m = program.run_epoch()
        out.append([float(m["loss"]), float(m["dice"])])
    return program, out


def weights(program: Any) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in program.model.state_dict().items()}


def max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    return max(float((a[k].double() - b[k].double()).abs().max()) if a[k].numel() else 0.0
               for k in a)


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _resumed(spec: TrialSpec, args: argparse.Namespace) -> tuple[Any, list, list, dict]:
    """``--resume-at`` epochs, a checkpoint, a fresh program loading it, the remaining epochs."""
    first, head = run(spec, args.resume_at)
    with tempfile.TemporaryDirectory(prefix="raynas-resume-check-") as tmp:
        write_checkpoint(first, tmp, {"epoch": first.epoch})
        del first
        state = read_state(tmp)
        resumed = PROGRAMS[spec.stage](spec)
        random.random(), np.random.rand(), torch.rand(3)  # another process: other global RNGs
        resumed.load_state_dict(state)
    resumed, tail = run(spec, args.epochs - args.resume_at, resumed)
    return resumed, head, tail, state


def check(args: argparse.Namespace, timer: Timer) -> dict[str, Any]:
    spec = make_spec(args)
    with timer.part("straight"):
        straight, straight_losses = run(spec, args.epochs)
        setup = straight.setup
        w_straight = weights(straight)
        del straight
    with timer.part("rerun"):
        rerun, rerun_losses = run(spec, args.epochs)
        w_rerun = weights(rerun)
        del rerun
    with timer.part("resumed"):
        resumed, head, tail, state = _resumed(spec, args)
    w_resumed = weights(resumed)
    resumed_losses = head + tail
    rerun_exact = rerun_losses == straight_losses and same(w_rerun, w_straight)
    resume_exact = resumed_losses == straight_losses and same(w_resumed, w_straight)
    diffs = {"rerun": max_diff(w_rerun, w_straight), "resumed": max_diff(w_resumed, w_straight)}
    if resume_exact:
        verdict = "exact"
    elif not rerun_exact and diffs["resumed"] <= NOISE_FACTOR * diffs["rerun"]:
        verdict = "within_rerun_noise"
    else:
        verdict = "resume_differs"
    return {
        "setup": setup,
        "scalers_in_checkpoint": {k: v.get("scale") for k, v in state.get("scalers", {}).items()},
        "losses": {"straight": straight_losses, "rerun": rerun_losses,
                   "resumed": resumed_losses},
        "rerun_exact": rerun_exact,
        "resume_exact": resume_exact,
        "max_abs_weight_diff": diffs,
        "noise_factor": NOISE_FACTOR,
        "verdict": verdict,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke-test", action="store_true", help="CPU, tiny, fp16 (CI)")
    parser.add_argument("--device", default=None, help="cpu | cuda | cuda:N (default cuda)")
    parser.add_argument("--amp", default=None, choices=("auto", "bf16", "fp16", "off"))
    parser.add_argument("--deterministic", default="true", choices=("true", "false"))
    parser.add_argument("--stage", default=None, choices=("fine", "retrain"),
                        help="default fine (smoke: two grad scalers), else retrain")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--resume-at", type=int, default=1)
    parser.add_argument("--steps", type=int, default=None, help="steps per epoch")
    parser.add_argument("--width", type=int, default=None)
    parser.add_argument("--patch", type=int, nargs=3, default=None)
    parser.add_argument("--batch", type=int, default=None, help="default 1 (smoke), else 2")
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    smoke = args.smoke_test
    args.device = args.device or ("cpu" if smoke else "cuda")
    args.amp = args.amp or ("fp16" if smoke else "auto")
    args.deterministic = args.deterministic == "true"
    args.stage = args.stage or ("fine" if smoke else "retrain")
    args.steps = args.steps or (2 if smoke else 20)
    # batch 1 on the smoke data: the first fp16 steps overflow, so the loss scale backs off
    # and the checkpoint carries a scale a fresh scaler would not have
    args.batch = args.batch or (1 if smoke else 2)
    args.width = args.width or (4 if smoke else 16)
    args.patch = args.patch or ([16, 16, 16] if smoke else [64, 64, 32])
    if not 1 <= args.resume_at < args.epochs:
        print(f"resume_check: --resume-at must be in [1, --epochs), got {args.resume_at}",
              file=sys.stderr)
        return 2
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("resume_check: --device cuda but CUDA is not available here", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    config = {k: v for k, v in vars(args).items() if k != "out"}
    spec = make_spec(args)
    st = stamp({**config, "preset": spec.preset}, dataset=spec.dataset,
               dataset_digest=preset_dataset_digest(spec.dataset, spec.preset, seeds=[spec.seed]),
               seeds=[args.seed], script=__file__)  # the code this run starts with
    timer = Timer()
    result = check(args, timer)
    data = {"benchmark": "resume_check", "smoke_test": smoke, "stamp": st, "config": config,
            "device_name": (torch.cuda.get_device_name(torch.device(args.device))
                            if args.device.startswith("cuda") else "cpu"),
            **result, "seconds": timer.seconds()}
    write_result(args.out, json_ready(data))
    print(f"{result['setup']}: {result['verdict']} (rerun exact: {result['rerun_exact']}, "
          f"max |w| diff resumed {result['max_abs_weight_diff']['resumed']:.3g}); "
          f"wrote {args.out}")
    return 0 if result["verdict"] in ("exact", "within_rerun_noise") else 1


if __name__ == "__main__":
    sys.exit(main())
