"""train_epoch, supernet_epoch, bilevel_epoch and NaN detection on tiny tensors."""

from __future__ import annotations

import pytest
import torch
from engine_fakes import FakeSupernet, NaNNet, TinyNet, make_batches

from raynas.engine import (
    EpochStats,
    NonFiniteLossError,
    bilevel_epoch,
    make_arch_optimizer,
    make_loss,
    make_optimizer,
    supernet_epoch,
    train_epoch,
)

CPU = torch.device("cpu")
SHAPES = {2: (24, 24), 3: (12, 12, 12)}


def _params(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def _changed(before: list[torch.Tensor], module_params) -> list[bool]:
    return [not torch.equal(b, p.detach()) for b, p in zip(before, module_params, strict=True)]


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_train_epoch_learns(spatial_dims):
    torch.manual_seed(0)
    net = TinyNet(spatial_dims=spatial_dims)
    opt = make_optimizer(net.parameters(), name="adamw", lr=2e-2, weight_decay=0.0)
    batches = make_batches(n=4, batch_size=2, shape=SHAPES[spatial_dims])
    losses = [train_epoch(net, batches, opt, make_loss(), device=CPU).loss for _ in range(6)]
    assert losses[-1] < 0.7 * losses[0], losses


def test_train_epoch_stats_and_max_steps():
    net = TinyNet()
    opt = make_optimizer(net.parameters(), name="sgd", lr=1e-2, weight_decay=0.0)
    batches = make_batches(n=5, batch_size=2, shape=(16, 16))
    seen: list[int] = []
    stats = train_epoch(
        net, batches, opt, make_loss(), device=CPU, max_steps=3, before_step=seen.append
    )
    assert isinstance(stats, EpochStats)
    assert stats.steps == 3 and seen == [0, 1, 2]
    assert stats.loss > 0 and stats.seconds > 0 and stats.arch_loss is None
    assert set(stats.to_dict()) == {"train_loss", "train_steps", "epoch_seconds"}
    assert train_epoch(net, batches, opt, make_loss(), device=CPU).steps == 5


@pytest.mark.parametrize("loop", ["train", "bilevel"])
def test_max_steps_is_a_target_the_loader_cycles(loop):
    """A fold smaller than ``max_steps`` is cycled (fresh passes) until the target is reached."""
    passes = []

    class Loader:
        def __init__(self, batches):
            self.batches = batches

        def __iter__(self):
            passes.append(1)
            return iter(self.batches)

    batches = make_batches(n=2, batch_size=2, shape=(16, 16))
    if loop == "train":
        net = TinyNet()
        opt = make_optimizer(net.parameters(), name="sgd", lr=1e-2, weight_decay=0.0)
        stats = train_epoch(net, Loader(batches), opt, make_loss(), device=CPU, max_steps=5)
    else:
        net, w_opt, a_opt = _bilevel_setup()
        stats = bilevel_epoch(
            net, Loader(batches), batches, w_opt, a_opt, make_loss(), update_arch=True,
            device=CPU, max_steps=5,
        )  # fmt: skip
        assert stats.arch_steps == 5
    assert stats.steps == 5 and len(passes) == 3
    assert 0 <= stats.data_seconds <= stats.seconds


def test_train_epoch_with_dataloader_and_metatensors():
    from monai.data import MetaTensor

    items = [
        {"image": MetaTensor(b["image"][i]), "label": MetaTensor(b["label"][i].float())}
        for b in make_batches(n=2, batch_size=2, shape=(16, 16))
        for i in range(2)
    ]
    loader = torch.utils.data.DataLoader(items, batch_size=2, shuffle=True)
    net = TinyNet()
    opt = make_optimizer(net.parameters(), name="sgd", lr=1e-2, weight_decay=0.0)
    assert train_epoch(net, loader, opt, make_loss(), device=CPU).steps == 2


def test_amp_is_ignored_on_cpu():
    batches = make_batches(n=2, batch_size=2, shape=(16, 16))
    results = []
    for amp in (False, True):
        torch.manual_seed(1)
        net = TinyNet()
        opt = make_optimizer(net.parameters(), name="sgd", lr=1e-2, weight_decay=0.0)
        train_epoch(net, batches, opt, make_loss(), device=CPU, amp=amp)
        results.append(_params(net))
    assert all(torch.equal(a, b) for a, b in zip(*results, strict=True))


@pytest.mark.parametrize(
    ("loader", "match"),
    [([], "no batches"), ([(torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 8))], "'image'")],
)
def test_train_epoch_rejects_bad_loaders(loader, match):
    net = TinyNet()
    opt = make_optimizer(net.parameters(), name="sgd", lr=1e-2, weight_decay=0.0)
    with pytest.raises(ValueError, match=match):
        train_epoch(net, loader, opt, make_loss(), device=CPU)


