"""The search against random search at equal cost (issue 23 point 3), per seed and paired.

Per seed, each **strategy** runs the search as ``raynas search`` runs it, Ray-free
(:mod:`raynas.bench.recipe`): the coarse stage's candidates (``supernet@E``: the cluster
supernets, ``coarse.epochs = E``; ``asha@E``: ``coarse.asha_samples`` topologies trained
stand-alone), each stage's trials one after another under the stage's ASHA rule, ``top_k``
survivors by the pipeline's rule, one fine search each, ``top_k`` derived architectures, each
retrained with the retrain recipe. Its **seconds** are the sum of every trial's CPU seconds
(coarse + fine + retrain, one thread, this machine; :data:`raynas.bench.recipe.COST_CLOCK`).

**Random search** draws architectures from the same space in the order the search's random
controls draw them (``space.sample_architecture(seed=control_seed(seed, i))``) and retrains them
with the same recipe: one pool per seed, long enough for the most expensive strategy. A strategy
is compared with two prefixes of it: **equal cost**, as many networks as fit in the strategy's
seconds (their measured seconds summed), and **count matched**, as many as the search retrains.
Both sides are judged the same way, from :mod:`raynas.strategy.selection`:

- ``hypervolume``: the validation-selected frontier (:func:`~raynas.strategy.selection.
  pareto_front` on validation Dice and parameters) measured at test Dice, the area it dominates
  in (test Dice up, log10 params down) from :data:`raynas.bench.stats.HV_REFERENCE`;
- ``best_test_dice``: test Dice of the best network by validation Dice (the search's:
  :func:`~raynas.strategy.selection.best_model`; random search's: ``best_by_val``);
- ``matched_size``: the search's best network's test Dice minus the mean test Dice of the random
  networks within +-25 % of its parameters (``None`` when there is none: counted, never 0).

U-Net / DynUNet are trained with the same recipe beside (the retrain stage's baselines).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from raynas.bench.recipe import Recipe, Specs, run_coarse, run_fine, survivors, train_alone
from raynas.bench.stats import HV_REFERENCE, hypervolume, paired, spread

__all__ = ["Plan", "compare", "equal_cost_prefix", "per_seed", "run_seed", "strategies",
           "summarize"]

MATCH = 0.25  # +-25 % of the searched network's parameters


@dataclass(frozen=True)
class Plan:
    """One equal-cost experiment: the recipe, the strategies and what is trained beside."""

    recipe: Recipe
    budgets: tuple[int, ...] = (8,)  # coarse epochs of each ``supernet@E`` strategy
    asha_budgets: tuple[int, ...] = ()  # coarse epochs of each ``asha@E`` strategy
    asha_samples: int = 8  # coarse.asha_samples: stand-alone topologies under ASHA
    baselines: tuple[str, ...] = ("unet", "dynunet")
    max_pool: int = 40  # random networks per seed at most
    pool_margin: float = 1.0  # the pool covers this share of the dearest strategy's seconds
    resamples: int = 2000

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, with ``retrain_recipe``: what the random pool and baselines depend on."""
        r = self.recipe.to_dict()
        retrain = {k: v for k, v in r.items()
                   if k not in ("supernet_epochs", "fine_epochs", "top_k", "extra",
                                "survivor_rule")}
        retrain["extra"] = [o for o in r["extra"] if o.startswith(("data.", "retrain."))]
        return {**dataclasses.asdict(self), "recipe": r,
                "retrain_recipe": {**retrain, "baselines": list(self.baselines)},
                "hv_reference": {"test_dice": HV_REFERENCE[0],
                                 "log10_params": HV_REFERENCE[1]}}


def strategies(plan: Plan) -> dict[str, list[str]]:
    """``{name: preset overrides}``: ``supernet@E`` for every supernet budget, ``asha@E`` for
    every ASHA budget (``coarse.strategy``, ``coarse.epochs``, ``coarse.asha_samples``)."""
    out = {f"supernet@{b}": ["coarse.strategy=supernet", f"coarse.epochs={b}"]
           for b in plan.budgets}
    out.update({f"asha@{b}": ["coarse.strategy=asha", f"coarse.epochs={b}",
                              f"coarse.asha_samples={plan.asha_samples}"]
                for b in plan.asha_budgets})
    return out


Log = Callable[[str], None]


