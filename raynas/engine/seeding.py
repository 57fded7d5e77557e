"""Reproducibility and device selection: ``seed_everything`` and ``resolve_device``.

Example:
    >>> seed_everything(0)
    0
    >>> resolve_device("cpu")
    device(type='cpu')
"""

from __future__ import annotations

import random

import numpy as np
import torch

from raynas.errors import UserError

__all__ = ["seed_everything", "resolve_device", "DEVICE_NAMES"]

DEVICE_NAMES = ("auto", "cpu", "cuda")


def seed_everything(seed: int, *, deterministic: bool = False) -> int:
    """Seeds Python's ``random``, NumPy and torch (CPU and every CUDA device).

    ``torch.use_deterministic_algorithms`` is deliberately not touched: some 3D ops have no
    deterministic CUDA kernel and would raise. On CPU, seeding alone makes two runs identical.

    Args:
        seed: a non-negative integer.
        deterministic: also set ``cudnn.deterministic = True`` and ``cudnn.benchmark = False``
            (slower convolutions on CUDA, bit-identical reruns). When False the cuDNN flags are
            left as they are.

    Returns:
        The seed, for logging.

    Raises:
        ValueError: if ``seed`` is negative or not an integer.
    """
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device
    if deterministic:
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    return seed


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """Turns ``"auto" | "cpu" | "cuda" | "cuda:N"`` into a ``torch.device``.

    ``"auto"`` picks CUDA when available, else CPU.

    Raises:
        ValueError: for a name outside ``auto``, ``cpu``, ``cuda``, ``cuda:N``.
        UserError: when CUDA is asked for but not available (or the index is out of range).
    """
    if isinstance(name, torch.device):
        name = str(name)
    if not isinstance(name, str):
        raise ValueError(f"device must be one of {', '.join(DEVICE_NAMES)}, got {name!r}")
    key = name.strip().lower()
    if key == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if key == "cpu":
        return torch.device("cpu")
    if key == "cuda" or key.startswith("cuda:"):
        index = key.partition(":")[2]
        if index and not index.isdigit():
            raise ValueError(f"device: bad CUDA index in {name!r}; use cuda or cuda:N")
        if not torch.cuda.is_available():
            raise UserError(f"device: {name!r} requested but CUDA is not available here")
        if index and int(index) >= torch.cuda.device_count():
            raise UserError(
                f"device: {name!r} requested but only {torch.cuda.device_count()} GPU(s) visible"
            )
        return torch.device(key)
    raise ValueError(f"device must be one of {', '.join(DEVICE_NAMES)} (or cuda:N), got {name!r}")
