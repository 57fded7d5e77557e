"""Built-in dataset metadata: the ten MSD tasks and the generated ``synthetic*`` tasks.

This module is pure data (no numpy, torch or MONAI), so ``raynas datasets`` lists datasets
instantly. Target spacings and patch sizes follow nnU-Net's plans for the Decathlon (rounded so
every patch side is divisible by 16; in-plane only for the 2D datasets, whose patches are
``(H, W, 1)``); the search patch is a smaller crop that keeps supernet training affordable.

Example:
    >>> info = get_dataset_info("msd_task05")
    >>> info.task_folder, info.modality, info.in_channels, info.num_classes
    ('Task05_Prostate', 'MRI', 2, 3)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from raynas.errors import DataError
from raynas.registry import Registry

__all__ = ["DatasetInfo", "DATASETS", "list_datasets", "get_dataset_info"]


@dataclass(frozen=True)
class DatasetInfo:
    """Static description of a dataset: what it holds and how to preprocess it.

    Args:
        name: registry name (``msd_task02``, ``synthetic``, ...).
        organ: what is segmented (for listings).
        modality: ``"CT"`` (HU window, scaled to [0, 1]) or ``"MRI"`` (per-channel z-score).
        channels: names of the input channels (MSD ``modality`` entries).
        labels: class index -> name, background included.
        target_spacing: resampling target in mm, (x, y, z).
        search_patch: training patch of the search stages, (x, y, z) voxels.
        retrain_patch: training patch of the retrain stage, (x, y, z) voxels.
        task_folder: the MSD folder name (``Task02_Heart``); ``""`` for synthetic data.
        hu_window: CT intensity window (low, high) in HU; ``None`` for MRI.
        synthetic: generated locally instead of read from a user's folder.
        default_mode: ``"3d"`` or ``"2d"`` (axial slices).
        ct_zscore: CT only, planned from the data (:mod:`raynas.data.plan`): the foreground
            (mean, std); with it, intensities are clipped to ``hu_window`` and z-scored
            instead of scaled to [0, 1].

    Example:
        >>> DATASETS.get("synthetic").search_patch
        (32, 32, 16)
    """

    name: str
    organ: str
    modality: str
    channels: tuple[str, ...]
    labels: dict[int, str]
    target_spacing: tuple[float, float, float]
    search_patch: tuple[int, int, int]
    retrain_patch: tuple[int, int, int]
    task_folder: str = ""
    hu_window: tuple[float, float] | None = None
    synthetic: bool = False
    default_mode: str = "3d"
    ct_zscore: tuple[float, float] | None = None
    description: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if self.modality not in ("CT", "MRI"):
            raise ValueError(f"modality must be 'CT' or 'MRI', got {self.modality!r}")
        if self.default_mode not in ("3d", "2d"):
            raise ValueError(f"default_mode must be '3d' or '2d', got {self.default_mode!r}")
        if self.modality == "CT" and self.hu_window is None:
            raise ValueError(f"{self.name}: a CT dataset needs hu_window")
        if self.ct_zscore is not None and (self.modality != "CT" or not self.ct_zscore[1] > 0):
            raise ValueError(f"{self.name}: ct_zscore needs a CT dataset and a std > 0")
        if sorted(self.labels) != list(range(len(self.labels))) or len(self.labels) < 2:
            raise ValueError(f"{self.name}: labels must be 0..K-1 with K >= 2")
        for patch in (self.search_patch, self.retrain_patch):
            dims = patch[:2] if self.default_mode == "2d" else patch
            if len(patch) != 3 or any(p <= 0 or p % 16 for p in dims):
                raise ValueError(f"{self.name}: patch {patch} must be 3 ints divisible by 16")
            if self.default_mode == "2d" and patch[2] != 1:
                raise ValueError(f"{self.name}: a 2D patch must be (H, W, 1), got {patch}")

    @property
    def num_classes(self) -> int:
        """Number of output classes, background included."""
        return len(self.labels)

    @property
    def in_channels(self) -> int:
        """Number of input channels (MSD modalities)."""
        return len(self.channels)


DATASETS: Registry[DatasetInfo] = Registry("dataset")


def _msd(
    num: int,
    folder: str,
    organ: str,
    modality: str,
    channels: tuple[str, ...],
    labels: tuple[str, ...],
    spacing: tuple[float, float, float],
    search: tuple[int, int, int],
    retrain: tuple[int, int, int],
    hu_window: tuple[float, float] | None = None,
) -> None:
    name = f"msd_task{num:02d}"
    DATASETS.register(
        name,
        DatasetInfo(
            name=name,
            organ=organ,
            modality=modality,
            channels=channels,
            labels={i: n for i, n in enumerate(("background", *labels))},
            target_spacing=spacing,
            search_patch=search,
            retrain_patch=retrain,
            task_folder=folder,
            hu_window=hu_window,
            description=f"Medical Segmentation Decathlon {folder}",
        ),
    )


# fmt: off
_msd(1, "Task01_BrainTumour", "brain tumour", "MRI", ("FLAIR", "T1w", "t1gd", "T2w"),
     ("edema", "non-enhancing tumor", "enhancing tumour"),
     (1.0, 1.0, 1.0), (96, 96, 96), (128, 128, 128))
_msd(2, "Task02_Heart", "left atrium", "MRI", ("MRI",), ("left atrium",),
     (1.25, 1.25, 1.37), (96, 96, 64), (160, 192, 80))
_msd(3, "Task03_Liver", "liver", "CT", ("CT",), ("liver", "cancer"),
     (0.77, 0.77, 1.0), (96, 96, 96), (128, 128, 128), hu_window=(-100.0, 250.0))
_msd(4, "Task04_Hippocampus", "hippocampus", "MRI", ("MRI",), ("anterior", "posterior"),
     (1.0, 1.0, 1.0), (32, 48, 32), (48, 64, 48))
_msd(5, "Task05_Prostate", "prostate", "MRI", ("T2", "ADC"), ("PZ", "TZ"),
     (0.62, 0.62, 3.6), (160, 160, 16), (256, 256, 32))
_msd(6, "Task06_Lung", "lung tumour", "CT", ("CT",), ("cancer",),
     (0.79, 0.79, 1.24), (96, 96, 64), (192, 160, 80), hu_window=(-1000.0, 500.0))
_msd(7, "Task07_Pancreas", "pancreas", "CT", ("CT",), ("pancreas", "cancer"),
     (0.8, 0.8, 2.5), (128, 128, 32), (224, 224, 48), hu_window=(-100.0, 240.0))
_msd(8, "Task08_HepaticVessel", "hepatic vessel", "CT", ("CT",), ("vessel", "tumour"),
     (0.8, 0.8, 1.5), (96, 96, 48), (192, 192, 64), hu_window=(-100.0, 300.0))
_msd(9, "Task09_Spleen", "spleen", "CT", ("CT",), ("spleen",),
     (0.79, 0.79, 1.6), (96, 96, 64), (192, 160, 64), hu_window=(-60.0, 200.0))
_msd(10, "Task10_Colon", "colon cancer", "CT", ("CT",), ("colon cancer primaries",),
     (0.78, 0.78, 3.0), (128, 128, 32), (192, 192, 48), hu_window=(-60.0, 200.0))
# fmt: on

_SYNTH_LABELS = {0: "background", 1: "organ", 2: "lesion"}

DATASETS.register(
    "synthetic",
    DatasetInfo(
        name="synthetic",
        organ="synthetic organ + lesion",
        modality="MRI",
        channels=("MRI",),
        labels=dict(_SYNTH_LABELS),
        target_spacing=(1.0, 1.0, 2.5),
        search_patch=(32, 32, 16),
        retrain_patch=(48, 48, 32),
        synthetic=True,
        description="generated 3D task, 64x64x32 voxels at 1x1x2.5 mm",
    ),
)
DATASETS.register(
    "synthetic2d",
    DatasetInfo(
        name="synthetic2d",
        organ="synthetic organ + lesion",
        modality="MRI",
        channels=("MRI",),
        labels=dict(_SYNTH_LABELS),
        target_spacing=(1.0, 1.0, 2.5),
        search_patch=(64, 64, 1),
        retrain_patch=(96, 96, 1),
        synthetic=True,
        default_mode="2d",
        description="generated task for 2D (slice) mode, 96x96x12 voxels at 1x1x2.5 mm",
    ),
)

DATASETS.register(
    "synthetic_hard",
    DatasetInfo(
        name="synthetic_hard",
        organ="synthetic capsule cores, vessels, capsule walls",
        modality="MRI",
        channels=("MRI",),
        labels={0: "background", 1: "capsule core", 2: "vessel", 3: "capsule wall"},
        target_spacing=(1.0, 1.0, 3.0),
        search_patch=(64, 64, 16),
        retrain_patch=(64, 64, 16),
        synthetic=True,
        description="generated 3D task where architecture matters (context + thin structures), "
        "96x96x16 voxels at 1x1x3 mm",
    ),
)


def list_datasets(pattern: str = "*") -> list[DatasetInfo]:
    """All built-in datasets whose name matches the glob ``pattern``, in registry order."""
    return [DATASETS.get(n) for n in DATASETS.list(pattern)]


def get_dataset_info(name: str, *, option: str = "--dataset") -> DatasetInfo:
    """The metadata of a built-in dataset; a :class:`DataError` lists the valid names."""
    if name not in DATASETS:
        raise DataError(
            f"{option}: unknown dataset {name!r}; valid: {', '.join(DATASETS.list())}, or the "
            "path of an MSD or nnU-Net folder or a MONAI datalist .json"
        )
    return DATASETS.get(name)
