"""Networks: candidate operations, costs, architectures (JSON data) and their builders.

Importing this package registers every built-in architecture space (``c2f`` here; the Thrifty
space and the baselines register theirs from their own modules, imported below).
"""

from __future__ import annotations

from raynas.nets.architecture import (
    SCHEMA_VERSION,
    Architecture,
    architecture_spaces,
    build_network,
    load_architecture,
    named_architecture,
    register_architecture,
    register_named_model,
)
from raynas.nets.baselines import (
    DynUNetArchitecture,
    UNet,
    UNetArchitecture,
    UNetPlusPlus,
    UNetPlusPlusArchitecture,
    dynunet_plan,
    unet_architecture,
    unetpp_architecture,
)
from raynas.nets.c2f import C2FArchitecture, C2FCell, C2FNet, CellSlot, build_c2f, slots_for
from raynas.nets.c2f_topology import (
    check_topology,
    decoder_skips,
    edges_per_cell,
    format_topology,
    parse_topology,
    topology_errors,
)
from raynas.nets.costs import Cost, count_parameters, model_cost
from raynas.nets.ops import OPS, ConvNormAct, Op, make_op, op_names
from raynas.nets.thrifty import ThriftyArchitecture, ThriftyCell, ThriftyNet, build_thrifty

__all__ = [
    "OPS",
    "SCHEMA_VERSION",
    "Architecture",
    "C2FArchitecture",
    "C2FCell",
    "C2FNet",
    "CellSlot",
    "ConvNormAct",
    "Cost",
    "DynUNetArchitecture",
    "Op",
    "ThriftyArchitecture",
    "ThriftyCell",
    "ThriftyNet",
    "UNet",
    "UNetArchitecture",
    "UNetPlusPlus",
    "UNetPlusPlusArchitecture",
    "architecture_spaces",
    "build_c2f",
    "build_network",
    "build_thrifty",
    "check_topology",
    "count_parameters",
    "decoder_skips",
    "dynunet_plan",
    "edges_per_cell",
    "format_topology",
    "load_architecture",
    "make_op",
    "model_cost",
    "named_architecture",
    "op_names",
    "parse_topology",
    "register_architecture",
    "register_named_model",
    "slots_for",
    "topology_errors",
    "unet_architecture",
    "unetpp_architecture",
]
