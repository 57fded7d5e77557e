"""The search against random search at equal cost, per seed and paired over seeds.

Thin script over :mod:`raynas.bench.equal_cost` (read its docstring for what is measured): per
seed, the search as ``raynas search`` runs it (Ray-free stage programs, the pipeline's selection)
at each supernet budget and with ``coarse.strategy: asha``, a random-search pool from the same
space with the same retrain recipe, U-Net / DynUNet beside; ``summary.equal_cost`` /
``summary.count_matched`` hold the paired hypervolume difference (seeded bootstrap 95 %
interval) and the best-by-validation wins.

Usage:
    python benchmarks/equal_cost.py --smoke-test --out /tmp/e.json           # CI, ~1 min
    nice -n 5 python benchmarks/equal_cost.py --space c2f_small --seeds 0 1 2 3 4 5 6 7 8 9 \\
        --budgets 3 6 12 --jobs 2 --out benchmarks/results/equal_cost_c2f_small.json

Writes the JSON (``--out``) and a plot beside it (``.png``).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--smoke-test", action="store_true", help="tiny budget (CI, ~1 min)")
    p.add_argument("--dataset", default="synthetic_hard")
    p.add_argument("--data-root", default=None)
    p.add_argument("--space", default="c2f_small", help="c2f_small | thrifty_small | ...")
    p.add_argument("--seeds", type=int, nargs="+", default=list(range(10)))
    p.add_argument("--budgets", type=int, nargs="+", default=[6],
                   help="supernet epochs (coarse.epochs), one supernet strategy each")
    p.add_argument("--asha-budgets", type=int, nargs="*", default=[],
                   help="coarse epochs of each asha strategy (coarse.strategy=asha)")
    p.add_argument("--asha-samples", type=int, default=8, help="coarse.asha_samples")
    p.add_argument("--cases", type=int, default=12)
    p.add_argument("--width", type=int, default=8)
    p.add_argument("--fine-epochs", type=int, default=6)
    p.add_argument("--epochs", type=int, default=30, help="retrain epochs (every network)")
    p.add_argument("--steps", type=int, default=6, help="steps per epoch, every stage")
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--patch", type=int, nargs=3, default=[32, 32, 16])
    p.add_argument("--top-k", type=int, default=2, help="coarse.top_k = fine.top_k")
    p.add_argument("--survivors", choices=("val", "pareto"), default="val",
                   help="val: the pipeline's top_k (validation Dice); pareto: a parameter-aware "
                        "pick (strategy.selection.top_k_pareto), the idea tried")
    p.add_argument("--baselines", nargs="*", default=["unet", "dynunet"])
    p.add_argument("--max-pool", type=int, default=40, help="random networks per seed at most")
    p.add_argument("--set", dest="overrides", action="append", default=[],
                   help="extra preset override (section.key=value), repeatable")
    p.add_argument("--reuse", type=Path, default=None,
                   help="an earlier result of the same code, retrain recipe and data: its random "
                        "networks and baselines are reused (checked; refused with one line)")
    p.add_argument("--jobs", type=int, default=1, help="seeds in parallel processes")
    p.add_argument("--threads", type=int, default=1, help="torch threads per process")
    p.add_argument("--out", type=Path, default=HERE / "results" / "equal_cost.json")
    args = p.parse_args(argv)
    if args.smoke_test:
        args.seeds = args.seeds[:2] if args.seeds != list(range(10)) else [0, 1]
        args.budgets, args.cases, args.width, args.fine_epochs = [1, 2], 6, 2, 1
        args.asha_budgets, args.asha_samples = [2], 3
        args.epochs, args.steps, args.baselines, args.max_pool = 2, 1, ["unet"], 4
    if min([*args.budgets, *args.asha_budgets]) < 1 or min(args.top_k, args.asha_samples) < 1:
        p.error("--budgets, --asha-budgets, --asha-samples and --top-k must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    from raynas.bench.equal_cost import Plan
    from raynas.bench.experiment import run_experiment
    from raynas.bench.recipe import Recipe
    from raynas.errors import UserError

    recipe = Recipe(space=args.space, dataset=args.dataset, data_root=args.data_root,
                    cases=args.cases, width=args.width, supernet_epochs=max(args.budgets),
                    fine_epochs=args.fine_epochs, epochs=args.epochs, steps=args.steps,
                    lr=args.lr, patch=tuple(args.patch), top_k=args.top_k,
                    survivor_rule=args.survivors,
                    extra=tuple(args.overrides))
    plan = Plan(recipe=recipe, budgets=tuple(sorted(set(args.budgets))),
                asha_budgets=tuple(sorted(set(args.asha_budgets))), asha_samples=args.asha_samples,
                baselines=tuple(args.baselines), max_pool=args.max_pool)
    try:
        return run_experiment(plan, seeds=args.seeds, out=args.out, jobs=args.jobs,
                              threads=args.threads, smoke_test=args.smoke_test,
                              reuse=args.reuse)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
