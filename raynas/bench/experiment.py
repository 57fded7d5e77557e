"""Runs the equal-cost experiment over seeds (in worker processes) and writes its stamped result.

:func:`run_experiment` runs :func:`raynas.bench.equal_cost.run_seed` for every seed (``jobs``
spawned processes, ``threads`` torch threads each), summarizes them
(:func:`raynas.bench.equal_cost.summarize`), stamps the result with its provenance
(:func:`raynas.bench.provenance.stamp`: commit, code digest, config, dataset digest, seeds) and
writes it with :func:`raynas.bench.provenance.write_result`, then draws
:func:`plot` beside it (``.png``).
"""

from __future__ import annotations

import math
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

from raynas.bench.equal_cost import Plan, per_seed, run_seed, summarize

__all__ = ["headline", "plot", "reusable_seeds", "run_experiment", "targets"]


def _log(t0: float, msg: str) -> None:
    print(f"[{time.perf_counter() - t0:7.1f}s] {msg}", file=sys.stderr, flush=True)


def reusable_seeds(path: Path, now: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """Per seed, the records of the earlier result ``path`` whose random networks and baselines
    may stand in for this run's: same code (commit or code digest), same ``retrain_recipe`` and
    dataset digest (:func:`raynas.bench.provenance.why_not_reusable`), else one clear line."""
    import json

    from raynas.bench.provenance import why_not_reusable
    from raynas.errors import UserError

    try:
        earlier = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"--reuse {path}: cannot read it ({exc})") from None
    why = why_not_reusable(earlier.get("stamp"), now, config_keys=["retrain_recipe"])
    if why is not None:
        raise UserError(f"--reuse {path}: not reusable: {why}")
    return {int(r["seed"]): r for r in earlier.get("seeds", [])}


def _seed_job(plan: Plan, threads: int, t0: float, reuse: dict[int, dict[str, Any]],
              seed: int) -> dict[str, Any]:
    """One seed in a worker process: its own torch thread count, its log lines to stderr."""
    import torch

    torch.set_num_threads(threads)
    start = time.perf_counter()
    record = run_seed(plan, seed, partial(_log, t0), reuse.get(seed))
    record["wall_seconds"] = round(time.perf_counter() - start, 1)
    from raynas.bench.provenance import loaded_paths

    record["_code_loaded"] = loaded_paths()  # the parent's stamp covers the code this seed ran
    return record


def run_experiment(plan: Plan, *, seeds: list[int], out: Path, jobs: int = 1, threads: int = 1,
                   smoke_test: bool = False, script: str = "benchmarks/equal_cost.py",
                   reuse: Path | None = None) -> int:
    """Every seed, the summary, the stamped JSON at ``out`` and its plot; returns 0. ``reuse``:
    an earlier result whose random networks and baselines are reused (:func:`reusable_seeds`)."""
    import torch

    from raynas.bench.datasets import dataset_digest
    from raynas.bench.provenance import Timer, note_code, stamp, write_result

    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    timer = Timer()
    r = plan.recipe
    digests = [dataset_digest(r.dataset, seed=s, cases=r.cases, data_root=r.data_root,
                              limit_cases=r.cases) for s in seeds]
    config = {**plan.to_dict(), "jobs": jobs, "threads": threads, "smoke_test": smoke_test,
              "reuse": str(reuse) if reuse else None}
    st = stamp(config, dataset=r.dataset, dataset_digest=",".join(sorted(set(digests))),
               seeds=list(seeds), script=script)
    earlier = reusable_seeds(reuse, st) if reuse else {}
    records: list[dict[str, Any]] = []

    def write(complete: bool) -> dict[str, Any]:
        """The result over the seeds done so far (``complete``: all of them), written at once:
        a run cut short still leaves every finished seed in the file."""
        done = sorted(records, key=lambda rec: seeds.index(rec["seed"]))
        summary = summarize(done, resamples=plan.resamples)
        summary["targets"] = targets(summary)
        for record in done:
            record["compare"] = per_seed(record)
        result = {
            "smoke_test": bool(smoke_test),
            "complete": complete,
            "seeds_done": [rec["seed"] for rec in done],
            "stamp": st,
            "config": config,
            "seconds": {**timer.seconds(), "wall_so_far": round(time.perf_counter() - t0, 1)},
            "headline": headline(summary),
            "summary": summary,
            "seeds": done,
        }
        write_result(out, _nulls(result))
        try:
            plot(result, out.with_suffix(".png"))
        except ImportError as err:  # matplotlib is a dependency; a bare environment may lack it
            _log(t0, f"no plot: {err}")
        return result

    job = partial(_seed_job, plan, threads, t0, earlier)
    with timer.part("seeds"):
        if jobs > 1 and len(seeds) > 1:
            import multiprocessing as mp

            with mp.get_context("spawn").Pool(min(jobs, len(seeds))) as pool:
                for record in pool.imap_unordered(job, seeds, chunksize=1):
                    note_code(record.pop("_code_loaded", ()))
                    records.append(record)
                    if len(records) < len(seeds):
                        write(complete=False)
        else:
            for s in seeds:
                record = job(s)
                note_code(record.pop("_code_loaded", ()))
                records.append(record)
                if len(records) < len(seeds):
                    write(complete=False)
    result = write(complete=True)
    main = result["summary"]["equal_cost"]
    _log(t0, f"wrote {out}: {result['summary']['primary']} hypervolume diff "
             f"{main['hypervolume_diff']}, best-by-val wins {main['best_test_dice_wins']}")
    return 0


