"""Reproducibility and device selection: seeds, the full RNG state, ``resolve_device``.

- :func:`seed_everything` seeds Python, NumPy and torch (CPU and CUDA).
- :func:`derive_seed` gives each trial its own seed from the search seed and the trial's key
  (a stable hash: the same on every machine and Python process, unlike ``hash``).
- :func:`rng_state` / :func:`set_rng_state` capture and restore every RNG a stage program
  draws from: Python ``random``, NumPy's global RNG, torch CPU and CUDA, the DataLoaders'
  generators and the ``RandomState`` (``R``) of MONAI's random transforms (found with
  :func:`find_random_states`). The state holds only tensors and plain containers, so a
  checkpoint with it loads with ``torch.load(..., weights_only=True)``.

Example:
    >>> seed_everything(0)
    0
    >>> derive_seed(0, "cluster1") == derive_seed(0, "cluster1") != derive_seed(0, "cluster2")
    True
    >>> state = rng_state()
    >>> a = torch.rand(1); set_rng_state(state); bool(torch.rand(1) == a)
    True
    >>> resolve_device("cpu")
    device(type='cpu')
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch

from raynas.errors import UserError

__all__ = [
    "seed_everything",
    "derive_seed",
    "rng_state",
    "set_rng_state",
    "find_random_states",
    "reseed",
    "resolve_device",
    "set_cudnn_mode",
    "DEVICE_NAMES",
]

DEVICE_NAMES = ("auto", "cpu", "cuda")


def seed_everything(seed: int, *, deterministic: bool | None = None) -> int:
    """Seeds Python's ``random``, NumPy and torch (CPU and every CUDA device).

    ``torch.use_deterministic_algorithms`` is deliberately not touched: some 3D ops have no
    deterministic CUDA kernel and would raise. On CPU, seeding alone makes two runs identical.

    Args:
        seed: a non-negative integer.
        deterministic: the cuDNN mode (:func:`set_cudnn_mode`): True = deterministic kernels and
            no autotuning (bit-identical reruns and resumes, slower convolutions), False =
            autotuned kernels (``cudnn.benchmark``; reruns may differ). None leaves the flags
            as they are.

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
    if deterministic is not None:
        set_cudnn_mode(deterministic=deterministic)
    return seed


def set_cudnn_mode(*, deterministic: bool) -> str:
    """Sets ``cudnn.deterministic = deterministic`` and ``cudnn.benchmark = not deterministic``
    and says which mode is on (for the log).

    Autotuning (``benchmark``) picks the fastest kernel per convolution shape by timing several,
    and may pick another one in another process: a resumed run would then not continue exactly,
    so it is on only where determinism is off.
    """
    torch.backends.cudnn.deterministic = bool(deterministic)
    torch.backends.cudnn.benchmark = not deterministic
    return ("cuDNN deterministic (benchmark off)" if deterministic
            else "cuDNN autotuned (benchmark on; reruns may differ)")


