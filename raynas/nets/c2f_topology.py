"""C2F topology rules: a U-shaped path of cell levels, its canonical string and its U-Net skips.

A topology is a tuple ``(l_0, ..., l_{L-1})`` of levels. The stem sits at level 0 (1/2 of the
input resolution); ``l_0`` is 0 or 1; consecutive levels differ by at most one; the path ends at
level 0 and is unimodal (non-decreasing to its deepest level, then non-increasing); its deepest
level lies in ``[min_depth, levels - 1]``.

Encoder cells run up to and including the last cell at the deepest level (a run of cells at the
deepest level is the bottleneck); each later (decoder) cell also receives the most recent encoder
output at its own level (the stem is the level-0 encoder output, index ``-1``). So a decoder
cell's skip is never its own previous input: a cell that would get the same tensor on both edges
(the second cell of a plateau at the deepest level, e.g. cell 3 of ``0-1-2-2-1-0``) has no
encoder feature of its level other than that input, and is a bottleneck cell with one edge.

Example:
    >>> t = parse_topology("0-1-2-1-0")
    >>> format_topology(t), decoder_skips(t)
    ('0-1-2-1-0', {3: 1, 4: 0})
    >>> decoder_skips(parse_topology("0-1-2-2-1-0"))
    {4: 1, 5: 0}
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "Topology",
    "parse_topology",
    "format_topology",
    "topology_errors",
    "check_topology",
    "last_encoder",
    "decoder_skips",
    "edges_per_cell",
]

Topology = tuple[int, ...]
STEM = -1  # index of the stem in skip maps


def parse_topology(text: str | Sequence[int]) -> Topology:
    """``"0-1-2-1-0"`` (or a list of ints) -> ``(0, 1, 2, 1, 0)``; ValueError if malformed."""
    if not isinstance(text, str):
        return tuple(int(v) for v in text)
    try:
        return tuple(int(p) for p in text.strip().split("-"))
    except ValueError:
        raise ValueError(f"topology {text!r}: expected levels joined by '-', e.g. '0-1-1-0'") \
            from None


def format_topology(topology: Sequence[int]) -> str:
    """Canonical string form: levels joined by ``-``."""
    return "-".join(str(int(v)) for v in topology)


def topology_errors(
    topology: Sequence[int], *, levels: int, min_depth: int = 0, cells: int | None = None
) -> list[str]:
    """Every rule the topology breaks (empty when valid)."""
    t = tuple(topology)
    errs: list[str] = []
    if not t:
        return ["a topology needs at least one cell"]
    if cells is not None and len(t) != cells:
        errs.append(f"has {len(t)} cells, the space has {cells}")
    if any(v < 0 or v >= levels for v in t):
        errs.append(f"levels must lie in 0..{levels - 1}")
    if t[0] not in (0, 1):
        errs.append("the first cell must be at level 0 or 1 (one step from the stem)")
    if any(abs(a - b) > 1 for a, b in zip(t, t[1:], strict=False)):
        errs.append("consecutive cells must differ by at most one level")
    if t[-1] != 0:
        errs.append("the last cell must be at level 0")
    deepest = max(t)
    peak = t.index(deepest)
    if any(a > b for a, b in zip(t[: peak + 1], t[1 : peak + 1], strict=False)) or any(
        a < b for a, b in zip(t[peak:], t[peak + 1 :], strict=False)
    ):
        errs.append("the path must be U-shaped (down to its deepest level, then up)")
    if deepest < min_depth:
        errs.append(f"the path must reach level {min_depth} (min_depth)")
    return errs


def check_topology(
    topology: Sequence[int] | str, *, levels: int, min_depth: int = 0, cells: int | None = None
) -> Topology:
    """Parses and validates; ValueError listing the broken rules."""
    t = parse_topology(topology)
    errs = topology_errors(t, levels=levels, min_depth=min_depth, cells=cells)
    if errs:
        raise ValueError(f"topology {format_topology(t)!r} is invalid: {'; '.join(errs)}")
    return t


def last_encoder(topology: Sequence[int]) -> int:
    """Index of the last encoder cell: the last cell at the deepest level (end of the
    bottleneck; the deepest cells of a U-shaped path are contiguous)."""
    t = tuple(topology)
    return len(t) - 1 - t[::-1].index(max(t))


def decoder_skips(topology: Sequence[int]) -> dict[int, int]:
    """Decoder cell index -> index of its skip source (encoder cell, or ``-1`` for the stem)."""
    t = tuple(topology)
    last_enc = last_encoder(t)
    latest = {0: STEM}
    for i in range(last_enc + 1):
        latest[t[i]] = i
    return {i: latest[t[i]] for i in range(last_enc + 1, len(t))}


def edges_per_cell(topology: Sequence[int]) -> list[int]:
    """Number of input edges of each cell: 1 (encoder) or 2 (decoder: previous + skip)."""
    skips = decoder_skips(topology)
    return [2 if i in skips else 1 for i in range(len(topology))]
