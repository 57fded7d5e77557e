"""Random controls: architectures drawn at random from the searched space and retrained next to
the searched ones with the same recipe, so every search shows, on its user's own data, whether
it beat chance (issue 23 point 5).

``retrain.random_controls: N`` adds the retrain candidates ``random0`` .. ``random<N-1>`` (their
trials ``random<i>#<n>``, kind ``random``): control ``i`` is the space's
``sample_architecture(seed=control_seed(search_seed, i))`` at the width the searched networks
are retrained at (C2F: ``retrain.width``; Thrifty keeps the space's width, as a searched Thrifty
network keeps its searched one). The same search seed draws the same controls. They go through
the retrain stage, the frontier files, the plot and MLflow (tag ``kind=random``) like any
network, are never the search's best model, and the parent run gets
``search_vs_random_val_dice`` / ``search_vs_random_test_dice``
(:func:`raynas.strategy.selection.search_vs_random`).
"""

from __future__ import annotations

from typing import Any

__all__ = ["CONTROL_PREFIX", "control_seed", "random_controls"]

CONTROL_PREFIX = "random"


def control_seed(search_seed: int, index: int) -> int:
    """The ``sample_architecture`` seed of control ``index`` of a search seeded ``search_seed``
    (the equal-cost benchmark, :mod:`raynas.bench.equal_cost`, draws its random networks the same
    way).

    Example:
        >>> control_seed(3, 1)
        3001
    """
    if index < 0 or search_seed < 0:
        raise ValueError(f"search_seed and index must be >= 0; got {search_seed}, {index}")
    return 1000 * int(search_seed) + int(index)


def random_controls(
    space: Any,
    *,
    count: int,
    search_seed: int,
    in_channels: int,
    out_channels: int,
    width: int | None,
) -> dict[str, str]:
    """``{"random<i>": architecture JSON}`` for ``i < count``: the space's random architectures
    (``space.sample_architecture``), seeded by the search seed. ``width``: the retrain width
    (``None``: the space's own, for spaces that keep their searched width).

    Example:
        >>> from raynas.spaces import load_space
        >>> arch = random_controls(load_space("c2f_small"), count=1, search_seed=0,
        ...                        in_channels=1, out_channels=3, width=8)
        >>> list(arch)
        ['random0']
    """
    if count < 0:
        raise ValueError(f"count must be >= 0; got {count}")
    out = {}
    for i in range(count):
        kwargs: dict[str, Any] = {"in_channels": in_channels, "out_channels": out_channels}
        if width is not None:
            kwargs["width"] = width
        arch = space.sample_architecture(seed=control_seed(search_seed, i), **kwargs)
        out[f"{CONTROL_PREFIX}{i}"] = arch.to_json()
    return out