def test_supernet_epoch_trains_only_sampled_path():
    net = FakeSupernet()
    opt = make_optimizer(net.weight_parameters(), name="sgd", lr=1e-1, weight_decay=0.0)
    choices = iter([0, 0, 0])
    op0, op1, alpha = _params(net.ops[0]), _params(net.ops[1]), net.alpha.detach().clone()
    stats = supernet_epoch(
        net, make_batches(n=3, batch_size=2, shape=(16, 16)), opt, make_loss(),
        sample=lambda: next(choices), device=CPU,
    )  # fmt: skip
    assert stats.steps == 3 and net.activations == [0, 0, 0]
    assert all(_changed(op0, net.ops[0].parameters()))
    assert not any(_changed(op1, net.ops[1].parameters()))
    assert torch.equal(alpha, net.alpha)


def test_supernet_epoch_samples_before_every_step():
    net = FakeSupernet()
    opt = make_optimizer(net.weight_parameters(), name="sgd", lr=1e-2, weight_decay=0.0)
    choices = iter([1, 0, 1, 1])
    supernet_epoch(
        net, make_batches(n=4, batch_size=1, shape=(16, 16)), opt, make_loss(),
        sample=lambda: next(choices), device=CPU,
    )  # fmt: skip
    assert net.activations == [1, 0, 1, 1]


def test_supernet_epoch_needs_set_active():
    net = TinyNet()
    opt = make_optimizer(net.parameters(), name="sgd", lr=1e-2, weight_decay=0.0)
    with pytest.raises(ValueError, match="set_active"):
        supernet_epoch(net, [], opt, make_loss(), sample=lambda: 0, device=CPU)


class CountingLoader:
    """An iterable loader that counts the batches it hands out."""

    def __init__(self, batches):
        self.batches, self.served = batches, 0

    def __iter__(self):
        for batch in self.batches:
            self.served += 1
            yield batch


def _bilevel_setup():
    torch.manual_seed(0)
    net = FakeSupernet()
    w_opt = make_optimizer(net.weight_parameters(), name="sgd", lr=1e-2, weight_decay=0.0)
    a_opt = make_arch_optimizer(net.arch_parameters(), 6e-4, (0.5, 0.999), 1e-3)
    return net, w_opt, a_opt


@pytest.mark.parametrize("update_arch", [False, True])
def test_bilevel_epoch_updates_arch_only_after_warmup(update_arch):
    net, w_opt, a_opt = _bilevel_setup()
    weights = make_batches(n=3, batch_size=2, shape=(16, 16), seed=1)
    arch = CountingLoader(make_batches(n=2, batch_size=2, shape=(16, 16), seed=2))  # cycled
    alpha, head = net.alpha.detach().clone(), _params(net.head)
    stats = bilevel_epoch(
        net, weights, arch, w_opt, a_opt, make_loss(), update_arch=update_arch, device=CPU
    )
    assert stats.steps == 3
    assert all(_changed(head, net.head.parameters()))
    assert (not torch.equal(alpha, net.alpha)) is update_arch
    assert arch.served == (3 if update_arch else 0)
    assert (stats.arch_loss is not None) is update_arch
    assert stats.arch_steps == (3 if update_arch else 0)


