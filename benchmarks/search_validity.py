"""Does the search find better networks than chance? Ranking agreement and searched vs random.

Ray-free: drives the stage programs (:class:`raynas.stages.CoarseProgram`, ``FineProgram``,
``RetrainProgram``) and the engine directly, exactly as the Ray trials do, per seed:

1. **Coarse ranking agreement.** A cluster supernet trains as the coarse stage does
   (``coarse.epochs`` epochs, each scoring ``eval_topologies`` and the last one evolving); at each
   of ``--budgets`` (epochs of supernet training) the same M topologies of the cluster are scored
   with the shared weights. Each of the M is then trained alone (``coarse_op`` on every edge, the
   coarse width, the stand-alone budget) and scored on the held-out test cases. Kendall's tau and
   Spearman's rho (``scipy.stats``) between the two rankings, top-1 / top-3 regret in Dice (best
   stand-alone Dice minus the best stand-alone Dice among the supernet's top 1 / top 3).
2. **Fine ranking agreement.** One PC-DARTS search on the supernet's pick; the architecture it
   derives after each epoch (alpha snapshots, distinct ones only) is trained alone; the fine
   supernet's validation Dice at the snapshot against the stand-alone test Dice.
3. **Searched vs random.** The search's pick (the fine stage's last derived architecture) against
   ``--random`` architectures from ``space.sample_architecture`` (what ``raynas spaces sample``
   prints), all trained with the same recipe and budget; test Dice percentile of the searched
   network among the random ones, its parameters against the random median.
4. **Does architecture matter on this task?** A U-Net (filters ``W * 2**i``) and a deliberately
   bad network (C2F topology at level 0 only: full resolution, no downsampling), same budget.

Usage:
    python benchmarks/search_validity.py --smoke-test                 # ~2-4 min on one CPU
    nice python benchmarks/search_validity.py --dataset synthetic_hard --space c2f_small \\
        --seeds 0 1 2

Writes ``benchmarks/results/search_validity.json`` and ``search_validity.png`` (``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--smoke-test", action="store_true", help="tiny budget (CI, minutes on CPU)")
    p.add_argument("--dataset", default="synthetic_hard", help="built-in dataset or MSD name")
    p.add_argument("--data-root", default=None, help="MSD task folder (for msd_task* datasets)")
    p.add_argument("--space", default="c2f_small",
                   help="c2f_small | c2f | thrifty | thrifty3d (or a space YAML)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--cluster", default=None, help="coarse candidate key (default: the largest)")
    p.add_argument("--topologies", type=int, default=5, help="M: topologies ranked per seed")
    p.add_argument("--random", type=int, default=5, help="N: random architectures per seed")
    p.add_argument("--cases", type=int, default=12, help="cases (generated ones for synthetic)")
    p.add_argument("--width", type=int, default=4, help="C of every network trained")
    p.add_argument("--supernet-epochs", type=int, default=12)
    p.add_argument("--budgets", type=int, nargs="+", default=None,
                   help="supernet epochs at which the M topologies are scored (default: E/4, E/2, "
                        "E)")
    p.add_argument("--fine-epochs", type=int, default=4)
    p.add_argument("--epochs", type=int, default=25, help="stand-alone (retrain) epochs")
    p.add_argument("--steps", type=int, default=12, help="steps per epoch, every stage")
    p.add_argument("--lr", type=float, default=0.01, help="AdamW learning rate, every stage")
    p.add_argument("--patch", type=int, nargs=3, default=None, help="patch (default: dataset's)")
    p.add_argument("--set", dest="overrides", action="append", default=[],
                   help="extra preset override (section.key=value), repeatable")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=HERE / "results" / "search_validity.json")
    p.add_argument("--no-plot", action="store_true")
    args = p.parse_args(argv)
    if args.smoke_test:
        args.seeds = args.seeds[:1] if args.seeds != [0, 1, 2] else [0]
        args.topologies, args.random, args.cases, args.width = 3, 2, 5, 2
        args.supernet_epochs, args.fine_epochs, args.epochs, args.steps = 2, 2, 2, 1
        args.patch = args.patch or [32, 32, 16]
    if args.budgets is None:
        e = args.supernet_epochs
        args.budgets = sorted({max(1, e // 4), max(1, e // 2), e})
    args.budgets = sorted({b for b in args.budgets if 1 <= b <= args.supernet_epochs})
    return args


# -- specs -------------------------------------------------------------------------------------
def _overrides(args: argparse.Namespace, spatial_dims: int) -> list[str]:
    w, s = args.width, args.steps
    out = [
        f"data.cases={args.cases}", f"data.synthetic_cases={args.cases}", "data.folds=2",
        "data.batch_size=2", "data.samples_per_case=1", "data.num_workers=0",
        "coarse.optimizer=adamw", f"coarse.lr={args.lr}", "fine.optimizer=adamw",
        f"fine.lr={args.lr}", "retrain.optimizer=adamw", f"retrain.lr={args.lr}",
        f"coarse.width={w}", f"coarse.epochs={args.supernet_epochs}",
        f"coarse.steps_per_epoch={s}", "coarse.eval_topologies=2", "coarse.population=3",
        "coarse.generations=1",
        f"fine.width={w}", f"fine.epochs={args.fine_epochs}",
        f"fine.warmup_epochs={max(0, min(args.fine_epochs - 1, args.fine_epochs // 3))}",
        f"fine.steps_per_epoch={s}",
        f"retrain.width={w}", f"retrain.epochs={args.epochs}", f"retrain.steps_per_epoch={s}",
    ]  # fmt: skip
    if args.patch:
        patch = list(args.patch) if spatial_dims == 3 else [*args.patch[:2], 1]
        out += [f"data.patch_size={patch}", f"data.retrain_patch_size={patch}"]
    return [*out, *args.overrides]


class Specs:
    """Builds the TrialSpecs of one seed (smoke preset made to the benchmark's budget)."""

    def __init__(self, args: argparse.Namespace, seed: int, spatial_dims: int) -> None:
        from raynas.config import load_preset

        self.args, self.seed = args, seed
        self.preset = load_preset("smoke", _overrides(args, spatial_dims)).model_dump(mode="json")

    def __call__(self, stage: str, candidate: dict[str, Any]) -> Any:
        from raynas.stages import TrialSpec

        return TrialSpec(
            stage=stage, space=self.args.space, dataset=self.args.dataset,
            data_root=self.args.data_root, seed=self.seed, preset=self.preset,
            candidate=candidate, device="cpu",
        )  # fmt: skip


# -- stand-alone training ----------------------------------------------------------------------
def train_alone(specs: Specs, key: str, arch: dict[str, Any]) -> dict[str, Any]:
    """Trains ``arch`` alone with the retrain recipe; test Dice of its best-validation weights."""
    from raynas.stages import RetrainProgram

    t0 = time.perf_counter()
    cand = {"key": key, "label": key, "arch_json": json.dumps(arch, sort_keys=True)}
    program = RetrainProgram(specs("retrain", cand))
    metrics: dict[str, Any] = {}
    while not program.finished:
        metrics = program.run_epoch()
    return {
        "key": key,
        "params": int(program.params),
        "val_dice": float(metrics.get("val_dice", program.best_dice)),
        "test_dice": float(metrics.get("test_dice", float("nan"))),
        "test_per_class": [float(metrics[k]) for k in sorted(metrics)
                           if k.startswith("test_dice_") and k != "test_dice"],
        "seconds": round(time.perf_counter() - t0, 1),
    }


def _agreement(proxy: list[float], alone: list[float]) -> dict[str, float]:
    import math

    from scipy import stats

    tau = stats.kendalltau(proxy, alone).statistic
    rho = stats.spearmanr(proxy, alone).statistic
    order = sorted(range(len(proxy)), key=lambda i: -proxy[i])
    best = max(alone)
    return {
        "kendall_tau": float(tau) if not math.isnan(tau) else 0.0,
        "spearman_rho": float(rho) if not math.isnan(rho) else 0.0,
        "top1_regret": float(best - alone[order[0]]),
        "top3_regret": float(best - max(alone[i] for i in order[:3])),
    }


def _at_width(arch: dict[str, Any], width: int) -> dict[str, Any]:
    from raynas.stages.fine import at_width

    return at_width(arch, width)


# -- one seed ----------------------------------------------------------------------------------
def run_seed(args: argparse.Namespace, seed: int, log) -> dict[str, Any]:
    from raynas.nets import Architecture  # noqa: F401  (registers the architecture types)
    from raynas.spaces import load_space
    from raynas.stages import CoarseProgram, FineProgram, choice_key

    space = load_space(args.space)
    dims = int(space.config.spatial_dims)
    specs = Specs(args, seed, dims)
    candidates = space.coarse_candidates()
    key = args.cluster or candidates[0].key
    if args.cluster is None and hasattr(space, "clusters"):  # C2F: the largest cluster
        sizes = [len(c) for c in space.clusters]
        key = candidates[sizes.index(max(sizes))].key
    out: dict[str, Any] = {"seed": seed, "cluster": key}

    # 1. coarse: supernet scores at each budget, then the same M topologies alone
    coarse = CoarseProgram(specs("coarse", {"key": key}))
    rng = random.Random(f"validity:{seed}")
    choices = list(coarse.choices)
    picked = rng.sample(choices, min(args.topologies, len(choices)))
    proxy: dict[int, list[float]] = {}
    t0 = time.perf_counter()
    while not coarse.finished:
        metrics = coarse.run_epoch()
        if coarse.epoch in args.budgets:
            proxy[coarse.epoch] = [coarse._score(c) for c in picked]
            log(f"seed {seed} coarse epoch {coarse.epoch}: supernet scores "
                f"{[round(v, 3) for v in proxy[coarse.epoch]]}")
    out["coarse_seconds"] = round(time.perf_counter() - t0, 1)
    out["coarse_pick"] = metrics["choice_json"]
    alone = []
    for c in picked:
        arch = _at_width(coarse.model.derive(c).to_dict(), args.width)
        alone.append(train_alone(specs, f"topology:{choice_key(c)}", arch))
        log(f"seed {seed} alone {alone[-1]['key']}: test {alone[-1]['test_dice']:.3f}")
    test = [r["test_dice"] for r in alone]
    out["coarse"] = {
        "topologies": [choice_key(c) for c in picked],
        "standalone": alone,
        "by_budget": {str(b): {"supernet_dice": proxy[b], **_agreement(proxy[b], test)}
                      for b in sorted(proxy)},
    }

    # 2. fine: alpha snapshots of one PC-DARTS search on the coarse pick
    fine = FineProgram(specs("fine", {"key": f"{key}/fine", "choice_json": out["coarse_pick"]}))
    snaps: dict[str, float] = {}
    while not fine.finished:
        m = fine.run_epoch()
        snaps[m["arch_json"]] = float(m["dice"])  # a later epoch's score replaces an earlier
    searched_json = fine.arch_json
    fine_rows = []
    for i, (arch_json, dice) in enumerate(snaps.items()):
        r = train_alone(specs, f"fine:{i}", json.loads(arch_json))
        r["supernet_dice"] = dice
        fine_rows.append(r)
    fine_out: dict[str, Any] = {"snapshots": fine_rows}
    if len(fine_rows) >= 2:
        fine_out.update(_agreement([r["supernet_dice"] for r in fine_rows],
                                   [r["test_dice"] for r in fine_rows]))
    out["fine"] = fine_out
    searched = next(r for r, (a, _) in zip(fine_rows, snaps.items(), strict=True)
                    if a == searched_json)

    # 3. searched vs random (same recipe and budget)
    rand = []
    for i in range(args.random):
        arch = space.sample_architecture(
            seed=1000 * seed + i, in_channels=fine.in_channels, out_channels=fine.num_classes,
            width=args.width,
        )
        rand.append(train_alone(specs, f"random:{i}", arch.to_dict()))
        log(f"seed {seed} random {i}: test {rand[-1]['test_dice']:.3f}")
    below = sum(r["test_dice"] < searched["test_dice"] for r in rand)
    ties = sum(r["test_dice"] == searched["test_dice"] for r in rand)
    params = sorted(r["params"] for r in rand)
    median = params[len(params) // 2] if len(params) % 2 else (
        (params[len(params) // 2 - 1] + params[len(params) // 2]) / 2)
    out["searched"] = searched
    out["random"] = rand
    out["percentile"] = 100.0 * (below + 0.5 * ties) / max(1, len(rand))
    out["params_vs_random_median"] = float(searched["params"] / median) if median else None

    # 4. does architecture matter: U-Net vs full-resolution-only
    from raynas.nets.baselines import unet_architecture

    unet = unet_architecture(spatial_dims=dims, in_channels=fine.in_channels,
                             out_channels=fine.num_classes, width=args.width)
    out["unet"] = train_alone(specs, "unet", unet.to_dict())
    if hasattr(space, "clusters"):  # C2F: the same cells, all at level 0
        from raynas.nets.c2f_topology import edges_per_cell

        flat = coarse.model.derive(picked[0]).to_dict()
        zeros = (0,) * len(flat["topology"].split("-"))
        flat.update(topology="-".join("0" * len(zeros)),
                    ops=[[space.config.coarse_op] * n for n in edges_per_cell(zeros)])
        out["flat"] = train_alone(specs, "flat", _at_width(flat, args.width))
    log(f"seed {seed}: unet {out['unet']['test_dice']:.3f} flat "
        f"{out.get('flat', {}).get('test_dice', float('nan')):.3f} searched "
        f"{searched['test_dice']:.3f} percentile {out['percentile']:.0f}")
    return out


def summarize(seeds: list[dict[str, Any]]) -> dict[str, Any]:
    import statistics as st

    def spread(values: list[float]) -> dict[str, float]:
        return {"mean": st.fmean(values), "std": st.pstdev(values) if len(values) > 1 else 0.0,
                "min": min(values), "max": max(values)}

    budgets = sorted({int(b) for s in seeds for b in s["coarse"]["by_budget"]})
    out: dict[str, Any] = {"coarse_by_budget": {}}
    for b in budgets:
        rows = [s["coarse"]["by_budget"][str(b)] for s in seeds
                if str(b) in s["coarse"]["by_budget"]]
        out["coarse_by_budget"][str(b)] = {
            k: spread([r[k] for r in rows])
            for k in ("kendall_tau", "spearman_rho", "top1_regret", "top3_regret")
        }
    fine = [s["fine"] for s in seeds if "kendall_tau" in s["fine"]]
    if fine:
        out["fine"] = {k: spread([r[k] for r in fine]) for k in ("kendall_tau", "spearman_rho")}
    out["percentile"] = spread([s["percentile"] for s in seeds])
    ratios = [s["params_vs_random_median"] for s in seeds if s["params_vs_random_median"]]
    if ratios:
        out["params_vs_random_median"] = spread(ratios)
    out["unet_test_dice"] = spread([s["unet"]["test_dice"] for s in seeds])
    flats = [s["flat"]["test_dice"] for s in seeds if "test_dice" in s.get("flat", {})]
    if flats:
        out["flat_test_dice"] = spread(flats)
    out["searched_test_dice"] = spread([s["searched"]["test_dice"] for s in seeds])
    out["random_test_dice"] = spread([r["test_dice"] for s in seeds for r in s["random"]])
    top = budgets[-1] if budgets else None
    out["targets"] = {
        "coarse_tau_ge_0.4": bool(top and out["coarse_by_budget"][str(top)]["kendall_tau"]["mean"]
                                  >= 0.4),
        "percentile_ge_75": out["percentile"]["mean"] >= 75.0,
        "params_le_random_median": bool(ratios) and max(ratios) <= 1.0,
    }
    return out


def plot(result: dict[str, Any], path: Path) -> None:
    """Left: Kendall tau against supernet budget; right: test Dice against parameters."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4))
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.subplots(1, 2)
    by = result["summary"]["coarse_by_budget"]
    xs = [int(b) for b in by]
    ax1.errorbar(xs, [by[b]["kendall_tau"]["mean"] for b in by],
                 yerr=[by[b]["kendall_tau"]["std"] for b in by], marker="o", label="Kendall tau")
    ax1.errorbar(xs, [by[b]["spearman_rho"]["mean"] for b in by],
                 yerr=[by[b]["spearman_rho"]["std"] for b in by], marker="s", label="Spearman rho")
    ax1.axhline(0.4, color="grey", ls="--", lw=0.8)
    ax1.set_xlabel("supernet epochs")
    ax1.set_ylabel("coarse ranking agreement")
    ax1.legend()
    for s in result["seeds"]:
        ax2.scatter([r["params"] for r in s["random"]], [r["test_dice"] for r in s["random"]],
                    c="tab:grey", marker=".", label="random" if s is result["seeds"][0] else None)
        ax2.scatter([s["searched"]["params"]], [s["searched"]["test_dice"]], c="tab:blue",
                    marker="o", label="searched" if s is result["seeds"][0] else None)
        ax2.scatter([s["unet"]["params"]], [s["unet"]["test_dice"]], c="tab:orange", marker="s",
                    label="U-Net" if s is result["seeds"][0] else None)
        if "test_dice" in s.get("flat", {}):
            ax2.scatter([s["flat"]["params"]], [s["flat"]["test_dice"]], c="tab:red", marker="x",
                        label="level 0 only" if s is result["seeds"][0] else None)
    ax2.set_xscale("log")
    ax2.set_xlabel("parameters")
    ax2.set_ylabel("test Dice")
    ax2.legend()
    fig.suptitle(f"{result['config']['space']} on {result['config']['dataset']}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import torch

    torch.set_num_threads(args.threads)
    cache = None
    if args.smoke_test and "RAYNAS_CACHE_DIR" not in os.environ:
        cache = tempfile.TemporaryDirectory(prefix="raynas-validity-")
        os.environ["RAYNAS_CACHE_DIR"] = cache.name
    t0 = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - t0:7.1f}s] {msg}", file=sys.stderr, flush=True)

    seeds = [run_seed(args, s, log) for s in args.seeds]
    cfg = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    result = {
        "smoke_test": bool(args.smoke_test),
        "config": cfg,
        "platform": {"python": platform.python_version(), "torch": torch.__version__,
                     "machine": platform.machine(), "threads": args.threads},
        "seconds": round(time.perf_counter() - t0, 1),
        "summary": summarize(seeds),
        "seeds": seeds,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    if not args.no_plot:
        try:
            plot(result, args.out.with_suffix(".png"))
        except ImportError as err:  # matplotlib is a dependency; a bare environment may lack it
            log(f"no plot: {err}")
    log(f"wrote {args.out}: {json.dumps(result['summary']['targets'])}")
    if cache is not None:
        cache.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
