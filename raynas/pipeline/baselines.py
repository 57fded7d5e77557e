"""The baselines a run retrains beside the searched networks (``raynas baseline --model``, the
preset's ``retrain.baselines``): U-Net, UNet++ and DynUNet at the preset's retrain width, built
as :class:`raynas.nets.Architecture` data."""

from __future__ import annotations

from typing import Any

from raynas.errors import UserError

__all__ = ["BASELINES", "baseline_architecture", "baseline_architectures"]

BASELINES = ("unet", "unetpp", "dynunet")


def baseline_architecture(name: str, *, preset: Any, dataset: Any, spatial_dims: int) -> Any:
    """The Architecture of baseline ``name`` (unet | unetpp | dynunet) for ``dataset``, at the
    preset's retrain width (DynUNet planned from the target spacing and retrain patch)."""
    from raynas.nets.baselines import dynunet_plan, unet_architecture, unetpp_architecture

    dims = spatial_dims
    info = dataset.info
    channels = {"in_channels": dataset.in_channels, "out_channels": dataset.num_classes}
    if name == "dynunet":
        patch = preset.data.retrain_patch_size or list(info.retrain_patch)
        spacing = tuple(preset.data.spacing or info.target_spacing)
        return dynunet_plan(
            spacing[:dims], tuple(patch)[:dims], base_width=preset.retrain.width, **channels
        )
    if name not in ("unet", "unetpp"):
        raise UserError(f"--model {name}: unknown baseline; valid: {', '.join(BASELINES)}")
    make = unet_architecture if name == "unet" else unetpp_architecture
    return make(spatial_dims=dims, width=preset.retrain.width, **channels)


def baseline_architectures(*, preset: Any, dataset: Any, spatial_dims: int) -> dict[str, str]:
    """Architecture JSON of each baseline the preset asks to retrain
    (``retrain.baselines``), by candidate name (``baseline-<name>``)."""
    return {
        f"baseline-{name}": baseline_architecture(
            name, preset=preset, dataset=dataset, spatial_dims=spatial_dims
        ).to_json()
        for name in preset.retrain.baselines
    }