def test_bilevel_epoch_max_steps():
    net, w_opt, a_opt = _bilevel_setup()
    weights = make_batches(n=4, batch_size=1, shape=(16, 16))
    stats = bilevel_epoch(
        net, weights, weights, w_opt, a_opt, make_loss(), update_arch=True, device=CPU,
        max_steps=2,
    )  # fmt: skip
    assert stats.steps == 2 and stats.arch_steps == 2


def test_bilevel_epoch_rejects_shared_parameters():
    net = FakeSupernet()
    w_opt = make_optimizer(net.parameters(), name="sgd", lr=1e-2, weight_decay=0.0)
    a_opt = make_arch_optimizer(net.arch_parameters())
    batches = make_batches(n=1, batch_size=1, shape=(16, 16))
    alpha = net.alpha.detach().clone()
    with pytest.raises(ValueError, match="share"):
        bilevel_epoch(
            net, batches, batches, w_opt, a_opt, make_loss(), update_arch=True, device=CPU
        )
    assert torch.equal(alpha, net.alpha)  # nothing trained


def test_bilevel_epoch_rejects_alpha_in_weights_optimizer():
    net = FakeSupernet()
    w_opt = make_optimizer(net.parameters(), name="sgd", lr=1e-2, weight_decay=0.0)
    a_opt = make_arch_optimizer([torch.nn.Parameter(torch.zeros(1))])
    batches = make_batches(n=1, batch_size=1, shape=(16, 16))
    with pytest.raises(ValueError, match="architecture parameter"):
        bilevel_epoch(
            net, batches, batches, w_opt, a_opt, make_loss(), update_arch=False, device=CPU
        )


def test_nan_output_stops_with_clear_error():
    net = NaNNet()
    opt = make_optimizer(net.parameters(), name="sgd", lr=1e-2, weight_decay=0.0)
    with pytest.raises(NonFiniteLossError, match=r"nan at epoch 4, step 0") as info:
        train_epoch(net, make_batches(n=2, batch_size=1, shape=(8, 8)), opt, make_loss(),
                    device=CPU, epoch=4)  # fmt: skip
    assert info.value.step == 0 and info.value.epoch == 4
    assert net.scale.detach().item() == 1.0  # no update happened with the NaN loss


def test_huge_learning_rate_diverges_with_clear_error():
    torch.manual_seed(0)
    net = TinyNet()
    opt = make_optimizer(net.parameters(), name="sgd", lr=1e30, weight_decay=0.0)
    batches = make_batches(n=4, batch_size=2, shape=(16, 16))
    with pytest.raises(NonFiniteLossError, match="non-finite training loss") as info:
        for _ in range(3):
            train_epoch(net, batches, opt, make_loss(), device=CPU, grad_clip=None)
    assert info.value.phase == "weights"


def test_nan_in_arch_step_names_the_phase():
    net, w_opt, a_opt = _bilevel_setup()
    good = make_batches(n=2, batch_size=1, shape=(16, 16))
    bad = [{"image": torch.full((1, 1, 16, 16), float("nan")), "label": good[0]["label"]}]
    with pytest.raises(NonFiniteLossError, match="architecture step"):
        bilevel_epoch(net, good, bad, w_opt, a_opt, make_loss(), update_arch=True, device=CPU)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="mixed precision runs on CUDA only")
def test_amp_on_cuda_trains_and_keeps_one_scaler_per_optimizer():
    from raynas.engine.amp import _SCALERS  # the scalers live with the precision rules

    cuda = torch.device("cuda")
    torch.manual_seed(0)
    net = TinyNet(spatial_dims=3).to(cuda)
    opt = make_optimizer(net.parameters(), name="adamw", lr=2e-2, weight_decay=0.0)
    batches = make_batches(n=4, batch_size=2, shape=SHAPES[3])
    losses = [
        train_epoch(net, batches, opt, make_loss(), device=cuda, amp=True).loss for _ in range(6)
    ]
    assert losses[-1] < 0.7 * losses[0], losses
    if torch.cuda.is_bf16_supported():  # bf16 autocast needs no loss scaling
        assert opt not in _SCALERS
    else:
        assert opt in _SCALERS and _SCALERS[opt].is_enabled()
