"""Enumeration counts (closed form and hand cases) and deterministic clusters."""

from __future__ import annotations

from math import comb

import pytest

from raynas.nets import format_topology, topology_errors
from raynas.spaces import cluster_topologies, enumerate_topologies, load_space


@pytest.mark.parametrize("cells,levels,min_depth,expected", [
    (12, 4, 1, 66 + 495 + 924),  # default c2f.yaml: 1485
    (6, 3, 1, 15 + 15),  # c2f_small.yaml: 30
    (4, 2, 1, 6),
    (4, 3, 0, 1 + 6 + 1),
])
def test_counts(cells, levels, min_depth, expected):
    topos = enumerate_topologies(cells=cells, levels=levels, min_depth=min_depth)
    assert len(topos) == len(set(topos)) == expected
    assert all(not topology_errors(t, levels=levels, min_depth=min_depth) for t in topos)


def test_hand_enumerated_tiny_case():
    got = {format_topology(t) for t in enumerate_topologies(cells=4, levels=2, min_depth=1)}
    assert got == {"1-0-0-0", "1-1-0-0", "1-1-1-0", "0-1-0-0", "0-1-1-0", "0-0-1-0"}


def test_closed_form_default():
    # a path leaves level 0 and comes back: it chooses its 2h level changes among the 12 cells
    topos = enumerate_topologies(cells=12, levels=4, min_depth=1)
    assert len(topos) == sum(comb(12, 2 * h) for h in (1, 2, 3)) == 1485


@pytest.mark.parametrize("rule", ["depth_profile", "canonical_order"])
@pytest.mark.parametrize("count", [1, 4, 8, 40])
def test_clusters_partition_deterministically(rule, count):
    topos = enumerate_topologies(cells=6, levels=3, min_depth=1)
    a = cluster_topologies(topos, count=count, rule=rule)
    b = cluster_topologies(list(reversed(topos)), count=count, rule=rule)
    assert a == b
    flat = [t for g in a for t in g]
    assert sorted(flat) == sorted(topos) and len(flat) == len(set(flat))
    sizes = [len(g) for g in a]
    assert len(a) == min(count, len(topos)) and max(sizes) - min(sizes) <= 1


def test_depth_profile_groups_shallow_first():
    clusters = cluster_topologies(enumerate_topologies(cells=12, levels=4, min_depth=1), count=8)
    depths = [max(t) for g in clusters for t in g]
    assert depths == sorted(depths) and depths[0] == 1 and depths[-1] == 3
    assert max(clusters[-1][0]) == 3
    assert [len(g) for g in clusters] == [186] * 5 + [185] * 3


@pytest.mark.parametrize("name,topologies,clusters", [("c2f", 1485, 8), ("c2f_small", 30, 4)])
def test_builtin_spaces_describe(name, topologies, clusters):
    facts = load_space(name).describe()
    assert (facts["topologies"], facts["clusters"]) == (topologies, clusters)
    assert sum(facts["cluster_sizes"]) == topologies
