"""What an opened dataset is: :class:`Case` (image + label files) and :class:`MSDDataset`.

Plain data, no I/O: :func:`raynas.data.msd.read_msd` builds them, :mod:`raynas.data.validate`
checks them, :mod:`raynas.data.loaders` turns them into loaders.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from raynas.data.tasks import DatasetInfo

__all__ = ["Case", "MSDDataset"]


@dataclass(frozen=True)
class Case:
    """One training case: an image file, its label file and a short name."""

    image: Path
    label: Path
    name: str

    def as_dict(self) -> dict[str, str]:
        """The MONAI dict-transform input: ``{"image": path, "label": path, "name": name}``."""
        return {"image": str(self.image), "label": str(self.label), "name": self.name}


@dataclass(frozen=True)
class MSDDataset:
    """A task folder read from its ``dataset.json`` (no I/O here: see :func:`read_msd`).

    Example:
        >>> from raynas.data.tasks import get_dataset_info
        >>> info = get_dataset_info("synthetic")
        >>> ds = MSDDataset(root=Path("/d"), cases=[], labels={0: "bg", 1: "a"},
        ...                 channels=("MRI",), info=info)
        >>> ds.num_classes, ds.in_channels, ds.modality
        (2, 1, 'MRI')
    """

    root: Path
    cases: list[Case]
    labels: dict[int, str]
    channels: tuple[str, ...]
    info: DatasetInfo

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    @property
    def in_channels(self) -> int:
        return len(self.channels)

    @property
    def modality(self) -> str:
        return self.info.modality

    @property
    def name(self) -> str:
        return self.info.name

    def __len__(self) -> int:
        return len(self.cases)
