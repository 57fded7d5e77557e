"""The search stages' scoring proxy: cached foreground-centred patches, patch-level Dice."""

from __future__ import annotations

import math

import pytest
import torch
from engine_fakes import OneHotFromInput, TinyNet, make_volumes
from torch import nn

from raynas.engine import build_patch_set, evaluate_patches

CPU = torch.device("cpu")
VOLUME = (20, 18, 12)


def _patches(seed: int, *, spatial_dims: int = 3, roi=(8, 8, 4), classes: int = 3, per_case=5):
    volumes = make_volumes(n=3, shape=VOLUME, classes=classes, seed=7)
    return build_patch_set(
        volumes, roi_size=roi, spatial_dims=spatial_dims, num_classes=classes,
        patches_per_case=per_case, seed=seed,
    )  # fmt: skip


def test_same_seed_same_patches_same_score():
    a, b, c = _patches(0), _patches(0), _patches(1)
    assert len(a) == 15 and a.cases == 3
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert a.centres == b.centres and a.centres != c.centres
    torch.manual_seed(0)
    net = TinyNet(spatial_dims=3, in_channels=2, classes=3).eval()
    score_a = evaluate_patches(net, a, num_classes=3, device=CPU)
    score_b = evaluate_patches(net, b, num_classes=3, device=CPU, batch_size=2)
    assert score_a.dice == score_b.dice and score_a.per_class == score_b.per_class
    assert evaluate_patches(net, a, num_classes=3, device=CPU).dice == score_a.dice


def test_patches_are_centred_on_foreground_classes_in_turn():
    volumes = make_volumes(n=3, shape=VOLUME, classes=3, seed=7)
    patches = _patches(0)
    assert tuple(patches.images.shape) == (15, 2, 8, 8, 4)
    for i, (case, x, y, z) in enumerate(patches.centres):
        label = volumes[case]["label"][0, 0]
        assert int(label[x, y, z]) == 1 + (i % 5) % 2  # classes 1, 2, 1, 2, ... per case
        assert int(patches.labels[i].max()) > 0


@pytest.mark.parametrize(("spatial_dims", "roi"), [(3, (8, 8, 4)), (3, (32, 32, 16)), (2, (8, 8))])
def test_perfect_predictor_scores_one_and_a_shifted_one_less(spatial_dims, roi):
    patches = _patches(3, spatial_dims=spatial_dims, roi=roi)
    want = (2, 8, 8) if spatial_dims == 2 else (2, *roi)
    assert tuple(patches.images.shape[1:]) == want  # the volume is padded where it is smaller
    perfect = evaluate_patches(OneHotFromInput(classes=3), patches, num_classes=3, device=CPU)
    assert perfect.dice == pytest.approx(1.0) and perfect.per_class == pytest.approx([1.0, 1.0])
    bad = evaluate_patches(
        OneHotFromInput(classes=3, shift=3), patches, num_classes=3, device=CPU
    )
    assert 0.0 <= bad.dice < 0.95


class _Plus(OneHotFromInput):
    """Predicts the label (input channel 1) and also class ``extra`` in a corner box of every
    patch: false positives, wherever the patch is centred."""

    def __init__(self, *, classes: int, extra: int) -> None:
        super().__init__(classes=classes)
        self.extra = extra

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        label = x[:, 1].round().long().clamp(0, self.classes - 1)
        label[(slice(None), *(slice(0, 2) for _ in range(label.ndim - 1)))] = self.extra
        return nn.functional.one_hot(label, self.classes).movedim(-1, 1).float() * 10.0


def test_an_absent_class_scores_as_monai_dice_with_ignore_empty_false():
    patches = _patches(0, classes=2)  # class 2 is in no label
    right = evaluate_patches(OneHotFromInput(classes=3), patches, num_classes=3, device=CPU)
    assert right.per_class[1] == 1.0 and right.dice == pytest.approx((right.per_class[0] + 1) / 2)
    wrong = evaluate_patches(_Plus(classes=3, extra=2), patches, num_classes=3, device=CPU)
    assert wrong.per_class[1] == 0.0 and wrong.dice < right.dice  # a false positive costs
    old = evaluate_patches(_Plus(classes=3, extra=2), patches, num_classes=3, device=CPU,
                           ignore_empty=True)  # the rule of MONAI's ignore_empty=True
    assert math.isnan(old.per_class[1]) and old.dice == pytest.approx(old.per_class[0])


def test_a_share_of_patches_is_centred_on_background_and_costs_false_positives():
    volumes = make_volumes(n=3, shape=VOLUME, classes=3, seed=7)
    mixed = build_patch_set(volumes, roi_size=(8, 8, 4), spatial_dims=3, num_classes=3,
                            patches_per_case=5, background_share=0.4, seed=0)
    assert mixed.background == [False, False, False, True, True] * 3
    for i, (case, x, y, z) in enumerate(mixed.centres):
        centre = int(volumes[case]["label"][0, 0, x, y, z])
        assert (centre == 0) == mixed.background[i]
        if not mixed.background[i]:
            assert centre == 1 + (i % 5) % 2  # the foreground patches keep their rule
    fg_only = _patches(0)
    assert fg_only.background == [False] * 15
    # a predictor that paints class 1 into a corner of every patch: the background patches
    # add false positives the foreground-only proxy does not see all of
    plus = _Plus(classes=3, extra=1)
    fg_score = evaluate_patches(plus, fg_only, num_classes=3, device=CPU).per_class[0]
    mixed_score = evaluate_patches(plus, mixed, num_classes=3, device=CPU).per_class[0]
    assert mixed_score < fg_score
    with pytest.raises(ValueError, match="background_share"):
        build_patch_set(volumes, roi_size=(8, 8, 4), spatial_dims=3, num_classes=3,
                        background_share=1.0)
    one = build_patch_set(volumes, roi_size=(8, 8, 4), spatial_dims=3, num_classes=3,
                          patches_per_case=1, background_share=0.9)
    assert one.background == [False] * 3  # at least one foreground patch per case


def test_bad_options():
    with pytest.raises(ValueError, match="patches_per_case"):
        _patches(0, per_case=0)
    with pytest.raises(ValueError, match="no volumes"):
        build_patch_set([], roi_size=(8, 8, 4), spatial_dims=3, num_classes=2)


def test_loss_is_the_mean_of_the_loss_over_the_patches():
    from raynas.engine import make_loss

    patches = _patches(3)
    loss_fn = make_loss()
    perfect = evaluate_patches(OneHotFromInput(classes=3), patches, num_classes=3, device=CPU,
                               loss_fn=loss_fn)
    shifted = OneHotFromInput(classes=3, shift=3)
    bad = evaluate_patches(shifted, patches, num_classes=3, device=CPU, batch_size=2,
                           loss_fn=loss_fn)
    with torch.no_grad():  # one batch of all the patches: the same mean
        want = float(loss_fn(shifted(patches.images), patches.labels.long()))
    assert bad.loss == pytest.approx(want, rel=1e-5)
    assert bad.loss > perfect.loss + 0.2
    assert bad.to_dict()["val_loss"] == bad.loss
    plain = evaluate_patches(shifted, patches, num_classes=3, device=CPU)
    assert math.isnan(plain.loss) and "val_loss" not in plain.to_dict()
    assert plain.dice == bad.dice
