"""Generated segmentation tasks (``synthetic``, ``synthetic2d``, ``synthetic_hard``) as MSD folders.

Each case is a small MRI-like volume: textured body tissue, a deformed rotated ellipsoid "organ"
(class 1), a small irregular blob or tube "lesion" inside or touching it (class 2), unlabelled
distractor blobs of similar intensity, a smooth multiplicative bias field, Rician noise and
anisotropic voxels (1 x 1 x 2.5 mm). Size, position, orientation and contrast vary per case.
Case ``i`` depends only on ``(seed, i)``: the same seed gives byte-identical arrays.

``synthetic_hard`` (:func:`generate_hard_case`) is built so that the architecture matters:

- **capsule cores** (class 1) need a large receptive field: a round blob inside a thin-walled
  capsule (a cylindrical shell through every slice, 16-20 mm out from the core's surface) is
  class 1; blobs of the *same* intensity, size and shape outside any capsule are unlabelled
  distractors. From the blob alone the two are identical; only context 16-20 voxels away (the
  wall) tells them apart. A C2F network whose cells all work at level 0 (1/2 resolution, a
  receptive field of about 13 voxels radius in ``c2f_small``) cannot see it and labels cores and
  distractors alike (measured: class-1 Dice 0.55 against 0.77 for the U-shaped topology
  0-1-2-2-1-0, same op and width, 480 steps, by a removed benchmark whose file had no
  provenance: not re-measured by the current code).
- **vessels** (class 2) need resolution: curved tubes of 0.9-1.4 mm radius (about one voxel
  across), faint after partial-volume blurring; a network that only works at 1/4 or 1/8 scale
  smears them away.
- **capsule walls** (class 3): the thin shells themselves (1.2-1.8 mm thick): thin, and bright
  like the cores and vessels.

All of it with textured tissue, a multiplicative bias field, Rician noise and partial-volume
edges, as ``synthetic``; 96 x 96 x 16 voxels at 1 x 1 x 3 mm (room for a capsule and distractors
well clear of it).

The folder is read back through :func:`raynas.data.msd.read_msd`, like any MSD task.

Example:
    >>> root = write_synthetic(out, name="synthetic", cases=4, seed=0)  # doctest: +SKIP
    >>> sorted(p.name for p in root.iterdir())  # doctest: +SKIP
    ['dataset.json', 'imagesTr', 'labelsTr']
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from raynas.errors import DataError

__all__ = [
    "SyntheticSpec",
    "SPECS",
    "cache_root",
    "generate_case",
    "generate_hard_case",
    "write_synthetic",
    "ensure_synthetic",
]


@dataclass(frozen=True)
class SyntheticSpec:
    """Volume geometry of a synthetic dataset (``z_fill`` stretches structures along z)."""

    shape: tuple[int, int, int]
    spacing: tuple[float, float, float]
    z_fill: float


SPECS: dict[str, SyntheticSpec] = {
    "synthetic": SyntheticSpec(shape=(64, 64, 32), spacing=(1.0, 1.0, 2.5), z_fill=0.3),
    "synthetic2d": SyntheticSpec(shape=(96, 96, 12), spacing=(1.0, 1.0, 2.5), z_fill=0.9),
    "synthetic_hard": SyntheticSpec(shape=(96, 96, 16), spacing=(1.0, 1.0, 3.0), z_fill=0.0),
}

# Bumped when a generator's output changes, so a cached folder of the old output is not reused.
GENERATOR_VERSION: dict[str, int] = {"synthetic_hard": 2}

LABELS: dict[str, dict[str, str]] = {
    "synthetic": {"0": "background", "1": "organ", "2": "lesion"},
    "synthetic2d": {"0": "background", "1": "organ", "2": "lesion"},
    "synthetic_hard": {"0": "background", "1": "capsule core", "2": "vessel", "3": "capsule wall"},
}


def cache_root(cache_dir: Path | str | None = None) -> Path:
    """The raynas cache: ``cache_dir``, else ``$RAYNAS_CACHE_DIR``, else ``~/.cache/raynas``."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get("RAYNAS_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "raynas"


