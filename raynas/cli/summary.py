"""``raynas summary MODEL_OR_ARCH.json``: exact parameters, FLOPs and activation memory.

A target is an ``ARCH.json`` path (any registered space) or a registered model name (see
:func:`raynas.nets.register_named_model`; the baselines register ``unet``, ``unetpp``,
``dynunet``). ``--input-size`` takes 2 or 3 numbers (``--input-size 96 96 96``) or ``96x96x96``.

``--png OUT.png`` also draws the architecture (:mod:`raynas.nets.drawing`).

Example:
    raynas summary runs/best/ARCH.json --input-size 96 96 96 --json
    raynas summary runs/best/ARCH.json --png arch.png
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from raynas.errors import UserError

__all__ = ["summary", "resolve_target", "summarize"]


def resolve_target(
    target: str, *, spatial_dims: int = 3, in_channels: int = 1, out_channels: int = 2,
    input_size: tuple[int, ...] | None = None,
) -> Any:
    """An ARCH.json path or a registered model name -> validated Architecture.

    ``dynunet`` is planned for ``input_size`` as its patch (isotropic spacing) when given.
    """
    from raynas.nets import load_architecture, named_architecture

    if target.endswith(".json") or Path(target).is_file():
        return load_architecture(Path(target))
    if target == "dynunet" and input_size is not None:
        from raynas.nets.baselines import dynunet_architecture

        return dynunet_architecture(spatial_dims=len(input_size), in_channels=in_channels,
                                    out_channels=out_channels, patch_size=input_size)
    return named_architecture(target, spatial_dims=spatial_dims, in_channels=in_channels,
                              out_channels=out_channels)


def summarize(arch: Any, input_size: tuple[int, ...]) -> dict[str, Any]:
    """Parameters, FLOPs and activation bytes of ``arch`` for one input of ``input_size``."""
    from raynas.nets import build_network, model_cost

    if len(input_size) != arch.spatial_dims:
        raise UserError(f"--input-size: {len(input_size)} numbers given, the architecture is "
                        f"{arch.spatial_dims}D")
    net = build_network(arch)
    try:
        cost = model_cost(net, input_size, in_channels=arch.in_channels)
    except (RuntimeError, NotImplementedError):  # an op without meta support: run it for real
        cost = model_cost(net, input_size, in_channels=arch.in_channels, device="cpu")
    return {"space": arch.space, "spatial_dims": arch.spatial_dims,
            "input_size": list(input_size), **cost.to_dict()}


def _parse_sizes(values: list[str]) -> tuple[int, ...]:
    parts = [p for v in values for p in v.replace(",", "x").split("x") if p]
    try:
        sizes = tuple(int(p) for p in parts)
    except ValueError:
        raise UserError(f"--input-size: expected 2 or 3 integers, got {' '.join(values)}") \
            from None
    if len(sizes) not in (2, 3) or any(s < 1 for s in sizes):
        raise UserError(f"--input-size: expected 2 or 3 positive integers, got {' '.join(values)}")
    return sizes


def summary(
    target: list[str] = typer.Argument(..., help="ARCH.json or a model name (unet, ...)."),
    input_size: str = typer.Option(None, "--input-size",
                                   help="Input size: --input-size 96 96 96 (or 96x96x96)."),
    in_channels: int = typer.Option(1, "--in-channels", min=1, help="For a model name."),
    classes: int = typer.Option(2, "--classes", min=1, help="For a model name."),
    dims: int = typer.Option(None, "--dims", min=2, max=3,
                             help="For a model name: 2 or 3 (default: from --input-size, or 3)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    png: Path = typer.Option(None, "--png", help="Also draw the architecture into this PNG."),
) -> None:
    """Exact parameters, FLOPs and an activation-memory estimate of a model for one input."""
    name, extra = target[0], target[1:]
    if extra and input_size is None:
        raise UserError(f"unexpected arguments: {' '.join(extra)}")
    sizes = _parse_sizes([input_size, *extra]) if input_size is not None else None
    if dims is not None and sizes is not None and len(sizes) != dims:
        raise UserError(f"--input-size: {len(sizes)} numbers given, but --dims {dims}")
    dims = dims or (len(sizes) if sizes is not None else 3)
    arch = resolve_target(name, spatial_dims=dims, in_channels=in_channels, out_channels=classes,
                          input_size=sizes)
    if sizes is None:
        sizes = (96,) * arch.spatial_dims
    facts = {"target": name, **summarize(arch, sizes)}
    if png is not None:
        from raynas.nets.drawing import save_architecture_png

        out = png.expanduser()
        if out.suffix.lower() != ".png":
            raise UserError(f"--png {png}: expected a file name ending in .png")
        try:
            facts["png"] = str(save_architecture_png(arch, out, name=Path(name).stem))
        except OSError as exc:
            raise UserError(f"--png {png}: cannot write it ({exc.strerror or exc})") from None
    if as_json:
        typer.echo(json.dumps(facts, indent=2))
        return
    typer.echo(f"model:        {name} (space {facts['space']}, {facts['spatial_dims']}D)")
    typer.echo(f"input:        {'x'.join(map(str, sizes))}")
    typer.echo(f"parameters:   {facts['params']:,}")
    typer.echo(f"FLOPs (MACs): {facts['flops']:,} ({facts['flops'] / 1e9:.2f} G)")
    typer.echo(f"activations:  {facts['act_bytes'] / 2**20:.1f} MiB (float32, batch 1)")
    if "png" in facts:
        typer.echo(f"picture:      {facts['png']}")
