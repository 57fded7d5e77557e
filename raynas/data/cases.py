"""What an opened dataset is: :class:`Case` (image + label files) and :class:`MSDDataset`.

Plain data, no I/O: :func:`raynas.data.msd.read_msd` builds them, :mod:`raynas.data.validate`
checks them, :mod:`raynas.data.loaders` turns them into loaders.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from raynas.data.tasks import DatasetInfo

__all__ = ["Case", "MSDDataset"]


@dataclass(frozen=True)
class Case:
    """One training case: its image file (or one file per channel, nnU-Net style), its label
    file and a short name."""

    image: Path | tuple[Path, ...]
    label: Path
    name: str

    @property
    def images(self) -> tuple[Path, ...]:
        """The image file(s): one (3D or 4D) file, or one file per channel."""
        return self.image if isinstance(self.image, tuple) else (self.image,)

    def as_dict(self) -> dict[str, Any]:
        """The MONAI dict-transform input: ``{"image": path, "label": path, "name": name}``
        (``image`` is a list of paths for one file per channel: LoadImaged stacks them)."""
        image: Any = [str(p) for p in self.image] if isinstance(self.image, tuple) else str(
            self.image
        )
        return {"image": image, "label": str(self.label), "name": self.name}


@dataclass(frozen=True)
class MSDDataset:
    """A task folder read from its ``dataset.json`` (no I/O here: see :func:`read_msd` and
    :mod:`raynas.data.layouts` for a user's MSD or nnU-Net folder or MONAI datalist).

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
    # a user's folder or datalist: the absolute path that reopens it (--dataset PATH), and the
    # plan.json (raynas.data.plan) its planned spacing, patches and normalisation come from
    source: str | None = None
    plan_file: str | None = None
    # the plan itself while plan_file is not written yet (see raynas.data.plan.save_plan)
    plan_data: dict[str, Any] | None = field(default=None, compare=False, repr=False)

    @property
    def ref(self) -> str:
        """What ``--dataset`` reopens this dataset with: a built-in name or the folder's path."""
        return self.source or self.info.name

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