def _search(plan: Plan, seed: int, name: str, overrides: list[str], dims: int, space: Any,
            cache: dict[tuple[str, str], dict[str, Any]], log: Log) -> dict[str, Any]:
    """One strategy's search: coarse, top-k, fine, top-k, retrain (the pipeline's order)."""
    specs = Specs(plan.recipe, seed, dims, overrides)
    rule = plan.recipe.survivor_rule
    coarse = run_coarse(specs, space)
    kept = survivors(specs, "coarse", coarse, "choice_json", rule)
    fine = run_fine(specs, kept)
    derived = survivors(specs, "fine", fine, "arch_json", rule)
    rows = []
    for i, r in enumerate(derived):
        arch_json, key = str(r.last["arch_json"]), f"searched{i}"
        if (key, arch_json) not in cache:  # same key and arch: the same training (same seed)
            cache[key, arch_json] = train_alone(specs, key, arch_json)
        rows.append({**cache[key, arch_json], "fine_trial": r.candidate})
    seconds = {"coarse": sum(r.seconds for r in coarse), "fine": sum(r.seconds for r in fine),
               "retrain": sum(r["seconds"] for r in rows)}
    log(f"seed {seed} {name}: survivors {[r.candidate for r in kept]}, searched test "
        f"{[round(r['test_dice'], 3) for r in rows]}, {sum(seconds.values()):.0f} s")

    def trials(records: list[Any]) -> list[dict[str, Any]]:
        return [{"key": r.candidate, "best_dice": r.best_dice, "status": r.status,
                 "epochs": r.epochs, "topology": r.last.get("topology"),
                 "params": r.last.get("params"), "best_rank_score": r.last.get(
                     "best_rank_score"), "seconds": round(r.seconds, 2)} for r in records]

    return {"seconds": {k: round(v, 2) for k, v in seconds.items()},
            "total_seconds": round(sum(seconds.values()), 2), "overrides": overrides,
            "coarse": trials(coarse), "coarse_survivors": [r.candidate for r in kept],
            "fine": trials(fine), "searched": rows}


def run_seed(plan: Plan, seed: int, log: Log = lambda _m: None,
             reuse: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every strategy's search, the random pool and the baselines of one seed. ``reuse``: this
    seed's record in an earlier result of the same code, retrain recipe and data (checked by
    the caller, :func:`raynas.bench.experiment.reusable_seeds`): its random networks and
    baselines are taken (``reused: true``) and the pool is only extended where needed."""
    from raynas.pipeline.controls import control_seed
    from raynas.spaces import load_space

    space = load_space(plan.recipe.space)
    dims = int(space.config.spatial_dims)
    cache: dict[tuple[str, str], dict[str, Any]] = {}
    out: dict[str, Any] = {"seed": seed, "strategies": {}}
    for name, overrides in strategies(plan).items():
        out["strategies"][name] = _search(plan, seed, name, overrides, dims, space, cache, log)
    specs = Specs(plan.recipe, seed, dims)
    first = json.loads(next(iter(out["strategies"].values()))["searched"][0]["arch_json"])
    io = {"in_channels": int(first["in_channels"]), "out_channels": int(first["out_channels"])}
    width = None if getattr(space, "keeps_searched_width", False) else plan.recipe.width
    need = plan.pool_margin * max(s["total_seconds"] for s in out["strategies"].values())
    count = max(len(s["searched"]) for s in out["strategies"].values())
    pool = [{**r, "reused": True} for r in (reuse or {}).get("random", [])]
    while len(pool) < plan.max_pool and (sum(r["seconds"] for r in pool) < need
                                         or len(pool) < count):
        i = len(pool)
        arch = space.sample_architecture(seed=control_seed(seed, i), width=width, **io)
        pool.append(train_alone(specs, f"random{i}", arch.to_dict()))
    out["random"] = pool
    log(f"seed {seed} random pool: {len(pool)} networks, "
        f"{sum(r['seconds'] for r in pool):.0f} s for {need:.0f} s")
    earlier = (reuse or {}).get("baselines", {})
    out["baselines"] = {
        name: {**earlier[name], "reused": True} if name in earlier
        else train_alone(specs, f"baseline-{name}", _baseline(specs, name, dims))
        for name in plan.baselines}
    return out


def _baseline(specs: Specs, name: str, dims: int) -> str:
    """Baseline ``name``'s architecture JSON as the search's retrain stage builds it."""
    from pathlib import Path
    from types import SimpleNamespace

    from raynas.config import Preset
    from raynas.data import open_dataset
    from raynas.pipeline.baselines import baseline_architecture

    preset, r = Preset.model_validate(specs.preset), specs.recipe
    ds = open_dataset(r.dataset, Path(r.data_root) if r.data_root else None, seed=specs.seed,
                      synthetic_cases=preset.data.synthetic_cases, limit_cases=preset.data.cases)
    data = SimpleNamespace(info=ds.info, in_channels=ds.in_channels, num_classes=ds.num_classes)
    return baseline_architecture(name, preset=preset, dataset=data, spatial_dims=dims).to_json()


def _candidates(rows: list[dict[str, Any]], kind: str) -> list[Any]:
    from raynas.strategy.selection import Candidate

    return [Candidate(name=r["key"], val_dice=float(r["val_dice"]), params=int(r["params"]),
                      kind=kind, test_dice=float(r["test_dice"]), ref=r) for r in rows]


def _frontier_hv(rows: list[dict[str, Any]], kind: str) -> float | None:
    from raynas.strategy.selection import pareto_front

    if not rows:
        return None
    front = pareto_front(_candidates(rows, kind))
    return hypervolume([(c.test_dice, math.log10(c.params)) for c in front])


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else float(a - b)


def compare(searched: list[dict[str, Any]], random: list[dict[str, Any]]) -> dict[str, Any]:
    """One seed's figures of the search against random search's networks ``random`` (an empty
    list leaves every random-side figure ``None``)."""
    from raynas.strategy.selection import best_by_val, best_model

    best = best_model(_candidates(searched, "searched"))
    pick = best_by_val(_candidates(random, "random"))
    lo, hi = (1 - MATCH) * best.params, (1 + MATCH) * best.params
    near = [r["test_dice"] for r in random if lo <= r["params"] <= hi]
    hv_s, hv_r = _frontier_hv(searched, "searched"), _frontier_hv(random, "random")
    return {
        "random_networks": len(random),
        "random_seconds": round(sum(r["seconds"] for r in random), 2),
        "hypervolume": {"search": hv_s, "random": hv_r, "diff": _diff(hv_s, hv_r)},
        "best_test_dice": {"search": best.test_dice, "search_key": best.name,
                           "search_params": best.params,
                           "random": None if pick is None else pick.test_dice,
                           "random_key": None if pick is None else pick.name,
                           "diff": _diff(best.test_dice, None if pick is None
                                         else pick.test_dice)},
        "matched_size": {"random_within_25pct": len(near),
                         "random_mean": sum(near) / len(near) if near else None,
                         "diff": _diff(best.test_dice, sum(near) / len(near) if near else None)},
    }


def equal_cost_prefix(pool: list[dict[str, Any]], seconds: float) -> list[dict[str, Any]]:
    """The longest prefix of the pool (in sampling order) whose seconds sum to ``seconds`` or
    less: random search given the search's compute."""
    out, spent = [], 0.0
    for r in pool:
        if spent + r["seconds"] > seconds:
            break
        out.append(r)
        spent += r["seconds"]
    return out


