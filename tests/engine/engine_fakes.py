"""Tiny real torch modules and in-memory batches for the engine tests (no mocks)."""

from __future__ import annotations

import torch
from torch import nn

torch.set_num_threads(2)


def conv(spatial_dims: int, cin: int, cout: int, kernel: int = 3) -> nn.Module:
    cls = nn.Conv3d if spatial_dims == 3 else nn.Conv2d
    return cls(cin, cout, kernel, padding=kernel // 2)


class TinyNet(nn.Module):
    """Two conv layers, 2D or 3D: enough to learn blob segmentation in a few steps."""

    def __init__(self, *, spatial_dims: int = 2, in_channels: int = 1, classes: int = 2) -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv(spatial_dims, in_channels, 8), nn.ReLU(), conv(spatial_dims, 8, classes, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class FakeSupernet(nn.Module):
    """Two candidate ops mixed by a softmax over alpha; set_active picks one path instead."""

    def __init__(self, *, spatial_dims: int = 2, classes: int = 2) -> None:
        super().__init__()
        self.ops = nn.ModuleList([conv(spatial_dims, 1, 8, 3), conv(spatial_dims, 1, 8, 1)])
        self.head = conv(spatial_dims, 8, classes, 1)
        self.alpha = nn.Parameter(torch.zeros(2))
        self.active: int | None = None
        self.activations: list[int] = []

    def set_active(self, choice: int) -> None:
        self.active = int(choice)
        self.activations.append(self.active)

    def arch_parameters(self) -> list[nn.Parameter]:
        return [self.alpha]

    def weight_parameters(self) -> list[nn.Parameter]:
        return [p for name, p in self.named_parameters() if name != "alpha"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.active is not None:
            h = self.ops[self.active](x)
        else:
            w = torch.softmax(self.alpha, dim=0)
            h = sum(wi * op(x) for wi, op in zip(w, self.ops, strict=True))
        return self.head(torch.relu(h))


class NaNNet(nn.Module):
    """Outputs NaN logits (with a real parameter so an optimiser can be built)."""

    def __init__(self, *, classes: int = 2) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = torch.cat([x[:, :1], -x[:, :1]], dim=1) * self.scale
        return logits * float("nan")


class OneHotFromInput(nn.Module):
    """A 'perfect' (or shifted, i.e. bad) predictor: input channel 1 carries the label."""

    def __init__(self, *, classes: int, shift: int = 0) -> None:
        super().__init__()
        self.classes = classes
        self.shift = shift
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        label = x[:, 1].round().long().clamp(0, self.classes - 1)
        if self.shift:
            label = torch.roll(label, shifts=self.shift, dims=1)
        logits = nn.functional.one_hot(label, self.classes).movedim(-1, 1).float() * 10.0
        return logits + self.dummy


def blob_label(
    shape: tuple[int, ...], generator: torch.Generator, classes: int = 2
) -> torch.Tensor:
    """Integer label map with one random box per foreground class."""
    label = torch.zeros(shape, dtype=torch.long)
    for c in range(1, classes):
        lo = [int(torch.randint(0, s // 2, (1,), generator=generator)) for s in shape]
        size = [max(3, s // 3) for s in shape]
        label[tuple(slice(a, a + b) for a, b in zip(lo, size, strict=True))] = c
    return label


def make_batches(
    *, n: int, batch_size: int, shape: tuple[int, ...], seed: int = 0, classes: int = 2
) -> list[dict[str, torch.Tensor]]:
    """Patches: image = label intensity + noise (learnable), label (B, 1, *shape)."""
    g = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(n):
        labels = torch.stack([blob_label(shape, g, classes) for _ in range(batch_size)])[:, None]
        image = labels.float() + 0.3 * torch.randn(labels.shape, generator=g)
        batches.append({"image": image, "label": labels})
    return batches


def make_volumes(
    *, n: int, shape: tuple[int, int, int], classes: int, seed: int = 0
) -> list[dict[str, torch.Tensor]]:
    """Whole volumes (batch 1): channel 0 noisy intensity, channel 1 the label itself."""
    g = torch.Generator().manual_seed(seed)
    volumes = []
    for _ in range(n):
        label = blob_label(shape, g, classes)[None, None]
        noisy = label.float() + 0.3 * torch.randn(label.shape, generator=g)
        image = torch.cat([noisy, label.float()], dim=1)
        volumes.append({"image": image, "label": label})
    return volumes