def headline(summary: dict[str, Any]) -> dict[str, Any]:
    """Per strategy and comparison, the figures a reader looks for first (one flat row each:
    the docs' table)."""
    out: dict[str, Any] = {}
    for name, s in summary["strategies"].items():
        for variant in ("equal_cost", "count_matched"):
            v = s[variant]
            hv, ci = v["hypervolume_diff"], v["hypervolume_diff"]["ci95"] or [None, None]
            wins, seeds = v["best_test_dice_wins"]
            out[f"{name} {variant}"] = {
                "hv_diff_mean": hv["mean"], "hv_diff_ci95_low": ci[0], "hv_diff_ci95_high": ci[1],
                "best_by_val_wins": f"{wins}/{seeds}",
                "best_test_dice_diff_mean": v["best_test_dice_diff"]["mean"],
                "matched_size_diff_mean": v["matched_size_diff"]["mean"],
                "matched_size_seeds": v["matched_size_diff"]["n_seeds"],
                "random_networks_mean": v["random_networks"]["mean"],
                "search_seconds_mean": s["seconds_per_seed"]["mean"],
            }  # fmt: skip
    return out


def targets(summary: dict[str, Any]) -> dict[str, Any]:
    """Issue 23's targets per strategy, at equal cost: the paired hypervolume difference's 95 %
    interval above 0, and the best-by-validation network beating random search's on >= 70 % of
    the seeds (7 of 10)."""
    out: dict[str, Any] = {}
    for name, s in summary["strategies"].items():
        v = s["equal_cost"]
        ci = v["hypervolume_diff"]["ci95"]
        wins, seeds = v["best_test_dice_wins"]
        out[f"{name}_hv_diff_ci95_low_above_0"] = {
            "value": ci[0] if ci else None, "target": 0.0, "met": bool(ci and ci[0] > 0)}
        out[f"{name}_best_by_val_wins"] = {
            "value": f"{wins}/{seeds}", "target": "7/10",
            "met": bool(seeds and wins >= 0.7 * seeds)}
    return out


def _nulls(value: Any) -> Any:
    """A copy with every non-finite float as ``None`` (a stand-alone row whose test Dice was
    not measured): the result file stores null, never NaN."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _nulls(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_nulls(v) for v in value]
    return value


def plot(result: dict[str, Any], path: Path) -> None:
    """Left: per-strategy hypervolume difference (search minus random search; dots per seed,
    the mean and its 95 % interval), equal cost and count matched. Right: every network of
    every seed, test Dice against parameters (searched, random, baselines)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.2))
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.subplots(1, 2)
    strategies = list(result["summary"]["strategies"])
    for j, (variant, colour) in enumerate((("equal_cost", "tab:blue"),
                                           ("count_matched", "tab:orange"))):
        for i, name in enumerate(strategies):
            x = i + (j - 0.5) * 0.3
            diffs = [s["compare"][name][variant]["hypervolume"]["diff"] for s in result["seeds"]]
            ys = [d for d in diffs if d is not None]
            ax1.scatter([x] * len(ys), ys, s=10, c=colour, alpha=0.5)
            hv = result["summary"]["strategies"][name][variant]["hypervolume_diff"]
            if hv["mean"] is not None:
                lo, hi = hv["ci95"] or (hv["mean"], hv["mean"])
                ax1.errorbar([x], [hv["mean"]], yerr=[[hv["mean"] - lo], [hi - hv["mean"]]],
                             fmt="D", c=colour, capsize=4,
                             label=variant.replace("_", " ") if i == 0 else None)
    ax1.axhline(0.0, color="grey", lw=0.8, ls="--")
    ax1.set_xticks(range(len(strategies)), strategies)
    ax1.set_ylabel("hypervolume: search - random search")
    ax1.legend(fontsize="small")
    marks = {"searched": ("o", "tab:blue"), "random": (".", "tab:grey"),
             "baseline": ("s", "tab:orange")}
    seen: set[str] = set()
    for s in result["seeds"]:
        groups = {"random": s["random"], "baseline": list(s["baselines"].values()),
                  "searched": [r for st in s["strategies"].values() for r in st["searched"]]}
        for kind, rows in groups.items():
            pts = [(r["params"], r["test_dice"]) for r in rows if r["test_dice"] is not None]
            if pts:
                m, c = marks[kind]
                ax2.scatter(*zip(*pts, strict=True), marker=m, c=c, s=18, alpha=0.7,
                            label=None if kind in seen else kind)
                seen.add(kind)
    ax2.set_xscale("log")
    ax2.set_xlabel("parameters")
    ax2.set_ylabel("test Dice")
    ax2.legend(fontsize="small")
    cfg = result["config"]["recipe"]
    fig.suptitle(f"{cfg['space']} on {cfg['dataset']}: the search against random search at "
                 f"equal cost ({len(result['seeds'])} seeds)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