def derive_seed(seed: int, key: str) -> int:
    """A seed in ``[0, 2**31)`` for ``key`` (e.g. a trial key), from ``seed``: a SHA-256 of both,
    so it is stable across processes and machines and differs between keys."""
    digest = hashlib.sha256(f"{int(seed)}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 2**31


def _walkable(obj: Any) -> bool:
    module = type(obj).__module__ or ""
    return module.startswith(("monai.", "raynas.", "torch.utils.data"))


def find_random_states(*roots: Any) -> list[np.random.RandomState]:
    """Every ``numpy.random.RandomState`` reachable from ``roots`` through the attributes, lists
    and tuples of MONAI / raynas / torch-data objects (datasets, ``Compose``, random transforms
    and the array transforms inside them), each once, in a deterministic order.

    Cached data (dicts of tensors) is not walked. Two programs built the same way list their
    states in the same order, which is what :func:`set_rng_state` relies on.
    """
    found: list[np.random.RandomState] = []
    seen: set[int] = set()

    def walk(obj: Any) -> None:
        if id(obj) in seen:
            return
        if isinstance(obj, np.random.RandomState):
            seen.add(id(obj))
            found.append(obj)
            return
        if isinstance(obj, list | tuple):
            seen.add(id(obj))
            for item in obj:
                walk(item)
            return
        if not _walkable(obj) or not hasattr(obj, "__dict__"):
            return
        seen.add(id(obj))
        for name in sorted(vars(obj)):
            if not name.startswith("__"):
                walk(vars(obj)[name])

    for root in roots:
        walk(root)
    return found


def _np_state(rs: np.random.RandomState | None = None) -> dict[str, Any]:
    name, key, pos, has_gauss, gauss = (rs.get_state() if rs is not None
                                        else np.random.get_state())
    if name != "MT19937":
        raise ValueError(f"unsupported NumPy bit generator {name!r}")
    return {"key": torch.from_numpy(np.asarray(key, dtype=np.int64)), "pos": int(pos),
            "has_gauss": int(has_gauss), "gauss": float(gauss)}


def _np_tuple(state: dict[str, Any]) -> tuple:
    key = np.asarray(state["key"].numpy(), dtype=np.uint32)
    return ("MT19937", key, int(state["pos"]), int(state["has_gauss"]), float(state["gauss"]))


def rng_state(
    *, generators: Sequence[torch.Generator] = (),
    random_states: Sequence[np.random.RandomState] = (),
) -> dict[str, Any]:
    """Every RNG state that matters, as tensors and plain containers (``weights_only``-safe).

    Args:
        generators: torch generators to include (e.g. each DataLoader's ``generator``).
        random_states: NumPy ``RandomState``s to include (e.g. from :func:`find_random_states`).
    """
    version, internal, gauss = random.getstate()
    return {
        "python": {"version": int(version), "internal": torch.tensor(internal, dtype=torch.int64),
                   "gauss": gauss},
        "numpy": _np_state(),
        "torch": torch.get_rng_state(),
        "cuda": list(torch.cuda.get_rng_state_all()) if torch.cuda.is_available() else [],
        "generators": [g.get_state() for g in generators],
        "random_states": [_np_state(r) for r in random_states],
    }


def set_rng_state(
    state: dict[str, Any], *, generators: Sequence[torch.Generator] = (),
    random_states: Sequence[np.random.RandomState] = (),
) -> None:
    """Restores what :func:`rng_state` captured, into the same kind of ``generators`` and
    ``random_states`` (same count and order; ValueError if the counts differ). CUDA states
    are restored when CUDA is available and the device count matches."""
    for what, have, saved in (("generators", generators, state["generators"]),
                              ("random states", random_states, state["random_states"])):
        if len(have) != len(saved):
            raise ValueError(f"the RNG state holds {len(saved)} {what}, this program has "
                             f"{len(have)}")
    py = state["python"]
    random.setstate((py["version"], tuple(int(v) for v in py["internal"].tolist()), py["gauss"]))
    np.random.set_state(_np_tuple(state["numpy"]))
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda") or []
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
    for g, saved in zip(generators, state["generators"], strict=True):
        g.set_state(saved)
    for r, saved in zip(random_states, state["random_states"], strict=True):
        r.set_state(_np_tuple(saved))


def reseed(
    seed: int, *, generators: Iterable[torch.Generator] = (),
    random_states: Iterable[np.random.RandomState] = (),
) -> None:
    """Seeds ``generators`` and ``random_states`` from ``seed``, each with its own derived
    seed (e.g. a trial's loaders and transforms, built with the search seed)."""
    for i, g in enumerate(generators):
        g.manual_seed(derive_seed(seed, f"generator{i}"))
    for i, r in enumerate(random_states):
        r.seed(derive_seed(seed, f"random_state{i}"))


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