def _basis(n: int, k: int) -> np.ndarray:
    """(n, k) Gaussian interpolation weights from k coarse nodes to n voxels (rows sum to 1)."""
    x = (np.arange(n) + 0.5) / n
    g = (np.arange(k) + 0.5) / k
    w = np.exp(-0.5 * ((x[:, None] - g[None, :]) * k / 0.8) ** 2)
    return w / w.sum(1, keepdims=True)


def _smooth(
    rng: np.random.Generator, shape: tuple[int, ...], coarse: tuple[int, ...]
) -> np.ndarray:
    """A smooth random field of roughly unit amplitude: a coarse Gaussian grid, interpolated."""
    low = rng.standard_normal(coarse) * 3.2
    bx, by, bz = (_basis(n, k) for n, k in zip(shape, coarse, strict=True))
    return np.einsum("ai,bj,ck,ijk->abc", bx, by, bz, low, optimize=True).astype(np.float32)


def _rotation(theta: float, tilt: float) -> np.ndarray:
    c, s = np.cos(theta), np.sin(theta)
    rz = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    ct, st = np.cos(tilt), np.sin(tilt)
    rx = np.array([[1.0, 0.0, 0.0], [0.0, ct, -st], [0.0, st, ct]])
    return rx @ rz


def _ellipsoid(
    grid: np.ndarray, center: np.ndarray, radii: np.ndarray, rot: np.ndarray
) -> np.ndarray:
    """Implicit function sum((R (p - c) / r)^2) over ``grid`` (3, X, Y, Z) in mm; < 1 inside."""
    d = np.tensordot(rot, grid - center[:, None, None, None], axes=1)
    return ((d / radii[:, None, None, None]) ** 2).sum(0)


def _tube(grid: np.ndarray, a: np.ndarray, b: np.ndarray, radius: float) -> np.ndarray:
    """Normalised distance to the segment a-b (< 1 inside a tube of ``radius`` mm)."""
    ab = b - a
    ap = grid - a[:, None, None, None]
    t = np.clip(np.tensordot(ab, ap, axes=1) / float(ab @ ab), 0.0, 1.0)
    closest = a[:, None, None, None] + ab[:, None, None, None] * t
    return np.sqrt(((grid - closest) ** 2).sum(0)) / radius


