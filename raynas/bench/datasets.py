"""The digest of a dataset a benchmark reads: what makes two runs' data the same.

- A generated dataset (``synthetic``, ``synthetic2d``, ``synthetic_hard``, written into the cache
  on first use) is fixed by its generator: the digest covers the name, the generator version,
  the volume spec, the seed and the number of cases (case ``i`` depends only on ``(seed, i)``).
- Any other dataset (an MSD task, a user's folder, a prepared synthetic folder given by
  ``data_root``) is digested from its files: :func:`raynas.data.fingerprint.dataset_digest`,
  sha256 over the case names and every image and label file, the digest the data layer uses.

Example:
    >>> dataset_digest("synthetic_hard", seed=0, cases=16)  # doctest: +SKIP
    'synthetic_hard:3f0c...'
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

__all__ = ["dataset_digest", "synthetic_digest"]


def synthetic_digest(
    name: str, *, seed: int, cases: int, shape: tuple[int, int, int] | None = None
) -> str:
    """The digest of a generated dataset from its generator config and seed.

    Raises:
        ValueError: ``name`` is not a generated dataset (the valid ones are listed).
    """
    from raynas.data.synthetic import GENERATOR_VERSION, SPECS

    if name not in SPECS:
        raise ValueError(f"unknown generated dataset {name!r}; valid: {', '.join(SPECS)}")
    spec = asdict(SPECS[name])
    if shape is not None:
        spec["shape"] = list(shape)
    config = {"generator": name, "version": GENERATOR_VERSION.get(name, 1), "spec": spec,
              "seed": int(seed), "cases": int(cases)}  # fmt: skip
    text = json.dumps(config, sort_keys=True, default=list)
    return f"{name}:{hashlib.sha256(text.encode()).hexdigest()[:16]}"


def dataset_digest(
    name: str,
    *,
    seed: int = 0,
    cases: int = 16,
    data_root: Path | str | None = None,
    limit_cases: int | None = None,
) -> str:
    """The digest of the dataset ``open_dataset(name, data_root, seed=seed,
    synthetic_cases=cases, limit_cases=limit_cases)`` opens (see the module doc).

    Raises:
        DataError: the dataset cannot be opened (as :func:`raynas.data.open_dataset`).
    """
    from raynas.data.synthetic import SPECS

    if name in SPECS and data_root is None:
        n = cases if limit_cases is None else min(cases, limit_cases)
        return synthetic_digest(name, seed=seed, cases=n)
    from raynas.data import open_dataset
    from raynas.data.fingerprint import dataset_digest as files_digest

    ds = open_dataset(name, data_root, seed=seed, synthetic_cases=cases,
                      limit_cases=limit_cases, validate="none", write_plan=False)  # fmt: skip
    return f"files:{files_digest(ds.cases)}"
