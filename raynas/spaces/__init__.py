"""Search spaces: PC-DARTS blocks, the C2F space (and the Thrifty space), ``load_space``.

Importing this package registers the built-in space types.
"""

from __future__ import annotations

from raynas.spaces.base import (
    SPACE_TYPES,
    Candidate,
    SearchSpace,
    load_space,
    load_stage_space,
    register_space_type,
)
from raynas.spaces.c2f import C2FCoarseSupernet, C2FFineSupernet, C2FSpace
from raynas.spaces.c2f_topology import (
    CLUSTER_RULES,
    cluster_topologies,
    enumerate_topologies,
)
from raynas.spaces.pcdarts import (
    ArchParamsMixin,
    MixedOp,
    channel_shuffle,
    init_arch_param,
    op_strength,
    strongest_edges,
    strongest_op,
)
from raynas.spaces.thrifty import ThriftySpace, ThriftySupernet, derive_cell, thrifty_param_count

if "c2f" not in SPACE_TYPES:
    register_space_type("c2f", C2FSpace)
if "thrifty" not in SPACE_TYPES:
    register_space_type("thrifty", ThriftySpace)

__all__ = [
    "CLUSTER_RULES",
    "SPACE_TYPES",
    "ArchParamsMixin",
    "C2FCoarseSupernet",
    "C2FFineSupernet",
    "C2FSpace",
    "Candidate",
    "MixedOp",
    "SearchSpace",
    "ThriftySpace",
    "ThriftySupernet",
    "channel_shuffle",
    "cluster_topologies",
    "derive_cell",
    "enumerate_topologies",
    "init_arch_param",
    "load_space",
    "load_stage_space",
    "op_strength",
    "register_space_type",
    "strongest_edges",
    "strongest_op",
    "thrifty_param_count",
]
