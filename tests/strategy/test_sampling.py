"""Path samplers of the single-path supernet: fair sampling evens out the shared slots' updates."""

from __future__ import annotations

import json
import random
from collections import Counter

import pytest

from raynas.spaces import load_space
from raynas.strategy import FairSampler, UniformSampler, make_sampler


def _slot_counts(sampler, steps: int) -> Counter:
    counts: Counter = Counter()
    for _ in range(steps):
        counts.update(enumerate(sampler.next()))
    return counts


def test_fair_sampling_evens_out_slot_updates_on_a_real_cluster() -> None:
    """c2f_small's largest cluster: uniform sampling trains some cells 7x as often as others,
    fair sampling (path term included) under half that spread, slot-only fair sampling evenly."""
    cluster = load_space("c2f_small").clusters[0]
    always = {(i, g) for i, g in enumerate(cluster[0]) if all(t[i] == g for t in cluster)}
    uniform = _slot_counts(UniformSampler(cluster, rng=random.Random(0)), 480)
    fair = _slot_counts(FairSampler(cluster, rng=random.Random(0)), 480)
    shared = [s for s in fair if s not in always]
    u = [uniform[s] for s in shared]
    f = [fair[s] for s in shared]
    assert max(u) / min(u) > 4  # uniform: as the cluster's topologies happen to use the cells
    assert max(f) / min(f) < 0.5 * max(u) / min(u)
    slots_only = _slot_counts(FairSampler(cluster, rng=random.Random(0), path_weight=0), 480)
    g = [slots_only[s] for s in shared]
    assert max(g) - min(g) <= 0.01 * max(g) + 2  # every cell about equally often


def test_fair_sampler_trains_every_path_of_a_real_cluster() -> None:
    """Slot fairness alone trains two complementary topologies of c2f_small's largest cluster and
    starves the other six; the path term keeps each in training."""
    cluster = [tuple(t) for t in load_space("c2f_small").clusters[0]]
    slots_only_sampler = FairSampler(cluster, rng=random.Random(0), path_weight=0)
    slots_only = Counter(slots_only_sampler.next() for _ in range(480))
    assert sum(n <= 1 for n in (slots_only[p] for p in cluster)) >= 4
    sampler = FairSampler(cluster, rng=random.Random(0))
    fair = Counter(sampler.next() for _ in range(480))
    assert min(fair[p] for p in cluster) >= 20


def test_fair_sampler_resumes_exactly() -> None:
    paths = [(0, 1, 0), (0, 0, 0), (1, 1, 0), (1, 0, 0)]
    a = FairSampler(paths, rng=random.Random(3))
    [a.next() for _ in range(7)]
    state = json.loads(json.dumps(a.state()))  # what a checkpoint holds
    rng_state = a.rng.getstate()
    ahead = [a.next() for _ in range(20)]
    b = FairSampler(paths, rng=random.Random())
    b.load_state(state)
    b.rng.setstate(rng_state)
    assert [b.next() for _ in range(20)] == ahead


def test_uniform_sampler_matches_the_old_draw() -> None:
    """``uniform`` draws exactly as the supernet's own ``sample`` did (same RNG stream)."""
    space = load_space("c2f_small")
    net = space.build_coarse_supernet(space.coarse_candidates()[0], in_channels=1,
                                      out_channels=2, width=2)
    genomes = [tuple(c.split("-")) for c in net.choices()]
    r1, r2 = random.Random(7), random.Random(7)
    sampler = UniformSampler(genomes, rng=r1)
    assert ["-".join(sampler.next()) for _ in range(30)] == [
        net.sample(r2)["topology"] for _ in range(30)
    ]


def test_unknown_sampling_is_refused() -> None:
    with pytest.raises(ValueError, match="path_sampling must be one of uniform, fair"):
        make_sampler("greedy", [(0,)], rng=random.Random(0))
    with pytest.raises(ValueError, match="path_weight must be >= 0"):
        FairSampler([(0,)], rng=random.Random(0), path_weight=-1)
