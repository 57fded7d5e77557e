"""Sliding-window Dice on whole volumes, 3D and 2D-on-3D (SliceInferer)."""

from __future__ import annotations

import math

import pytest
import torch
from engine_fakes import OneHotFromInput, TinyNet, make_volumes

from raynas.engine import EvalResult, evaluate, make_inferer

CPU = torch.device("cpu")
VOLUME = (20, 18, 12)  # not a multiple of the roi: windows overlap and pad
CASES = [
    # spatial_dims, roi_size (for a 2D net: the 2D patch, or (X, Y, 1))
    (3, (12, 12, 8)),
    (3, (32, 32, 32)),  # roi larger than the volume: padded
    (2, (16, 16)),
    (2, (16, 16, 1)),
]


@pytest.mark.parametrize(("spatial_dims", "roi"), CASES)
@pytest.mark.parametrize("classes", [2, 3])
def test_perfect_predictor_scores_one(spatial_dims, roi, classes):
    volumes = make_volumes(n=2, shape=VOLUME, classes=classes)
    result = evaluate(
        OneHotFromInput(classes=classes), volumes, num_classes=classes, roi_size=roi,
        spatial_dims=spatial_dims, device=CPU,
    )  # fmt: skip
    assert isinstance(result, EvalResult)
    assert result.cases == 2 and len(result.per_class) == classes - 1
    assert result.dice == pytest.approx(1.0)
    assert result.per_class == pytest.approx([1.0] * (classes - 1))


@pytest.mark.parametrize(("spatial_dims", "roi"), CASES[::2])
def test_bad_predictor_scores_below_one(spatial_dims, roi):
    volumes = make_volumes(n=2, shape=VOLUME, classes=3)
    result = evaluate(
        OneHotFromInput(classes=3, shift=3), volumes, num_classes=3, roi_size=roi,
        spatial_dims=spatial_dims, device=CPU,
    )  # fmt: skip
    assert 0.0 < result.dice < 0.9
    assert all(0.0 <= d < 0.9 for d in result.per_class)


def test_slice_inferer_feeds_2d_axial_slices():
    seen: list[tuple[int, ...]] = []

    class Recorder(OneHotFromInput):
        def forward(self, x):
            seen.append(tuple(x.shape))
            return super().forward(x)

    volumes = make_volumes(n=1, shape=VOLUME, classes=2)
    evaluate(Recorder(classes=2), volumes, num_classes=2, roi_size=(20, 18), spatial_dims=2,
             device=CPU, sw_batch_size=4)  # fmt: skip
    assert all(len(s) == 4 and s[2:] == (20, 18) for s in seen)  # (B, C, X, Y)
    assert sum(s[0] for s in seen) == VOLUME[2]  # one window per axial slice


def test_class_absent_everywhere_is_nan_and_left_out():
    volumes = make_volumes(n=2, shape=VOLUME, classes=2)  # labels hold classes 0 and 1 only
    result = evaluate(
        OneHotFromInput(classes=3), volumes, num_classes=3, roi_size=(12, 12, 8),
        spatial_dims=3, device=CPU,
    )  # fmt: skip
    assert result.per_class[0] == pytest.approx(1.0) and math.isnan(result.per_class[1])
    assert result.dice == pytest.approx(1.0)


def test_case_without_a_class_does_not_count_for_it():
    with_fg, without_fg = make_volumes(n=2, shape=VOLUME, classes=2)
    without_fg = {k: v.clone() for k, v in without_fg.items()}
    without_fg["label"].zero_()  # label empty; channel 1 of the image still predicts a blob
    result = evaluate(
        OneHotFromInput(classes=2), [with_fg, without_fg], num_classes=2, roi_size=(12, 12, 8),
        spatial_dims=3, device=CPU,
    )  # fmt: skip
    assert result.cases == 2 and result.dice == pytest.approx(1.0)


def test_max_cases_and_train_mode_restored():
    net = TinyNet(spatial_dims=3, in_channels=2)
    net.train()
    result = evaluate(
        net, make_volumes(n=3, shape=VOLUME, classes=2), num_classes=2, roi_size=(12, 12, 8),
        spatial_dims=3, device=CPU, max_cases=1,
    )  # fmt: skip
    assert result.cases == 1 and 0.0 <= result.dice <= 1.0
    assert net.training
    metrics = result.to_dict()
    assert set(metrics) == {"val_dice", "val_dice_1", "val_cases", "val_seconds"}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"spatial_dims": 1, "roi_size": (8,)}, "spatial_dims"),
        ({"spatial_dims": 3, "roi_size": (8, 8)}, "3 values"),
        ({"spatial_dims": 2, "roi_size": (8, 8, 4)}, "2 values"),
        ({"spatial_dims": 3, "roi_size": (8, 8, 8), "overlap": 1.0}, "overlap"),
    ],
)
def test_make_inferer_rejects(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_inferer(**kwargs)


def test_evaluate_rejects_empty_loader_and_2d_images():
    net = OneHotFromInput(classes=2)
    with pytest.raises(ValueError, match="no volumes"):
        evaluate(net, [], num_classes=2, roi_size=(8, 8), spatial_dims=2, device=CPU)
    flat = [{"image": torch.zeros(1, 2, 8, 8), "label": torch.zeros(1, 1, 8, 8)}]
    with pytest.raises(ValueError, match="whole 3D volumes"):
        evaluate(net, flat, num_classes=2, roi_size=(8, 8), spatial_dims=2, device=CPU)


@pytest.mark.parametrize(("spatial_dims", "roi"), CASES[::2])
def test_loss_is_measured_on_the_whole_volumes_on_request(spatial_dims, roi):
    from raynas.engine import make_loss

    volumes = make_volumes(n=2, shape=VOLUME, classes=3)
    kwargs = {"num_classes": 3, "roi_size": roi, "spatial_dims": spatial_dims, "device": CPU}
    loss_fn = make_loss()
    perfect = evaluate(OneHotFromInput(classes=3), volumes, loss_fn=loss_fn, **kwargs)
    shifted = OneHotFromInput(classes=3, shift=3)
    bad = evaluate(shifted, volumes, loss_fn=loss_fn, **kwargs)
    inferer = make_inferer(roi_size=roi, spatial_dims=spatial_dims)
    with torch.no_grad():  # the mean over the volumes of the loss on the stitched logits
        want = sum(float(loss_fn(inferer(v["image"], shifted), v["label"].long()))
                   for v in volumes) / len(volumes)
    assert bad.loss == pytest.approx(want, rel=1e-5)
    assert bad.loss > perfect.loss + 0.2
    assert math.isnan(evaluate(shifted, volumes, **kwargs).loss)
