"""Plan check: ``raynas search --plan``'s predicted wall time per stage against a real search.

Runs, in a fresh working folder, first the plan (``raynas search ... --plan --plan-json``, a
subprocess, so it calibrates as a user's plan does) and then the same search for real
(``raynas search ...``, Ray local, MLflow SQLite). The measured wall time of a stage is read from
the search's own log (``search.log``): from its ``<stage> stage: N candidates`` line (the stage's
Tuner is built just after it) to its ``<stage> time: ...`` line (the stage's trials done and its
table written). Both come from the product's code at this commit; nothing is re-implemented here.

Writes ``benchmarks/results/plan_check.json`` (``--out`` elsewhere): per stage ``predicted_s``,
``measured_s``, ``ratio`` (predicted / measured) and ``within_25pct``; ``target_met`` (every
stage within +-25 %); the plan's own figures; the provenance ``stamp``
(:mod:`raynas.bench.provenance`: commit, dirty flag, code digest, the search's arguments and the
resolved preset, the dataset's digest, the seed) and ``seconds`` per part; the machine (CPU
count, load average before and after, which on a shared machine tells how far other work slowed
the run).

Also (not with ``--smoke-test``) the plan of ``msd_task02_8gpu`` on 8 GPUs with an assumed
0.25 s step (``msd_task02_8gpu_plan``), the README's budget figure.

Default job: the README's main job (``--space c2f --dataset synthetic --preset smoke``), a few
minutes on 2 cores. ``--smoke-test`` (CI): the same with 1-2 epochs per stage; it checks that
everything is produced, not the +-25 % target.

Usage:
    flock /work/heavy.lock timeout 900 python benchmarks/plan_check.py
    python benchmarks/plan_check.py --smoke-test --out /tmp/plan_check.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "plan_check.json"
STAGES = ("coarse", "fine", "retrain")
TOLERANCE = 0.25
SMOKE_SETS = [
    "coarse.epochs=2", "fine.epochs=2", "retrain.epochs=2", "coarse.eval_topologies=2",
    "coarse.population=2",
]  # fmt: skip
# The README's budget figure: the 8-GPU preset's plan, on the synthetic stand-in with Task02's
# search patch (msd_task02 itself needs its --data-root), the step time ASSUMED (no GPU here)
MSD_PLAN = ["--space", "c2f", "--dataset", "synthetic", "--preset", "msd_task02_8gpu", "--gpus",
            "8", "--assume-step-s", "0.25", "--set", "data.patch_size=[96,96,64]"]
_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) \S+ raynas\.search: (.*)$")


def stage_splits(log: Path) -> dict[str, str]:
    """Each stage's time split line (its trials' train / data / eval / ckpt / other seconds,
    :func:`raynas.stages.timing.format_split`), as the search logged it."""
    out: dict[str, str] = {}
    for line in log.read_text().splitlines():
        match = _LINE.match(line)
        for stage in STAGES:
            if match and match.group(2).startswith(f"{stage} time: "):
                out[stage] = match.group(2)
    return out


def stage_times(log: Path) -> dict[str, float]:
    """Seconds per stage from a search log (see the module doc); stages not finished are left
    out."""
    starts: dict[str, datetime] = {}
    out: dict[str, float] = {}
    for line in log.read_text().splitlines():
        match = _LINE.match(line)
        if not match:
            continue
        when = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f")
        text = match.group(2)
        for stage in STAGES:
            if re.fullmatch(rf"{stage} stage: \d+ candidates", text):
                starts[stage] = when
            elif text.startswith(f"{stage} time: ") and stage in starts:
                out[stage] = (when - starts[stage]).total_seconds()
    return out


def _raynas(workdir: Path, args: list[str], timeout: float) -> tuple[subprocess.CompletedProcess,
                                                                     float]:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "raynas", "search", *args], cwd=workdir,
                          env=env, capture_output=True, text=True, timeout=timeout)  # fmt: skip
    return proc, time.perf_counter() - start


def compare(plan: dict[str, Any], measured: dict[str, float]) -> dict[str, Any]:
    """Per stage: predicted and measured seconds, their ratio, and whether within +-25 %.

    >>> compare({"stages": {"coarse": {"wall_s": 12.0}}}, {"coarse": 10.0})["coarse"]
    {'predicted_s': 12.0, 'measured_s': 10.0, 'ratio': 1.2, 'within_25pct': True}
    """
    out: dict[str, Any] = {}
    for stage, figures in plan["stages"].items():
        predicted = float(figures["wall_s"])
        got = measured.get(stage)
        ratio = predicted / got if got else None
        out[stage] = {
            "predicted_s": round(predicted, 2),
            "measured_s": round(got, 2) if got is not None else None,
            "ratio": round(ratio, 3) if ratio is not None else None,
            "within_25pct": ratio is not None and abs(ratio - 1) <= TOLERANCE,
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke-test", action="store_true", help="1-2 epochs per stage (CI)")
    parser.add_argument("--space", default="c2f")
    parser.add_argument("--dataset", default="synthetic")
    parser.add_argument("--preset", default="smoke")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds for the search")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    sets = [*(SMOKE_SETS if args.smoke_test else []), *args.set]
    search_args = ["--space", args.space, "--dataset", args.dataset, "--preset", args.preset,
                   *(x for s in sets for x in ("--set", s))]  # fmt: skip
    from raynas.bench import Timer, preset_dataset_digest, stamp, write_result
    from raynas.config import load_preset

    preset = load_preset(args.preset, sets)
    config = {"search_args": search_args, "tolerance": TOLERANCE,
              "preset": preset.model_dump(mode="json")}  # fmt: skip
    st = stamp(config, dataset=args.dataset,
               dataset_digest=preset_dataset_digest(args.dataset, preset),
               seeds=[preset.seed], script=__file__)  # fmt: skip
    timer = Timer()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="raynas-plan-check-") as tmp:
        work = Path(tmp)
        with timer.part("plan"):
            proc, plan_s = _raynas(work, [*search_args, "--plan", "--plan-json", "plan.json"],
                                   900)  # fmt: skip
        if proc.returncode != 0:
            print(f"plan failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}",
                  file=sys.stderr)  # fmt: skip
            return 1
        plan = json.loads((work / "plan.json").read_text())
        load_plan = os.getloadavg()
        with timer.part("search"):
            proc, search_s = _raynas(work, search_args, args.timeout)
        logs = sorted(work.rglob("search.log"))
        if proc.returncode != 0 or not logs:
            print(f"search failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}",
                  file=sys.stderr)  # fmt: skip
            return 1
        measured = stage_times(logs[0])
        splits = stage_splits(logs[0])
        msd = None
        if not args.smoke_test:
            with timer.part("msd_plan"):
                proc, _ = _raynas(work, [*MSD_PLAN, "--plan", "--plan-json", "msd.json"], 900)
            if proc.returncode == 0:
                msd = json.loads((work / "msd.json").read_text())
                msd["command"] = " ".join(["raynas", "search", *MSD_PLAN, "--plan"])
    stages = compare(plan, measured)
    for stage, text in splits.items():
        stages[stage]["measured_split"] = text
    result = {
        "benchmark": "plan_check",
        "smoke_test": args.smoke_test,
        "stamp": st,
        "config": {"search_args": search_args, "tolerance": TOLERANCE},
        "machine": {
            "cpus": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(),
            "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after_plan": [round(x, 2) for x in load_plan],
            "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        },
        "stages": stages,
        "target_met": all(s["within_25pct"] for s in stages.values()),
        "plan_s": round(plan_s, 1),
        "search_s": round(search_s, 1),
        "plan": plan,
        "msd_task02_8gpu_plan": msd,
        "seconds": timer.seconds(),
    }  # fmt: skip
    write_result(args.out, result)
    for stage, s in stages.items():
        print(f"{stage:8s} predicted {s['predicted_s']} s, measured {s['measured_s']} s, "
              f"ratio {s['ratio']}, within 25 %: {s['within_25pct']}")  # fmt: skip
    print(f"target {'met' if result['target_met'] else 'NOT met'}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
