"""Seeding determinism and device resolution."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from engine_fakes import TinyNet, make_batches

from raynas.engine import make_loss, make_optimizer, resolve_device, seed_everything, train_epoch
from raynas.engine.seeding import (
    derive_seed,
    find_random_states,
    reseed,
    rng_state,
    set_rng_state,
)
from raynas.errors import UserError


def _train(seed: int) -> dict[str, torch.Tensor]:
    seed_everything(seed)
    net = TinyNet()
    opt = make_optimizer(net.parameters(), name="adamw", lr=1e-2, weight_decay=0.0)
    batches = make_batches(n=3, batch_size=2, shape=(16, 16), seed=seed)
    train_epoch(net, batches, opt, make_loss(), device=torch.device("cpu"))
    return {k: v.clone() for k, v in net.state_dict().items()}


def test_same_seed_same_weights():
    a, b = _train(3), _train(3)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_different_seed_different_weights():
    a, b = _train(3), _train(4)
    assert not all(torch.equal(a[k], b[k]) for k in a)


def test_seed_everything_seeds_python_numpy_torch():
    seed_everything(11)
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    seed_everything(11)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == first


def test_deterministic_flag_sets_cudnn_but_not_global_algorithms():
    before = torch.are_deterministic_algorithms_enabled()
    saved = torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark
    try:
        seed_everything(0, deterministic=True)
        assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
        assert torch.are_deterministic_algorithms_enabled() == before
    finally:
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved


@pytest.mark.parametrize("bad", [-1, 1.5, "0", True])
def test_seed_rejects(bad):
    with pytest.raises(ValueError, match="seed"):
        seed_everything(bad)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("cpu", "cpu"),
        ("auto", "cuda" if torch.cuda.is_available() else "cpu"),
        (torch.device("cpu"), "cpu"),
    ],
)
def test_resolve_device(name, expected):
    assert resolve_device(name).type == expected


def test_resolve_device_rejects_unknown():
    with pytest.raises(ValueError, match="auto, cpu, cuda"):
        resolve_device("tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_resolve_cuda_without_cuda_is_a_user_error():
    with pytest.raises(UserError, match="CUDA is not available"):
        resolve_device("cuda")


def test_derive_seed_is_stable_and_differs_by_key():
    # a fixed value: the same in every process (Python's hash() of a str is not)
    assert derive_seed(0, "cluster0") == derive_seed(0, "cluster0") == 1116642197
    seeds = {derive_seed(0, f"cluster{i}") for i in range(50)}
    assert len(seeds) == 50 and all(0 <= v < 2**31 for v in seeds)
    assert derive_seed(1, "cluster0") != derive_seed(0, "cluster0")


def _monai_transform():
    from monai.transforms import Compose, RandFlipd, RandSpatialCropd

    t = Compose([RandFlipd(keys="x", prob=0.5), RandSpatialCropd(keys="x", roi_size=(4, 4))])
    t.set_random_state(seed=0)
    return t


def _draws(gen: torch.Generator, transform) -> tuple:
    x = {"x": torch.arange(64.0).reshape(1, 8, 8)}
    return (random.random(), float(np.random.rand()), torch.rand(3).tolist(),
            torch.randint(0, 10**6, (3,), generator=gen).tolist(),
            transform(x)["x"].flatten().tolist())


def test_rng_state_round_trip_covers_every_source(tmp_path):
    """Capture, save with torch.save, load with weights_only=True, restore: every source
    (Python, NumPy, torch, a loader generator, MONAI transforms) repeats its draws."""
    seed_everything(5)
    gen = torch.Generator().manual_seed(7)
    transform = _monai_transform()
    states = find_random_states(transform)
    assert len(states) >= 2  # the Compose and its random transforms each hold an R
    _draws(gen, transform)  # move every RNG away from its seed
    torch.save(rng_state(generators=[gen], random_states=states), tmp_path / "rng.pt")
    first = _draws(gen, transform)
    loaded = torch.load(tmp_path / "rng.pt", weights_only=True)
    # a fresh process: other seeds everywhere
    seed_everything(99)
    gen2 = torch.Generator().manual_seed(1)
    transform2 = _monai_transform()
    transform2.set_random_state(seed=123)
    set_rng_state(loaded, generators=[gen2], random_states=find_random_states(transform2))
    assert _draws(gen2, transform2) == first


@pytest.mark.parametrize("skip", ["python", "numpy", "torch", "generators", "random_states"])
def test_each_rng_source_matters(skip):
    """Leaving any one source out of the restore changes the draws (the test above can fail)."""
    seed_everything(5)
    gen = torch.Generator().manual_seed(7)
    transform = _monai_transform()
    state = rng_state(generators=[gen], random_states=find_random_states(transform))
    first = _draws(gen, transform)
    seed_everything(99)
    gen2 = torch.Generator().manual_seed(1)
    transform2 = _monai_transform()
    transform2.set_random_state(seed=123)
    fresh = rng_state(generators=[gen2], random_states=find_random_states(transform2))
    mixed = {**state, skip: fresh[skip]}
    set_rng_state(mixed, generators=[gen2], random_states=find_random_states(transform2))
    assert _draws(gen2, transform2) != first


def test_set_rng_state_rejects_other_sources():
    state = rng_state(generators=[torch.Generator()])
    with pytest.raises(ValueError, match="generators"):
        set_rng_state(state)


def test_reseed_gives_each_source_its_own_seed():
    gens = [torch.Generator(), torch.Generator()]
    reseed(3, generators=gens, random_states=find_random_states(_monai_transform()))
    a = [torch.randint(0, 10**6, (2,), generator=g).tolist() for g in gens]
    assert a[0] != a[1]
    gens2 = [torch.Generator(), torch.Generator()]
    reseed(3, generators=gens2)
    assert [torch.randint(0, 10**6, (2,), generator=g).tolist() for g in gens2] == a
