"""The coarse stage's evolution on toy objectives: no training, no torch in the strategy.

The landscape lives on a real cluster of the default C2F space (186 topologies of 12 cells from
the space's enumeration): a global peak at a hidden target topology, a lower decoy peak, and
deterministic per-topology noise. With 24 score calls (13 % of the cluster), evolution found the
optimum in 33-45 of 50 seeds per cluster, random sampling in 8 (measured over all 8 clusters:
evolution 251 / 400, evolution without crossover 231, the old leaders-plus-nearest-neighbour
loop 133, random sampling 64).
"""

from __future__ import annotations

import random
import subprocess
import sys

import pytest

from raynas.strategy import evolve, hamming, leaders, sample_pool

SEEDS = 50
BUDGET = 24


@pytest.fixture(scope="module")
def clusters() -> list[list[tuple[int, ...]]]:
    from raynas.spaces import load_space

    return load_space("c2f").clusters


def landscape(cluster: list[tuple[int, ...]], seed: int):
    """Two peaks (the target wins by 1.5) plus noise in [0, 0.5): a known optimum."""
    r = random.Random(f"landscape:{seed}")  # not the search's seed: no shared draws
    target, decoy = r.sample(cluster, 2)
    noise = {t: r.random() for t in cluster}

    def score(t: tuple[int, ...]) -> float:
        return max(-hamming(t, target), -hamming(t, decoy) - 1.5) + 0.5 * noise[t]

    return score, target


@pytest.mark.parametrize("index", [0, 7])
def test_evolution_finds_the_optimum_more_often_than_random_sampling(clusters, index):
    cluster = clusters[index]
    assert len(cluster) >= 180
    evo_hits = random_hits = 0
    for seed in range(SEEDS):
        score, target = landscape(cluster, seed)
        assert max(cluster, key=score) == target
        result = evolve(cluster, score, budget=BUDGET, population=4, rng=random.Random(seed))
        assert result.evaluations == BUDGET
        evo_hits += result.best == target
        sample = random.Random(seed).sample(cluster, BUDGET)
        random_hits += max(sample, key=score) == target
    assert random_hits <= 15, random_hits  # ~ 50 * 24 / 186
    assert evo_hits >= 30, (evo_hits, random_hits)
    assert evo_hits >= 3 * random_hits, (evo_hits, random_hits)


def test_each_genome_is_scored_once_within_the_budget_and_known_scores_are_reused():
    genomes = [(a, b, c) for a in range(4) for b in range(4) for c in range(3)]
    calls: list[tuple[int, ...]] = []

    def score(g):
        calls.append(g)
        return -sum(g)

    known = {(3, 3, 2): -8.0, (0, 0, 1): -1.0}
    result = evolve(genomes, score, budget=10, population=4, rng=random.Random(1), known=known)
    assert len(calls) == result.evaluations == 10
    assert len(set(calls)) == 10 and not set(calls) & set(known)
    assert set(result.scores) == set(calls) | set(known)
    assert result.best_score == max(result.scores.values())
    assert list(result.scores) == [g for g in genomes if g in result.scores]


def test_a_budget_as_large_as_the_set_scores_everything_and_finds_the_optimum():
    genomes = [(a, b) for a in range(5) for b in range(5)]
    result = evolve(genomes, lambda g: -((g[0] - 4) ** 2) - (g[1] - 2) ** 2, budget=100,
                    population=3, rng=random.Random(0))
    assert result.evaluations == len(genomes) and result.best == (4, 2)


def test_budget_zero_ranks_the_known_scores_only():
    result = evolve([(0,), (1,), (2,)], lambda g: 1 / 0, budget=0, population=2,
                    rng=random.Random(0), known={(1,): 0.5, (2,): 0.7})
    assert (result.best, result.evaluations) == ((2,), 0)


def test_same_seed_same_search():
    genomes = [(a, b, c) for a in range(5) for b in range(5) for c in range(5)]
    runs = [
        evolve(genomes, lambda g: -hamming(g, (1, 4, 2)), budget=15, population=5,
               rng=random.Random(7))
        for _ in range(2)
    ]
    assert runs[0] == runs[1]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"budget": -1}, "budget"),
        ({"budget": 1.5}, "budget"),
        ({"population": 0}, "population"),
        ({"tournament": 0}, "tournament"),
        ({"crossover": 1.5}, "crossover"),
        ({"known": {(9,): 1.0}}, "not among the genomes"),
        ({"budget": 0}, "nothing scored"),
    ],
)
def test_bad_arguments_name_the_option(kwargs, match):
    options = {"budget": 3, "population": 2, "rng": random.Random(0), **kwargs}
    with pytest.raises(ValueError, match=match):
        evolve([(0,), (1,)], lambda g: 0.0, **options)


def test_empty_or_repeated_genomes_are_refused():
    with pytest.raises(ValueError, match="empty"):
        evolve([], lambda g: 0.0, budget=1, population=1, rng=random.Random(0))
    with pytest.raises(ValueError, match="must not repeat"):
        evolve([(0,), (0,)], lambda g: 0.0, budget=1, population=1, rng=random.Random(0))


def test_leaders_and_pool():
    scores = {(0,): 0.2, (1,): 0.9, (2,): 0.9, (3,): 0.1}
    assert leaders(scores, 3) == [(1,), (2,), (0,)]
    assert leaders(scores, 2, order={(2,): 0, (1,): 1}) == [(2,), (1,)]
    genomes = [(i,) for i in range(10)]
    pool = sample_pool(genomes, scores, size=6, rng=random.Random(0))
    assert pool[:3] == [(1,), (2,), (0,)] and len(set(pool)) == 6
    assert len(sample_pool(genomes, {}, size=20, rng=random.Random(0))) == 10
    assert (42,) not in sample_pool(genomes, {(42,): 1.0, (3,): 0.1}, size=2, rng=random.Random(0))
    assert sample_pool(genomes, {(42,): 1.0, (3,): 0.1}, size=2, rng=random.Random(0))[0] == (3,)


def test_strategy_imports_without_torch_ray_and_mlflow():
    code = (
        "import sys\n"
        "for name in ('torch', 'ray', 'mlflow', 'monai', 'numpy'):\n"
        "    sys.modules[name] = None\n"
        "import random\n"
        "from raynas.strategy import evolve\n"
        "r = evolve([(0,), (1,), (2,)], lambda g: g[0], budget=3, population=2,\n"
        "           rng=random.Random(0))\n"
        "assert r.best == (2,), r\n"
        "print('ok')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"