def per_seed(record: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per strategy: ``equal_cost`` and ``count_matched`` comparisons of one seed's record."""
    pool = record["random"]
    out = {}
    for name, s in record["strategies"].items():
        same = pool[: len(s["searched"])]
        out[name] = {"equal_cost": compare(s["searched"],
                                           equal_cost_prefix(pool, s["total_seconds"])),
                     "count_matched": compare(s["searched"], same if len(same) == len(
                         s["searched"]) else [])}
    return out


def summarize(seeds: list[dict[str, Any]], resamples: int = 2000) -> dict[str, Any]:
    """Per strategy, paired over seeds: hypervolume difference (mean, seeded bootstrap 95 %
    interval), best-by-validation test-Dice wins, matched-size difference, seconds."""
    comps = [per_seed(s) for s in seeds]
    out: dict[str, Any] = {}
    for name in seeds[0]["strategies"]:
        entry: dict[str, Any] = {
            "seconds_per_seed": spread(s["strategies"][name]["total_seconds"] for s in seeds)}
        for variant in ("equal_cost", "count_matched"):
            rows = [c[name][variant] for c in comps]
            best = [r["best_test_dice"]["diff"] for r in rows]
            wins = sum(d is not None and d > 0 for d in best)
            entry[variant] = {
                "hypervolume_diff": paired([r["hypervolume"]["diff"] for r in rows],
                                           resamples=resamples),
                "best_test_dice_wins": [wins, sum(d is not None for d in best)],
                "best_test_dice_diff": paired(best, resamples=resamples),
                "matched_size_diff": paired([r["matched_size"]["diff"] for r in rows],
                                            resamples=resamples),
                "random_networks": spread(r["random_networks"] for r in rows),
            }
        out[name] = entry
    base = {n: spread(s["baselines"][n]["test_dice"] for s in seeds)
            for n in seeds[0].get("baselines", {})}
    primary = [n for n in out if n.startswith("supernet@")][-1]  # the largest supernet budget
    return {"primary": primary, "equal_cost": out[primary]["equal_cost"],
            "count_matched": out[primary]["count_matched"],
            "strategies": out, "baselines_test_dice": base,
            "random_test_dice": spread(r["test_dice"] for s in seeds for r in s["random"])}