def generate_case(spec: SyntheticSpec, seed: int, index: int) -> tuple[np.ndarray, np.ndarray]:
    """One case: ``(image int16, label uint8)`` of ``spec.shape``; depends on (seed, index)."""
    from scipy import ndimage

    rng = np.random.default_rng([seed, index, 7919])
    shape, sp = spec.shape, np.asarray(spec.spacing)
    ext = np.asarray(shape) * sp
    axes = [(np.arange(n) + 0.5) * s - e / 2 for n, s, e in zip(shape, sp, ext, strict=True)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij")).astype(np.float32)
    coarse = (5, 5, 3)

    # Body: an elliptic cylinder of textured tissue, air outside.
    body_r = np.array([0.46, 0.40]) * ext[:2] * rng.uniform(0.88, 1.0, 2)
    body = (grid[0] / body_r[0]) ** 2 + (grid[1] / body_r[1]) ** 2 < 1.0
    t_body = rng.uniform(0.25, 0.4)
    texture = 0.05 * _smooth(rng, shape, (12, 12, 6)) + 0.04 * _smooth(rng, shape, coarse)
    img = np.where(body, t_body + texture, 0.0).astype(np.float32)

    # Organ (class 1): deformed, rotated ellipsoid.
    center = np.array([*(rng.uniform(-0.1, 0.1, 2) * ext[:2]), rng.uniform(-0.08, 0.08) * ext[2]])
    radii = np.array([*(rng.uniform(0.15, 0.24, 2) * ext[:2]), spec.z_fill * ext[2]])
    radii[2] *= rng.uniform(0.9, 1.25)
    rot = _rotation(rng.uniform(0, np.pi), rng.uniform(-0.25, 0.25) * (spec.z_fill < 0.5))
    f_org = _ellipsoid(grid, center, radii, rot) * (1.0 + 0.22 * _smooth(rng, shape, coarse))
    organ = (f_org < 1.0) & body
    t_org = t_body + rng.uniform(0.2, 0.4)

    # Lesion (class 2): a blob or a short tube, inside or touching the organ.
    lesion = np.zeros(shape, bool)
    for _ in range(20):
        direction = rng.normal(size=3)
        direction /= np.linalg.norm(direction)
        local = direction * radii * rng.uniform(0.2, 1.0)
        c = center + rot.T @ local
        if rng.random() < 0.6:
            r = np.array([*rng.uniform(3.0, 6.5, 2), rng.uniform(4.0, 9.0)])
            f = _ellipsoid(grid, c, r, _rotation(rng.uniform(0, np.pi), 0.0))
            f *= 1.0 + 0.35 * _smooth(rng, shape, (8, 8, 4))
        else:
            d = rng.normal(size=3) * np.array([1.0, 1.0, 2.0])
            d *= rng.uniform(6.0, 10.0) / np.linalg.norm(d)
            f = _tube(grid, c - d, c + d, rng.uniform(1.8, 3.0))
        lesion = (f < 1.0) & body
        if lesion.sum() >= min(30, lesion.size // 2000):
            break
    if not lesion.any():  # tiny volumes: fall back to a small sphere at the organ centre
        lesion = (_ellipsoid(grid, center, np.full(3, 4.0), np.eye(3)) < 1.0) & body
    t_les = t_org + rng.choice([-1.0, 1.0]) * rng.uniform(0.18, 0.3)

    # Unlabelled distractors with organ- or lesion-like intensity, outside the labelled structures.
    fg = organ | lesion
    distract = np.zeros(shape, np.float32)
    for k in range(int(rng.integers(3, 6))):
        c = np.array([*(rng.uniform(-0.35, 0.35, 2) * ext[:2]), rng.uniform(-0.3, 0.3) * ext[2]])
        r = np.array([*rng.uniform(4.0, 10.0, 2), rng.uniform(5.0, 14.0)])
        blob = _ellipsoid(grid, c, r, _rotation(rng.uniform(0, np.pi), 0.0)) < 1.0
        level = (t_org if k == 0 or rng.random() < 0.6 else t_les) * rng.uniform(0.95, 1.05)
        distract = np.where(blob & body & ~fg, level, distract)

    img = np.where(distract > 0, distract, img)
    img = np.where(organ, t_org + 0.03 * texture / 0.05, img)
    img = np.where(lesion, t_les, img)
    img = ndimage.gaussian_filter(img, sigma=(0.7, 0.7, 0.3))  # partial-volume edges
    img *= np.exp(0.15 * _smooth(rng, shape, (3, 3, 2)))  # multiplicative bias field
    sigma = rng.uniform(0.025, 0.05)
    n1, n2 = rng.normal(0, sigma, (2, *shape))
    img = np.sqrt((img + n1) ** 2 + n2**2)  # Rician magnitude noise
    img = np.round(img * rng.uniform(800.0, 1200.0)).astype(np.int16)  # scanner-like integers

    label = np.zeros(shape, np.uint8)
    label[organ] = 1
    label[lesion] = 2
    return img, label


def _grid(spec: SyntheticSpec) -> tuple[np.ndarray, np.ndarray]:
    shape, sp = spec.shape, np.asarray(spec.spacing)
    ext = np.asarray(shape) * sp
    axes = [(np.arange(n) + 0.5) * s - e / 2 for n, s, e in zip(shape, sp, ext, strict=True)]
    return np.stack(np.meshgrid(*axes, indexing="ij")).astype(np.float32), ext


def _scanner(rng: np.random.Generator, img: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Partial volume, bias field, Rician noise and integer scaling (as ``synthetic``)."""
    from scipy import ndimage

    img = ndimage.gaussian_filter(img, sigma=(0.7, 0.7, 0.3))
    img = img * np.exp(0.15 * _smooth(rng, shape, (3, 3, 2)))
    sigma = rng.uniform(0.025, 0.045)
    n1, n2 = rng.normal(0, sigma, (2, *shape))
    img = np.sqrt((img + n1) ** 2 + n2**2)
    return np.round(img * rng.uniform(800.0, 1200.0)).astype(np.int16)


def generate_hard_case(
    spec: SyntheticSpec, seed: int, index: int
) -> tuple[np.ndarray, np.ndarray]:
    """One ``synthetic_hard`` case (see the module docstring); depends on (seed, index)."""
    rng = np.random.default_rng([seed, index, 104729])
    shape = spec.shape
    grid, ext = _grid(spec)
    body_r = np.array([0.47, 0.43]) * ext[:2] * rng.uniform(0.92, 1.0, 2)
    body = (grid[0] / body_r[0]) ** 2 + (grid[1] / body_r[1]) ** 2 < 1.0
    t_body = rng.uniform(0.25, 0.35)
    texture = 0.05 * _smooth(rng, shape, (12, 12, 4)) + 0.04 * _smooth(rng, shape, (5, 5, 2))
    img = np.where(body, t_body + texture, 0.0).astype(np.float32)
    label = np.zeros(shape, np.uint8)
    t_blob = t_body + rng.uniform(0.3, 0.45)
    t_wall = t_body + rng.uniform(0.25, 0.4)

    # Blob centres: capsules first (1-2), then distractors (2-3). A capsule's wall lies 16-20 mm
    # beyond its core, so no distractor may sit inside one: distractors keep 7 mm clear of every
    # capsule's outer radius and 14 mm from each other.
    walls = np.zeros(shape, bool)
    n_caps, n_free = int(rng.integers(1, 3)), int(rng.integers(2, 4))
    caps: list[tuple[np.ndarray, float, np.ndarray]] = []  # (centre, core radius, outer radii)
    free: list[np.ndarray] = []
    for _ in range(600):
        if len(caps) == n_caps and len(free) == n_free:
            break
        c = np.array([*(rng.uniform(-0.3, 0.3, 2) * ext[:2]), rng.uniform(-0.1, 0.1) * ext[2]])
        if len(caps) < n_caps:
            r = rng.uniform(3.0, 4.5)
            out = np.array([*rng.uniform(16.0, 20.0, 2) + r, 60.0])  # a cylinder through all slices
            if all(np.linalg.norm((c - o)[:2]) > out[:2].max() + oo[:2].max() + 2.0
                   for o, _, oo in caps):
                caps.append((c, r, out))
            continue
        if all(np.linalg.norm((c - o)[:2]) > oo[:2].max() + 7.0 for o, _, oo in caps) and all(
            np.linalg.norm((c - o)[:2]) > 14.0 for o in free
        ):
            free.append(c)
    blobs = [(c, r, out) for c, r, out in caps] + [(c, rng.uniform(3.0, 4.5), None) for c in free]
    for c, r, out in blobs:
        radii = np.array([r, r * rng.uniform(0.85, 1.15), r * rng.uniform(1.5, 2.2)])
        blob = _ellipsoid(grid, c, radii, _rotation(rng.uniform(0, np.pi), 0.0)) < 1.0
        if out is not None:  # a capsule: a thin ellipsoidal shell far around the blob
            thick = rng.uniform(1.2, 1.8)
            rot = _rotation(rng.uniform(0, np.pi), 0.0)
            f_out = _ellipsoid(grid, c, out, rot)
            f_in = _ellipsoid(grid, c, np.maximum(out - thick, 1.0), rot)
            wall = (f_out < 1.0) & (f_in >= 1.0) & body
            img = np.where(wall, t_wall, img)
            walls |= wall
            label[blob & body] = 1
        img = np.where(blob & body, t_blob * rng.uniform(0.97, 1.03), img)

    # Vessels (class 2): thin curved tubes (4-segment polylines), faint after partial volume.
    t_ves = t_body + rng.uniform(0.3, 0.45)
    for _ in range(int(rng.integers(3, 5))):
        p = np.array([*(rng.uniform(-0.35, 0.35, 2) * ext[:2]), rng.uniform(-0.4, 0.4) * ext[2]])
        d = rng.normal(size=3) * np.array([1.0, 1.0, 0.3])
        radius = rng.uniform(0.9, 1.4)
        for _seg in range(4):
            d = d / np.linalg.norm(d) + rng.normal(size=3) * np.array([0.5, 0.5, 0.15])
            q = p + d / np.linalg.norm(d) * rng.uniform(8.0, 14.0)
            tube = (_tube(grid, p, q, radius) < 1.0) & body & (label == 0) & ~walls
            img = np.where(tube, t_ves, img)
            label[tube] = 2
            p = q
    label[walls & (label == 0)] = 3
    return _scanner(rng, img, shape), label


def _affine(spec: SyntheticSpec) -> np.ndarray:
    aff = np.diag([*spec.spacing, 1.0])
    aff[:3, 3] = -np.asarray(spec.shape) * np.asarray(spec.spacing) / 2
    return aff


def _save(array: np.ndarray, affine: np.ndarray, path: Path) -> None:
    import nibabel as nib

    img = nib.Nifti1Image(array, affine)
    img.header.set_xyzt_units("mm", "sec")
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    nib.save(img, str(path))


def _write_into(
    root: Path, name: str, cases: int, seed: int, shape: tuple[int, int, int] | None
) -> None:
    spec = SPECS[name] if shape is None else replace(SPECS[name], shape=tuple(shape))
    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    affine = _affine(spec)
    training = []
    for i in range(cases):
        make = generate_hard_case if name == "synthetic_hard" else generate_case
        img, lab = make(spec, seed, i)
        fname = f"{name}_{i:03d}.nii.gz"
        _save(img, affine, root / "imagesTr" / fname)
        _save(lab, affine, root / "labelsTr" / fname)
        training.append({"image": f"./imagesTr/{fname}", "label": f"./labelsTr/{fname}"})
    meta = {
        "name": name,
        "description": f"raynas generated task (seed {seed}, {cases} cases)",
        "tensorImageSize": "3D",
        "reference": "raynas.data.synthetic",
        "licence": "CC-0",
        "release": "1.0",
        "modality": {"0": "MRI"},
        "labels": dict(LABELS[name]),
        "numTraining": cases,
        "numTest": 0,
        "training": training,
        "test": [],
    }
    (root / "dataset.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


def write_synthetic(
    out: Path | str,
    *,
    name: str,
    cases: int,
    seed: int,
    shape: tuple[int, int, int] | None = None,
) -> Path:
    """Writes a synthetic dataset as an MSD folder at ``out`` (must not exist or be empty).

    ``shape`` overrides the volume shape of the spec (tests use tiny volumes). Written into a
    temporary sibling first and renamed, so readers never see half a folder.
    """
    if name not in SPECS:
        raise DataError(f"unknown synthetic dataset {name!r}; valid: {', '.join(SPECS)}")
    if cases <= 0:
        raise DataError(f"--cases must be a positive number, got {cases}")
    if shape is not None and (len(shape) != 3 or min(shape) <= 0):
        raise ValueError(f"shape must be 3 positive ints, got {shape}")
    out = Path(out).expanduser()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DataError(f"--out: {out} already exists and is not an empty folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        _write_into(tmp / "data", name, cases, seed, shape)
        if out.exists():
            out.rmdir()
        os.replace(tmp / "data", out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def ensure_synthetic(
    name: str, *, seed: int = 0, cases: int = 16, cache_dir: Path | str | None = None
) -> Path:
    """The cached folder ``<cache>/synthetic/<name>-seed<S>-n<N>``, generated on first use."""
    version = f"-v{GENERATOR_VERSION[name]}" if name in GENERATOR_VERSION else ""
    root = cache_root(cache_dir) / "synthetic" / f"{name}{version}-seed{seed}-n{cases}"
    if (root / "dataset.json").is_file():
        return root
    try:
        return write_synthetic(root, name=name, cases=cases, seed=seed)
    except (DataError, OSError):
        if (root / "dataset.json").is_file():  # another process won the race
            return root
        raise
