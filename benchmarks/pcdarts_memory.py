"""PC-DARTS memory and speed: one fine-supernet training step at K = 1, 2, 4, 8.

Each K runs in a fresh subprocess so peaks do not mix. A step is forward + backward + SGD step
of the C2F fine supernet (every cell edge a MixedOp over the space's ops) on the same input.

- Memory on CUDA: ``torch.cuda.max_memory_allocated`` during the steps, minus the allocation
  before the first step (model, optimiser state excluded: the activations and gradients of a step).
- Memory on CPU: the process's peak RSS delta, ``resource.getrusage(RUSAGE_SELF).ru_maxrss``
  after the steps minus before the first step (an upper-bound-ish proxy: the allocator may keep
  or reuse pages; the model and input are allocated before the baseline is read).
- Time: median of the timed steps after warm-up (CUDA synchronised).

Targets (PC-DARTS paper claims): K=4 uses <= 0.40x the memory and <= 0.50x the time of K=1.
Writes ``benchmarks/results/pcdarts_memory.json`` (``..._smoke.json`` with ``--smoke-test``),
stamped (:mod:`raynas.bench.provenance`: commit, code digest, config) with the seconds per K.

Usage:
    python benchmarks/pcdarts_memory.py --smoke-test
    python benchmarks/pcdarts_memory.py --device cpu --size 48 --width 16
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "pcdarts_memory.json"
TARGETS = {"k": 4, "memory_ratio_max": 0.40, "time_ratio_max": 0.50}


def _worker(args: argparse.Namespace) -> dict:
    import resource

    import torch

    from raynas.spaces import load_space

    torch.manual_seed(0)
    if args.device == "cpu":
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    space = load_space(args.space, overrides={"pc_k": args.k})
    net = space.build_fine_supernet({"topology": args.topology}, in_channels=1, out_channels=2,
                                    width=args.width).to(device)
    opt = torch.optim.SGD(net.weight_parameters(), lr=0.01, momentum=0.9)
    gen = torch.Generator().manual_seed(123)
    x = torch.randn(args.batch, 1, *(args.size,) * 3, generator=gen).to(device)
    y = torch.randint(0, 2, (args.batch, *(args.size,) * 3), generator=gen).to(device)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(net(x), y)
        loss.backward()
        opt.step()

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    for _ in range(args.warmup):
        step()
    sync()
    times = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t0)
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated() - base
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
    return {"k": args.k, "peak_bytes": int(peak), "step_s": statistics.median(times),
            "step_times_s": times, "params": sum(p.numel() for p in net.weight_parameters())}


def _run_k(args: argparse.Namespace, k: int) -> dict:
    cmd = [sys.executable, __file__, "--worker", "--k", str(k), "--device", args.device,
           "--space", args.space, "--topology", args.topology, "--width", str(args.width),
           "--size", str(args.size), "--batch", str(args.batch), "--steps", str(args.steps),
           "--warmup", str(args.warmup), "--threads", str(args.threads)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"K={k} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke-test", action="store_true", help="tiny sizes, < 60 s on CPU")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--space", default="c2f")
    parser.add_argument("--topology", default="0-1-2-3-3-2-1-1-0-0-0-0")
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--size", type=int, default=48)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--ks", default="1,2,4,8")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--k", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(_worker(args)))
        return 0
    if args.smoke_test:
        args.space, args.topology = "c2f_small", "0-1-2-1-0-0"
        args.width, args.size, args.steps, args.warmup = 8, 16, 1, 1
        if args.out == RESULTS:  # keep the full run's figures
            args.out = RESULTS.with_name("pcdarts_memory_smoke.json")
    from raynas.bench import Timer, stamp, write_result

    timer = Timer()
    ks = [int(k) for k in args.ks.split(",")]
    config = {"space": args.space, "topology": args.topology, "width": args.width,
              "input": [args.batch, 1, args.size, args.size, args.size], "ks": ks,
              "steps": args.steps, "warmup": args.warmup, "threads": args.threads,
              "device": args.device}  # fmt: skip
    st = stamp(config, dataset=None, dataset_digest=None, seeds=[0, 123], script=__file__)
    runs = {}
    for k in ks:
        with timer.part(f"k{k}"):
            runs[k] = _run_k(args, k)
    ref = runs[ks[0]]
    rows = []
    for k in ks:
        r = runs[k]
        r["memory_ratio"] = r["peak_bytes"] / ref["peak_bytes"] if ref["peak_bytes"] else None
        r["time_ratio"] = r["step_s"] / ref["step_s"]
        rows.append(r)
        ratio = "n/a" if r["memory_ratio"] is None else f"{r['memory_ratio']:.2f}"
        print(f"K={k}: peak {r['peak_bytes'] / 2**20:8.1f} MiB (x{ratio})  "
              f"step {r['step_s'] * 1e3:8.1f} ms (x{r['time_ratio']:.2f})  params {r['params']:,}")
    target = runs.get(TARGETS["k"])
    met = None
    if target is not None and ks[0] == 1:
        mem = target["memory_ratio"]  # None (undefined) when K=1's peak delta was 0
        met = {"memory": None if mem is None else mem <= TARGETS["memory_ratio_max"],
               "time": target["time_ratio"] <= TARGETS["time_ratio_max"]}
        print(f"targets at K=4 (memory <= 0.40x, time <= 0.50x of K=1): {met}")
    import torch

    result = {
        "benchmark": "pcdarts_memory", "smoke_test": args.smoke_test, "device": args.device,
        "stamp": st,
        "device_name": (torch.cuda.get_device_name() if args.device == "cuda"
                        else platform.processor() or platform.machine()),
        "memory_measure": ("cuda max_memory_allocated delta" if args.device == "cuda"
                           else "process peak RSS delta (resource.getrusage ru_maxrss)"),
        "config": {"space": args.space, "topology": args.topology, "width": args.width,
                   "input": [args.batch, 1, args.size, args.size, args.size],
                   "steps": args.steps, "warmup": args.warmup, "threads": args.threads,
                   "torch": torch.__version__},
        "targets": TARGETS, "targets_met": met, "runs": rows, "seconds": timer.seconds(),
    }
    write_result(args.out, result)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
