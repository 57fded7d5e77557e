"""Does the search find better networks than chance? Ranking agreement and searched vs random.

Ray-free: drives the stage programs (:class:`raynas.stages.CoarseProgram`, ``FineProgram``,
``RetrainProgram``) and the engine directly, exactly as the Ray trials do, per seed:

1. **Coarse ranking agreement.** A cluster supernet trains as the coarse stage does
   (``coarse.epochs`` epochs, each scoring ``eval_topologies`` and the last one evolving); at each
   of ``--budgets`` (epochs of supernet training) the same M topologies of the cluster are scored
   with the shared weights: by the patch proxy's Dice, by sliding-window Dice on the whole
   validation volumes, and by minus the validation loss on the patches (``neg_loss``: what
   ``coarse.rank_by: loss`` ranks by). Each of the M is then trained alone (``coarse_op`` on
   every edge, the coarse width, the stand-alone budget) and scored on the held-out test cases.
   Kendall's tau and Spearman's rho (``scipy.stats``) between the two rankings, top-1 / top-3
   regret in Dice (best stand-alone Dice minus the best stand-alone Dice among the supernet's
   top 1 / top 3).
2. **Fine ranking agreement.** One PC-DARTS search on the supernet's pick; the architecture it
   derives after each epoch (alpha snapshots, distinct ones only) is trained alone; the fine
   supernet's validation Dice at the snapshot against the stand-alone test Dice.
3. **Searched vs random.** The search's pick (the fine stage's last derived architecture) against
   ``--random`` architectures from ``space.sample_architecture`` (what ``raynas spaces sample``
   prints), all trained with the same recipe and budget; test Dice percentile of the searched
   network among the random ones, its parameters against the random median.
   ``summary.selection_by_val``: picking by validation Dice among K retrained networks (what a
   retrain stage with K searched trials keeps, ``strategy.selection.best_model``), the best of
   the fine search's last K derived architectures against random search with the same K
   retrains (the best of K random networks by validation Dice, every K-subset): the percentile
   a search reaches by retraining several candidates, and how much of it validation selection
   alone gives.
   ``--top-k K`` (with ``--scope stage``) runs the pipeline as ``coarse.top_k = fine.top_k = K``
   do (the default preset: 2): the K best clusters by the coarse stage's ranking each get a fine
   search, their K derived architectures are retrained, and the one with the best validation
   Dice is the search's result (``seeds[].top_k``, ``summary.top_k``), against random search
   with the same K retrains.
4. **Does architecture matter on this task?** A U-shaped C2F topology (one level down per cell,
   then up) and a deliberately bad one (every cell at level 0: full resolution, no
   downsampling), same op, width and budget; ``--paper-unet`` adds the MONAI-style U-Net
   (filters ``W * 2**i``).

``--compare-sampling uniform`` trains every supernet a second time with the other
``coarse.path_sampling`` and ranks the same M topologies with it: the before/after of the default.
``--coarse-only`` stops after part 1; ``--standalone-from`` takes the stand-alone rows of earlier
result files (trial seeds and the retrain program are deterministic on CPU: the same key and
architecture give the same result), so a change to the search is measured in minutes.
``--trainings R`` trains every stand-alone network R times from other trial seeds and uses the
mean: one training's test Dice varies by about as much as the random architectures differ, so
R >= 2 also reports that noise (``summary.training_noise``).

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
import statistics
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
    p.add_argument("--scope", choices=("stage", "cluster"), default="stage",
                   help="stage: every coarse candidate's supernet is trained and the M topologies "
                        "are drawn from the whole space (what the coarse stage ranks); cluster: "
                        "one cluster's supernet and M of its topologies")
    p.add_argument("--cluster", default=None,
                   help="with --scope cluster: the coarse candidate (default: the largest)")
    p.add_argument("--top-k", type=int, default=1,
                   help="with --scope stage: fine-search the K best clusters and keep the best "
                        "of their K retrained architectures by validation Dice (coarse.top_k = "
                        "fine.top_k = K; the default preset has 2); 1: the best cluster only")
    p.add_argument("--topologies", type=int, default=6, help="M: topologies ranked per seed")
    p.add_argument("--random", type=int, default=5, help="N: random architectures per seed")
    p.add_argument("--cases", type=int, default=12, help="cases (generated ones for synthetic)")
    p.add_argument("--width", type=int, default=8, help="C of every network trained")
    p.add_argument("--supernet-epochs", type=int, default=40)
    p.add_argument("--budgets", type=int, nargs="+", default=None,
                   help="supernet epochs at which the M topologies are scored (default: E/4, E/2, "
                        "E)")
    p.add_argument("--fine-epochs", type=int, default=10)
    p.add_argument("--fine-snapshots", type=int, default=4,
                   help="the last K distinct derived architectures of the fine search trained")
    p.add_argument("--epochs", type=int, default=40, help="stand-alone (retrain) epochs")
    p.add_argument("--steps", type=int, default=12, help="steps per epoch, every stage")
    p.add_argument("--lr", type=float, default=0.01, help="AdamW learning rate, every stage")
    p.add_argument("--patch", type=int, nargs=3, default=None, help="patch (default: dataset's)")
    p.add_argument("--set", dest="overrides", action="append", default=[],
                   help="extra preset override (section.key=value), repeatable")
    p.add_argument("--compare-sampling", nargs="*", default=[], choices=("uniform", "fair"),
                   help="also train the supernets with these coarse.path_sampling values and "
                        "rank the same topologies with them (tau by budget per sampling)")
    p.add_argument("--repeat", action="store_true",
                   help="train the M topologies a second time from other trial seeds (the "
                        "stand-alone ranking's agreement with itself: the noise ceiling of tau)")
    p.add_argument("--trainings", type=int, default=1,
                   help="R: train every stand-alone network R times (trial seeds differ) and use "
                        "its mean test Dice; R >= 2 also measures the training noise")
    p.add_argument("--standalone-from", type=Path, nargs="+", default=[],
                   help="earlier result JSONs (same data and stand-alone recipe: checked): a "
                        "network it trained under the same key and architecture is not trained "
                        "again (the same trial seed gives the same result)")
    p.add_argument("--coarse-only", action="store_true",
                   help="stop after the coarse ranking (no fine search, random or U/flat nets)")
    p.add_argument("--paper-unet", action="store_true",
                   help="also train the paper's U-Net (filters W * 2**i; slow on CPU)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per seed")
    p.add_argument("--jobs", type=int, default=1, help="seeds run in parallel processes")
    p.add_argument("--out", type=Path, default=HERE / "results" / "search_validity.json")
    p.add_argument("--no-plot", action="store_true")
    args = p.parse_args(argv)
    if args.top_k < 1:
        p.error("--top-k must be >= 1")
    if args.top_k > 1 and args.scope != "stage":
        p.error("--top-k > 1 needs --scope stage (one cluster has nothing to choose between)")
    if args.smoke_test:
        args.seeds = args.seeds[:1] if args.seeds != [0, 1, 2] else [0]
        args.topologies, args.random, args.cases, args.width = 3, 2, 5, 2
        args.supernet_epochs, args.fine_epochs, args.epochs, args.steps = 2, 2, 2, 1
        args.patch = args.patch or [32, 32, 16]
        args.compare_sampling = args.compare_sampling or ["uniform"]
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

    def __init__(self, args: argparse.Namespace, seed: int, spatial_dims: int,
                 extra: list[str] | None = None) -> None:
        from raynas.config import load_preset

        self.args, self.seed = args, seed
        overrides = [*_overrides(args, spatial_dims), *(extra or [])]
        self.preset = load_preset("smoke", overrides).model_dump(mode="json")
        self.reuse = reusable(args, seed)

    def __call__(self, stage: str, candidate: dict[str, Any]) -> Any:
        from raynas.stages import TrialSpec

        return TrialSpec(
            stage=stage, space=self.args.space, dataset=self.args.dataset,
            data_root=self.args.data_root, seed=self.seed, preset=self.preset,
            candidate=candidate, device="cpu",
        )  # fmt: skip


def reusable(args: argparse.Namespace, seed: int) -> dict[tuple[str, str], dict[str, Any]]:
    """``(key, arch_json) -> row`` of every network ``--standalone-from`` trained for ``seed``
    (none without it); the earlier run must have used the same data and stand-alone recipe."""
    same = ("dataset", "data_root", "space", "width", "epochs", "steps", "lr", "cases", "patch")
    rows: list[dict[str, Any]] = []
    for path in args.standalone_from:
        earlier = json.loads(path.read_text(encoding="utf-8"))
        diff = [k for k in same if earlier["config"].get(k) != getattr(args, k)]
        diff += sorted({o for o in [*earlier["config"].get("overrides", []), *args.overrides]
                        if o.startswith(("data.", "retrain."))})
        if diff:
            raise SystemExit(f"--standalone-from {path}: another recipe ({', '.join(diff)})")
        for record in (r for r in earlier["seeds"] if r["seed"] == seed):
            rows += [run for r in trained_rows(record) for run in (r.get("runs") or [r])]
    return {(r["key"], r["arch_json"]): {k: v for k, v in r.items() if k != "supernet_dice"}
            for r in rows}


# -- stand-alone training ----------------------------------------------------------------------
def train_alone(specs: Specs, key: str, arch: dict[str, Any]) -> dict[str, Any]:
    """Trains ``arch`` alone with the retrain recipe, ``--trainings`` R times (keys ``key``,
    ``key#t1``, ...: other trial seeds); the row holds the mean over them (test Dice of each
    training's best-validation weights) and, for R >= 2, each training in ``runs``."""
    runs = [_train_once(specs, key if r == 0 else f"{key}#t{r}", arch)
            for r in range(max(1, specs.args.trainings))]
    if len(runs) == 1:
        return runs[0]
    mean = statistics.fmean
    return {
        "key": key, "arch_json": runs[0]["arch_json"], "params": runs[0]["params"],
        "val_dice": mean(r["val_dice"] for r in runs),
        "test_dice": mean(r["test_dice"] for r in runs),
        "test_dice_sd": statistics.stdev(r["test_dice"] for r in runs),
        "test_per_class": [mean(c) for c in zip(*(r["test_per_class"] for r in runs),
                                                 strict=True)],
        "seconds": round(sum(r["seconds"] for r in runs), 1),
        "runs": runs,
    }  # fmt: skip


def _train_once(specs: Specs, key: str, arch: dict[str, Any]) -> dict[str, Any]:
    """One stand-alone training of ``arch`` under trial key ``key``. A run of
    ``--standalone-from`` that trained the same architecture under the same key (so from the
    same trial seed, with the same recipe: checked) gives its row instead."""
    from raynas.stages import RetrainProgram

    t0 = time.perf_counter()
    cand = {"key": key, "label": key, "arch_json": json.dumps(arch, sort_keys=True)}
    earlier = specs.reuse.get((key, cand["arch_json"]))
    if earlier is not None:
        return {**earlier, "reused": True}
    program = RetrainProgram(specs("retrain", cand))
    metrics: dict[str, Any] = {}
    while not program.finished:
        metrics = program.run_epoch()
    return {
        "key": key,
        "arch_json": cand["arch_json"],
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


def shared_score(program: Any, choice: dict[str, Any]) -> dict[str, Any]:
    """Scores of ``choice`` with a coarse program's shared weights, without adding it to the
    program's own pool of scores: ``patch`` as the program scores (its section's ``scoring``,
    the patch proxy by default) with its ``per_class`` Dice, ``sliding_window`` over the whole
    validation volumes, and ``neg_loss``: minus the training loss (Dice + CE) on the same
    patches, a smooth proxy that still separates paths where a class is not yet segmented."""
    program.model.set_active(choice)
    patch = program.score(loss=True)  # one pass: Dice per class and the loss
    return {"patch": float(patch.dice), "per_class": [float(v) for v in patch.per_class],
            "sliding_window": float(program.evaluate().dice), "neg_loss": -float(patch.loss)}


PROXIES = ("patch", "sliding_window", "neg_loss")


def _at_width(arch: dict[str, Any], width: int) -> dict[str, Any]:
    from raynas.stages.fine import at_width

    return at_width(arch, width)


def u_topology(space: Any) -> str:
    """The U-shaped topology of a C2F space: one level down per cell to the deepest, then up."""
    cells, deepest = int(space.config.cells), int(space.config.levels) - 1
    down = [min(i, deepest) for i in range((cells + 1) // 2)]
    return "-".join(str(v) for v in down + down[: cells // 2][::-1])


def c2f_at(space: Any, topology: str, width: int, in_channels: int, classes: int
           ) -> dict[str, Any]:
    """A C2F Architecture dict: ``topology`` with the space's coarse op on every edge."""
    from raynas.nets.c2f_topology import edges_per_cell

    levels = tuple(int(v) for v in topology.split("-"))
    return {
        "space": "c2f", "schema_version": 1, "spatial_dims": int(space.config.spatial_dims),
        "in_channels": in_channels, "out_channels": classes, "width": width,
        "levels": int(space.config.levels), "topology": topology, "act": "relu",
        "ops": [[space.config.coarse_op] * n for n in edges_per_cell(levels)],
    }  # fmt: skip


# -- one seed ----------------------------------------------------------------------------------
def against_random(row: dict[str, Any], rand: list[dict[str, Any]], median: float
                   ) -> dict[str, Any]:
    """``row``'s test-Dice percentile among the random networks, its parameters vs their median."""
    return {"percentile": percentile_in(row["test_dice"], [r["test_dice"] for r in rand]),
            "params_vs_random_median": float(row["params"] / median) if median else None}


def top_k_pick(top: dict[str, Any]) -> dict[str, Any]:
    """The row ``--top-k`` kept (``seeds[].top_k``)."""
    return next(r for r in top["searched"] if r["key"] == top["pick"])


def top_k_search(specs: Specs, finals: dict[str, dict[str, Any]], ranked: list[str],
                 best: dict[str, Any], rand: list[dict[str, Any]], median: float, log
                 ) -> dict[str, Any]:
    """The pipeline with ``coarse.top_k = fine.top_k = len(ranked)``: the best clusters by their
    final coarse score (``best``: the first one's fine search, already retrained) each get a fine
    search; of their derived architectures, retrained, the best by validation Dice is kept."""
    from raynas.stages import FineProgram

    k = len(ranked)
    rows = [{**best, "cluster": ranked[0]}]
    for cluster in ranked[1:]:
        fine = FineProgram(specs("fine", {"key": f"{cluster}/fine",
                                          "choice_json": finals[cluster]["choice_json"]}))
        while not fine.finished:
            fine.run_epoch()
        row = train_alone(specs, f"fine:{cluster}", json.loads(fine.arch_json))
        rows.append({**row, "cluster": cluster})
        log(f"seed {specs.seed} top-{k} {cluster}: val {row['val_dice']:.3f} "
            f"test {row['test_dice']:.3f}")
    pick = retrain_pick(rows)
    return {"k": k, "clusters": ranked, "searched": rows, "pick": pick["key"],
            **against_random(pick, rand, median), "random_search": random_search(rand, k)}


def run_seed(args: argparse.Namespace, seed: int, log) -> dict[str, Any]:
    from raynas.nets import Architecture  # noqa: F401  (registers the architecture types)
    from raynas.spaces import load_space
    from raynas.stages import CoarseProgram, FineProgram, choice_key

    space = load_space(args.space)
    dims = int(space.config.spatial_dims)
    specs = Specs(args, seed, dims)
    candidates = space.coarse_candidates()
    if args.scope == "stage":  # every candidate's supernet, as the coarse stage trains them
        keys = [c.key for c in candidates]
    elif args.cluster is not None:
        keys = [args.cluster]
    elif hasattr(space, "clusters"):  # C2F: the largest cluster
        sizes = [len(c) for c in space.clusters]
        keys = [candidates[sizes.index(max(sizes))].key]
    else:
        keys = [candidates[0].key]
    out: dict[str, Any] = {"seed": seed, "scope": args.scope, "candidates": keys}
    # C2F retrains at one width by design (retrain.width); Thrifty keeps its searched width
    width = args.width if hasattr(space, "clusters") else None

    # 1. coarse: supernet scores at each budget, then the same M topologies alone
    programs = {k: CoarseProgram(specs("coarse", {"key": k})) for k in keys}
    rng = random.Random(f"validity:{seed}")
    choices = [(k, c) for k, prog in programs.items() for c in prog.choices]
    picked = rng.sample(choices, min(args.topologies, len(choices)))
    nan = float("nan")
    scored: dict[int, list[dict[str, Any]]] = {}  # budget -> shared_score of each pick
    finals: dict[str, dict[str, Any]] = {}
    t0 = time.perf_counter()
    for k, coarse in programs.items():
        mine = [i for i, (owner, _) in enumerate(picked) if owner == k]
        while not coarse.finished:
            metrics = coarse.run_epoch()
            if coarse.epoch in args.budgets:
                row = scored.setdefault(coarse.epoch, [{} for _ in picked])
                for i in mine:
                    row[i] = shared_score(coarse, picked[i][1])
        finals[k] = metrics
        log(f"seed {seed} coarse {k}: pick {metrics['topology']} dice {metrics['dice']:.3f}")
    proxy = {b: {name: [r.get(name, nan) for r in row] for name in PROXIES}
             for b, row in scored.items()}
    for b in sorted(proxy):
        log(f"seed {seed} supernet epoch {b}: scores {[round(v, 3) for v in proxy[b]['patch']]}")
    out["coarse_seconds"] = round(time.perf_counter() - t0, 1)
    ranked = coarse_ranking(finals)  # the stage's ranking (strategy.selection, as the pipeline)
    key = ranked[0]  # its pick (top_k = 1)
    out["cluster"] = key
    out["coarse_pick"] = finals[key]["choice_json"]
    alone = []
    for owner, c in picked:
        arch = _at_width(programs[owner].model.derive(c).to_dict(), width)
        alone.append(train_alone(specs, f"topology:{choice_key(c)}", arch))
        log(f"seed {seed} alone {alone[-1]['key']}: test {alone[-1]['test_dice']:.3f}")
    test = [r["test_dice"] for r in alone]
    repeat: dict[str, Any] = {}
    if args.repeat:  # the same M trained again from other trial seeds: the noise ceiling of tau
        again = [train_alone(specs, f"{r['key']}#repeat", json.loads(r["arch_json"]))
                 for r in alone]
        repeat = {"standalone_repeat": again,
                  "self_agreement": _agreement(test, [r["test_dice"] for r in again])}
        log(f"seed {seed} stand-alone vs itself (other trial seeds): Kendall tau "
            f"{repeat['self_agreement']['kendall_tau']:.2f}")
    sampling: dict[str, Any] = {}
    for name in args.compare_sampling:  # the same topologies ranked by other supernets
        other = Specs(args, seed, dims, [f"coarse.path_sampling={name}"])
        by: dict[str, Any] = {}
        for k in keys:
            prog = CoarseProgram(other("coarse", {"key": k}))
            mine = [i for i, (owner, _) in enumerate(picked) if owner == k]
            while not prog.finished:
                prog.run_epoch()
                if prog.epoch in args.budgets:
                    row = by.setdefault(str(prog.epoch), [float("nan")] * len(picked))
                    for i in mine:
                        row[i] = shared_score(prog, picked[i][1])["patch"]
        sampling[name] = {b: {"supernet_dice": row, **_agreement(row, test)}
                          for b, row in by.items()}
        log(f"seed {seed} path sampling {name}: Kendall tau by budget "
            f"{ {b: round(r['kendall_tau'], 2) for b, r in sampling[name].items()} }")
    out["coarse"] = {
        **repeat,
        "path_sampling": specs.preset["coarse"]["path_sampling"],
        "rank_by": specs.preset["coarse"]["rank_by"],
        "compare_sampling": sampling,
        "topologies": [choice_key(c) for _, c in picked],
        "owners": [owner for owner, _ in picked],
        "standalone": alone,
        "by_budget": {str(b): {
            "supernet_dice": proxy[b]["patch"], **_agreement(proxy[b]["patch"], test),
            "supernet_per_class": [r.get("per_class") for r in scored[b]],
            **{name: {"supernet_dice" if name != "neg_loss" else "supernet_score":
                      proxy[b][name], **_agreement(proxy[b][name], test)}
               for name in PROXIES if name != "patch"},
        } for b in sorted(proxy)},
    }
    if args.coarse_only:
        return out
    coarse = programs[key]

    # 2. fine: alpha snapshots of one PC-DARTS search on the coarse pick
    fine = FineProgram(specs("fine", {"key": f"{key}/fine", "choice_json": out["coarse_pick"]}))
    snaps: dict[str, float] = {}
    while not fine.finished:
        m = fine.run_epoch()
        snaps[m["arch_json"]] = float(m["dice"])  # a later epoch's score replaces an earlier
    searched_json = fine.arch_json
    snaps.pop(searched_json, None)  # the search's pick last, with its final score
    snaps[searched_json] = float(m["dice"])
    snaps = dict(list(snaps.items())[-args.fine_snapshots:])  # the last K distinct ones
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
            width=width,
        )
        rand.append(train_alone(specs, f"random:{i}", arch.to_dict()))
        log(f"seed {seed} random {i}: test {rand[-1]['test_dice']:.3f}")
    params = sorted(r["params"] for r in rand)
    median = params[len(params) // 2] if len(params) % 2 else (
        (params[len(params) // 2 - 1] + params[len(params) // 2]) / 2)
    out["searched"] = searched
    out["random"] = rand
    out.update(against_random(searched, rand, median))
    if args.top_k > 1 and len(ranked) > 1:
        out["top_k"] = top_k_search(specs, finals, ranked[:args.top_k], searched, rand, median,
                                    log)

    # 4. does architecture matter: a U-shaped topology vs the same cells all at level 0
    if hasattr(space, "clusters"):  # C2F: same op, same width, same budget
        for name, topology in (("unet", u_topology(space)), ("flat", "-".join(
                "0" * int(space.config.cells)))):
            out[name] = train_alone(specs, name, c2f_at(space, topology, args.width,
                                                        fine.in_channels, fine.num_classes))
        log(f"seed {seed}: U-shaped {out['unet']['test_per_class']} level-0-only "
            f"{out['flat']['test_per_class']} (test Dice per class)")
    if args.paper_unet:
        from raynas.nets.baselines import unet_architecture

        unet = unet_architecture(spatial_dims=dims, in_channels=fine.in_channels,
                                 out_channels=fine.num_classes, width=args.width)
        out["paper_unet"] = train_alone(specs, "paper_unet", unet.to_dict())
    log(f"seed {seed}: searched {searched['test_dice']:.3f} percentile {out['percentile']:.0f}")
    return out


def trained_rows(record: dict[str, Any]) -> list[dict[str, Any]]:
    """Every stand-alone row of one seed's record, each network once."""
    coarse = record.get("coarse", {})
    rows = [*coarse.get("standalone", []), *coarse.get("standalone_repeat", []),
            *record.get("fine", {}).get("snapshots", []), *record.get("random", []),
            *record.get("top_k", {}).get("searched", []),
            *(record[k] for k in ("unet", "flat", "paper_unet") if k in record)]
    return list({(r["key"], r["arch_json"]): r for r in rows}.values())


def training_noise(seeds: list[dict[str, Any]]) -> dict[str, float] | None:
    """With ``--trainings`` R >= 2: the pooled SD of one training's test Dice around its
    network's mean (the same architecture, other trial seeds), over every network trained."""
    groups = [[run["test_dice"] for run in r["runs"]]
              for s in seeds for r in trained_rows(s) if len(r.get("runs", [])) >= 2]
    if not groups:
        return None
    variances = [statistics.variance(g) for g in groups]
    return {"sd_one_training": statistics.fmean(variances) ** 0.5, "networks": len(groups),
            "trainings": max(len(g) for g in groups)}


def percentile_in(value: float, others: list[float]) -> float:
    """Where ``value`` lands among ``others`` (ties count half), 0-100."""
    below = sum(o < value for o in others) + 0.5 * sum(o == value for o in others)
    return 100.0 * below / max(1, len(others))


def as_candidates(rows: list[dict[str, Any]], kind: str = "searched") -> list[Any]:
    """Stand-alone rows as :class:`raynas.strategy.selection.Candidate` (``ref``: the row)."""
    from raynas.strategy.selection import Candidate

    return [Candidate(name=r["key"], val_dice=float(r["val_dice"]), params=int(r["params"]),
                      kind=kind, test_dice=float(r.get("test_dice", float("nan"))), ref=r)
            for r in rows]


def best_by_val(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The row random search keeps: :func:`raynas.strategy.selection.best_by_val`."""
    from raynas.strategy.selection import best_by_val as pick

    return pick(as_candidates(rows)).ref


def retrain_pick(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The row a retrain stage of searched networks keeps:
    :func:`raynas.strategy.selection.best_model` (``raynas.pipeline.finish``'s pick)."""
    from raynas.strategy.selection import best_model

    return best_model(as_candidates(rows)).ref


def coarse_ranking(finals: dict[str, dict[str, Any]]) -> list[str]:
    """The coarse candidates in the order the pipeline's coarse selection ranks their trials
    (:func:`raynas.strategy.selection.rank` on each trial's best Dice and parameters)."""
    from raynas.strategy.selection import Candidate, rank

    cands = [Candidate(name=f"{k}#0", val_dice=float(m.get("best_dice", m["dice"])),
                       params=int(m.get("params", 0)), ref=k) for k, m in finals.items()]
    return [c.ref for c in rank(cands)]


def selection(record: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Picking by validation Dice among K retrained networks, K = 1 .. snapshots: the test-Dice
    percentile (among the seed's random networks) of the best of the fine search's last K
    derived architectures, against *random search at the same retrain count*: the best of K
    random networks, the mean over every K-subset of the seed's random ones. K = 1 is the
    searched network. Only what the search adds over validation selection separates the two."""
    snaps, rand = record["fine"]["snapshots"], record["random"]
    others = [r["test_dice"] for r in rand]
    out = {}
    for k in range(1, min(len(snaps), len(rand)) + 1):
        pick = retrain_pick(snaps[-k:])
        out[str(k)] = {"searched": percentile_in(pick["test_dice"], others),
                       "random_search": random_search(rand, k)}
    return out


def random_search(rand: list[dict[str, Any]], k: int) -> float:
    """Random search with K retrains: the test-Dice percentile (among all of ``rand``) of the
    best of K random networks by validation Dice, the mean over every K-subset."""
    from itertools import combinations

    others = [r["test_dice"] for r in rand]
    return statistics.fmean(percentile_in(best_by_val(list(c))["test_dice"], others)
                            for c in combinations(rand, min(k, len(rand))))


def summarize(seeds: list[dict[str, Any]]) -> dict[str, Any]:
    st = statistics

    def spread(values: list[float]) -> dict[str, float]:
        return {"mean": st.fmean(values), "std": st.pstdev(values) if len(values) > 1 else 0.0,
                "min": min(values), "max": max(values)}

    budgets = sorted({int(b) for s in seeds for b in s["coarse"]["by_budget"]})
    out: dict[str, Any] = {"coarse_by_budget": {}}
    for b in budgets:
        rows = [s["coarse"]["by_budget"][str(b)] for s in seeds
                if str(b) in s["coarse"]["by_budget"]]
        keys = ("kendall_tau", "spearman_rho", "top1_regret", "top3_regret")
        out["coarse_by_budget"][str(b)] = {k: spread([r[k] for r in rows]) for k in keys}
        for name in PROXIES[1:]:
            other = [r[name] for r in rows if name in r]
            if other:
                out["coarse_by_budget"][str(b)][name] = {
                    k: spread([r[k] for r in other]) for k in keys}
    for name in sorted({n for s in seeds for n in s["coarse"].get("compare_sampling", {})}):
        rows = [s["coarse"]["compare_sampling"][name] for s in seeds
                if name in s["coarse"].get("compare_sampling", {})]
        out.setdefault("compare_sampling", {})[name] = {
            b: {k: spread([r[b][k] for r in rows if b in r])
                for k in ("kendall_tau", "spearman_rho", "top1_regret", "top3_regret")}
            for b in rows[0]}
    selfs = [s["coarse"]["self_agreement"] for s in seeds if "self_agreement" in s["coarse"]]
    if selfs:
        out["standalone_self_agreement"] = {
            k: spread([r[k] for r in selfs]) for k in ("kendall_tau", "spearman_rho")}
    noise = training_noise(seeds)
    if noise:
        out["training_noise"] = noise
    top = budgets[-1] if budgets else None
    # the target is on the ranking the coarse stage uses (coarse.rank_by: loss or Dice)
    by_loss = seeds[0]["coarse"].get("rank_by", "dice") == "loss"
    out["coarse_ranked_by"] = "neg_loss" if by_loss else "patch"
    final = out["coarse_by_budget"].get(str(top), {})
    final = final.get("neg_loss", final) if by_loss else final
    out["targets"] = {"coarse_tau_ge_0.4": bool(final) and final["kendall_tau"]["mean"] >= 0.4}
    if any("searched" not in s for s in seeds):  # --coarse-only
        return out
    fine = [s["fine"] for s in seeds if "kendall_tau" in s["fine"]]
    if fine:
        out["fine"] = {k: spread([r[k] for r in fine]) for k in ("kendall_tau", "spearman_rho")}
    out["percentile"] = spread([s["percentile"] for s in seeds])
    ratios = [s["params_vs_random_median"] for s in seeds if s["params_vs_random_median"]]
    if ratios:
        out["params_vs_random_median"] = spread(ratios)
    pairs = [s for s in seeds if "unet" in s and "flat" in s]
    if pairs:  # does architecture matter: U-shaped minus level-0-only, mean Dice and per class
        out["unet_test_dice"] = spread([s["unet"]["test_dice"] for s in pairs])
        out["flat_test_dice"] = spread([s["flat"]["test_dice"] for s in pairs])
        out["unet_minus_flat"] = spread([s["unet"]["test_dice"] - s["flat"]["test_dice"]
                                         for s in pairs])
        classes = len(pairs[0]["unet"]["test_per_class"])
        out["unet_minus_flat_per_class"] = [
            spread([s["unet"]["test_per_class"][c] - s["flat"]["test_per_class"][c]
                    for s in pairs])
            for c in range(classes)
        ]
    picks = [selection(s) for s in seeds]
    out["selection_by_val"] = {
        k: {name: spread([p[k][name] for p in picks if k in p])
            for name in ("searched", "random_search")}
        for k in sorted({k for p in picks for k in p}, key=int)}
    out["searched_test_dice"] = spread([s["searched"]["test_dice"] for s in seeds])
    out["random_test_dice"] = spread([r["test_dice"] for s in seeds for r in s["random"]])
    out["targets"].update({
        "percentile_ge_75": out["percentile"]["mean"] >= 75.0,
        "params_le_random_median": bool(ratios) and max(ratios) <= 1.0,
    })
    tops = [s["top_k"] for s in seeds if "top_k" in s]
    if tops:  # --top-k: the best of the K searches by validation Dice, what the pipeline keeps
        picked = [top_k_pick(t) for t in tops]
        top_ratios = [t["params_vs_random_median"] for t in tops if t["params_vs_random_median"]]
        out["top_k"] = {
            "k": max(t["k"] for t in tops),
            "percentile": spread([t["percentile"] for t in tops]),
            "random_search": spread([t["random_search"] for t in tops]),
            "params_vs_random_median": spread(top_ratios) if top_ratios else None,
            "searched_test_dice": spread([r["test_dice"] for r in picked]),
            "picked_the_first_cluster": sum(t["pick"] == t["searched"][0]["key"] for t in tops),
        }
        out["targets"].update({
            "top_k_percentile_ge_75": out["top_k"]["percentile"]["mean"] >= 75.0,
            "top_k_params_le_random_median": bool(top_ratios) and max(top_ratios) <= 1.0,
        })
    if pairs:  # some class on which the U-shaped net is >= 0.1 better, on every seed
        out["targets"]["unet_beats_flat_on_a_class"] = any(
            c["mean"] >= 0.1 and c["min"] > 0 for c in out["unet_minus_flat_per_class"])
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
                 yerr=[by[b]["kendall_tau"]["std"] for b in by], marker="o",
                 label="Kendall tau, patch Dice score")
    ax1.errorbar(xs, [by[b]["spearman_rho"]["mean"] for b in by],
                 yerr=[by[b]["spearman_rho"]["std"] for b in by], marker="s",
                 label="Spearman rho, patch Dice score")
    for name, other in result["summary"].get("compare_sampling", {}).items():
        ax1.errorbar([int(b) for b in other], [other[b]["kendall_tau"]["mean"] for b in other],
                     yerr=[other[b]["kendall_tau"]["std"] for b in other], marker="^", ls=":",
                     label=f"Kendall tau, {name} path sampling")
    for name in PROXIES[1:]:
        pts = [(int(b), by[b][name]["kendall_tau"]["mean"]) for b in by if name in by[b]]
        if pts:
            ax1.plot(*zip(*pts, strict=True), marker="x", ls="--", lw=0.8,
                     label=f"Kendall tau, {name.replace('_', ' ')} score")
    ax1.axhline(0.4, color="grey", ls="--", lw=0.8)
    ax1.set_xlabel("supernet epochs")
    ax1.set_ylabel("coarse ranking agreement")
    ax1.legend()
    for s in (s for s in result["seeds"] if "searched" in s):
        ax2.scatter([r["params"] for r in s["random"]], [r["test_dice"] for r in s["random"]],
                    c="tab:grey", marker=".", label="random" if s is result["seeds"][0] else None)
        ax2.scatter([s["searched"]["params"]], [s["searched"]["test_dice"]], c="tab:blue",
                    marker="o", label="searched" if s is result["seeds"][0] else None)
        if "top_k" in s:  # the pipeline's pick: best of the K searches by validation Dice
            pick = top_k_pick(s["top_k"])
            ax2.scatter([pick["params"]], [pick["test_dice"]], facecolors="none",
                        edgecolors="tab:green", marker="D", s=70,
                        label=(f"best of top-{s['top_k']['k']} searches (validation)"
                               if s is result["seeds"][0] else None))
        if "unet" in s:
            ax2.scatter([s["unet"]["params"]], [s["unet"]["test_dice"]], c="tab:orange",
                        marker="s", label="U-shaped" if s is result["seeds"][0] else None)
        if "flat" in s:
            ax2.scatter([s["flat"]["params"]], [s["flat"]["test_dice"]], c="tab:red", marker="x",
                        label="level 0 only" if s is result["seeds"][0] else None)
    ax2.set_xscale("log")
    ax2.set_xlabel("parameters")
    ax2.set_ylabel("test Dice")
    ax2.legend(fontsize="small", framealpha=0.6)
    ranked = result["summary"].get("coarse_ranked_by", "patch").replace("_", " ")
    fig.suptitle(f"{result['config']['space']} on {result['config']['dataset']} "
                 f"(the coarse stage ranks by the {ranked} score)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def _seed_job(args: argparse.Namespace, t0: float, seed: int) -> dict[str, Any]:
    """One seed in a worker process (``--jobs``): its own thread count, logs to stderr."""
    import torch

    torch.set_num_threads(args.threads)

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - t0:7.1f}s] {msg}", file=sys.stderr, flush=True)

    return run_seed(args, seed, log)


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

    if args.jobs > 1 and len(args.seeds) > 1:  # one process per seed, each with its threads
        import multiprocessing as mp
        from functools import partial

        with mp.get_context("spawn").Pool(min(args.jobs, len(args.seeds))) as pool:
            seeds = pool.map(partial(_seed_job, args, t0), args.seeds)
    else:
        seeds = [run_seed(args, s, log) for s in args.seeds]
    cfg = {k: (str(v) if isinstance(v, Path) else [str(p) for p in v] if k == "standalone_from"
               else v) for k, v in vars(args).items()}
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
