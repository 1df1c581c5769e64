"""Point-cloud I/O, validation, normalisation and the ShapeNet-style datasets.

Folder layout (ShapeNet / PointFlow ``PC15k``): ``root/<class>/<split>/<name>.<ext>`` with ``ext`` in
``.npy`` (``[p, 3]`` array), ``.ply`` (point cloud or mesh), ``.obj`` and ``.off`` (meshes). A class folder
without split sub-folders is read whole for every split. Meshes are sampled uniformly on their surface
(``mesh_points`` points, seeded); point files are read as is.

Point counts: every cloud is brought to ``points`` points. With ``count="resample"`` (default) a larger cloud is
subsampled without replacement and a smaller one keeps all its points and repeats randomly chosen ones (the
duplicates do not change the Chamfer distance of the set); ``count="error"`` raises instead.

Normalisation (``normalize``), applied per cloud after resampling:

* ``unit_sphere``: centre at the bounding-box centre, scale so the farthest point has norm 1.
* ``unit_box``: centre at the bounding-box centre, scale so the longest bounding-box side is 1 (fits [-0.5, 0.5]^3).
* ``dataset``: subtract the training split's mean point and divide by its scalar std (PointFlow's global
  normalisation; the statistics of the train split are used for every split so splits stay comparable).
* ``none``: raw coordinates.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import lightning as L
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from ditkit_core.lightning.data import seeded_loader

Normalize = Literal["unit_sphere", "unit_box", "dataset", "none"]
EXTENSIONS = (".npy", ".ply", ".obj", ".off")


class PointCloudError(ValueError):
    """An invalid point cloud; the message names the file (or source) and what is wrong."""


def validate_points(pts: np.ndarray, where: str = "points", eps: float = 1e-9) -> np.ndarray:
    """Check a cloud and return it as float32 ``[p, 3]``.

    Raises:
        PointCloudError: empty cloud, wrong dimensionality, NaN/Inf coordinates (first bad row named) or a
            degenerate cloud (all points equal within ``eps``).
    """
    pts = np.asarray(pts)
    if pts.ndim != 2 or pts.shape[-1] != 3:
        raise PointCloudError(f"{where}: expected points of shape [p, 3], got shape {tuple(pts.shape)}")
    if pts.shape[0] == 0:
        raise PointCloudError(f"{where}: empty point cloud (0 points)")
    if not np.issubdtype(pts.dtype, np.number):
        raise PointCloudError(f"{where}: non-numeric dtype {pts.dtype}")
    bad = ~np.isfinite(pts).all(axis=1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise PointCloudError(
            f"{where}: {int(bad.sum())} point(s) with NaN/Inf coordinates, first at row {i}: {pts[i].tolist()}"
        )
    if float(np.ptp(pts, axis=0).max()) <= eps:
        raise PointCloudError(f"{where}: degenerate cloud: all {pts.shape[0]} points equal {pts[0].tolist()}")
    return pts.astype(np.float32)


def resample(
    pts: np.ndarray,
    points: int,
    rng: np.random.Generator,
    where: str = "points",
    count: Literal["resample", "error"] = "resample",
) -> np.ndarray:
    """Bring a cloud ``[p, 3]`` to ``[points, 3]`` (see the module docstring for the rule)."""
    p = pts.shape[0]
    if p == points:
        return pts
    if count == "error":
        raise PointCloudError(f"{where}: has {p} points, the config expects {points} (set count='resample')")
    if p > points:
        return pts[rng.choice(p, points, replace=False)]
    return np.concatenate([pts, pts[rng.choice(p, points - p, replace=True)]])


def normalize_points(pts: np.ndarray, mode: Normalize, stats: tuple[np.ndarray, float] | None = None) -> np.ndarray:
    """Normalise one cloud ``[p, 3]`` (``stats = (mean [3], std)`` for ``mode='dataset'``)."""
    if mode == "none":
        return pts
    if mode == "dataset":
        if stats is None:
            raise ValueError("normalize_points: mode 'dataset' needs stats=(mean, std) from the training split")
        return ((pts - stats[0]) / stats[1]).astype(np.float32)
    center = (pts.max(0) + pts.min(0)) / 2
    pts = pts - center
    if mode == "unit_sphere":
        scale = float(np.linalg.norm(pts, axis=1).max())
    elif mode == "unit_box":
        scale = float(np.ptp(pts, axis=0).max())
    else:
        raise ValueError(f"normalize_points: unknown mode {mode!r}; choose unit_sphere, unit_box, dataset or none")
    return (pts / scale).astype(np.float32)


def _open3d():
    try:
        import open3d as o3d
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("reading .ply/.obj/.off needs open3d: pip install 'ditkit-shapes[open3d]'") from e
    return o3d


def read_points(path: str | Path, mesh_points: int = 2048, seed: int = 0) -> np.ndarray:
    """Read one file as a validated float32 cloud ``[p, 3]``.

    Args:
        path: ``.npy`` (``[p, 3]``; extra columns such as normals are rejected), ``.ply`` (points, or a mesh
            when it has faces), ``.obj`` or ``.off`` (meshes, or bare vertices when there are no faces).
        mesh_points: surface samples drawn from a mesh.
        seed: seed of the mesh surface sampling.

    Raises:
        PointCloudError: unreadable, empty or invalid content (the message names the file).
    """
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in EXTENSIONS:
        raise PointCloudError(f"{path}: unsupported extension {ext!r}; expected one of {EXTENSIONS}")
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise PointCloudError(f"{path}: empty file (0 bytes)")
    if ext == ".npy":
        try:
            pts = np.load(path, allow_pickle=False)
        except ValueError as e:
            raise PointCloudError(f"{path}: not a readable .npy array ({e})") from e
        return validate_points(pts, str(path))
    o3d = _open3d()
    mesh = o3d.io.read_triangle_mesh(str(path))
    if len(mesh.triangles) > 0:
        if mesh.get_surface_area() <= 0:
            raise PointCloudError(f"{path}: mesh with {len(mesh.triangles)} faces has zero surface area")
        o3d.utility.random.seed(seed)
        pts = np.asarray(mesh.sample_points_uniformly(number_of_points=mesh_points).points)
    elif ext == ".ply":
        pts = np.asarray(o3d.io.read_point_cloud(str(path)).points)
    else:
        pts = np.asarray(mesh.vertices)
    if pts.size == 0:
        raise PointCloudError(f"{path}: no points or faces could be read (empty or malformed {ext} file)")
    return validate_points(pts, str(path))


def write_ply(path: str | Path, pts: np.ndarray | Tensor) -> Path:
    """Write a cloud ``[p, 3]`` as an ASCII ``.ply`` (no open3d needed; open3d / MeshLab read it)."""
    pts = np.asarray(pts.detach().cpu() if isinstance(pts, Tensor) else pts, dtype=np.float32)
    validate_points(pts, str(path))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = (
        f"ply\nformat ascii 1.0\nelement vertex {len(pts)}\nproperty float x\nproperty float y\n"
        "property float z\nend_header\n"
    )
    with open(path, "w") as f:
        f.write(header)
        np.savetxt(f, pts, fmt="%.6f")
    return path


def list_files(root: str | Path, split: str, classes: list[str] | None = None) -> dict[str, list[Path]]:
    """``{class: sorted files}`` of ``split`` under a ShapeNet-style ``root`` (see the module docstring)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"shapes dataset root {root} does not exist (run `make data-shapes`)")
    names = classes or sorted(p.name for p in root.iterdir() if p.is_dir())
    out: dict[str, list[Path]] = {}
    for name in names:
        d = root / name
        if not d.is_dir():
            found = sorted(p.name for p in root.iterdir() if p.is_dir())
            raise FileNotFoundError(f"{root}: class folder {name!r} is missing; found {found}")
        folder = d / split if (d / split).is_dir() else d
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in EXTENSIONS)
        if not files:
            raise FileNotFoundError(f"{folder}: no {'/'.join(EXTENSIONS)} files for split {split!r}")
        out[name] = files
    return out


class ShapeFolderDataset(Dataset):
    """All clouds of one split, loaded to memory as ``points [N, p, 3]`` and ``labels [N]``.

    Args:
        root: dataset root (``root/<class>/<split>/*.ext``).
        split: ``train``, ``val`` or ``test``.
        classes: class folder names (index = label); default every folder, sorted.
        points: points per cloud after resampling.
        normalize: normalisation mode (module docstring).
        stats: ``(mean [3], std)`` for ``normalize='dataset'``; computed from this split when None.
        count: ``resample`` or ``error`` when a file's point count differs from ``points``.
        subsample: serve a random subset of ``subsample`` points per access (0: off): a fresh one each access
            (training augmentation), or the same one per item with ``fixed_subsample``.
        fixed_subsample: seed the subset by the item index (validation: the same points every epoch).
        seed: seed of the resampling and mesh sampling.
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        classes: list[str] | None = None,
        points: int = 2048,
        normalize: Normalize = "unit_sphere",
        stats: tuple[np.ndarray, float] | None = None,
        count: Literal["resample", "error"] = "resample",
        subsample: int = 0,
        fixed_subsample: bool = False,
        seed: int = 0,
    ):
        files = list_files(root, split, classes)
        self.classes = list(files)
        rng = np.random.default_rng(seed)
        clouds, labels = [], []
        for label, paths in enumerate(files.values()):
            for path in paths:
                pts = read_points(path, mesh_points=points, seed=seed)
                clouds.append(resample(pts, points, rng, str(path), count))
                labels.append(label)
        raw = np.stack(clouds)  # [N, p, 3]
        if normalize == "dataset" and stats is None:
            flat = raw.reshape(-1, 3)
            mean = flat.mean(0)
            stats = (mean, float((flat - mean).std()))
        self.stats = stats
        self.points = torch.from_numpy(np.stack([normalize_points(c, normalize, stats) for c in raw]))
        self.labels = torch.tensor(labels, dtype=torch.long)
        if subsample and subsample > points:
            raise ValueError(f"ShapeFolderDataset: subsample={subsample} > points={points}")
        self.subsample, self.fixed_subsample, self.seed = subsample, fixed_subsample, seed

    def __len__(self) -> int:
        return self.points.shape[0]

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        pts = self.points[i]
        if self.subsample:
            g = torch.Generator().manual_seed(self.seed * 100_003 + i) if self.fixed_subsample else None
            pts = pts[torch.randperm(pts.shape[0], generator=g)[: self.subsample]]
        return {"points": pts, "label": self.labels[i]}

    def class_points(self, label: int) -> Tensor:
        """All clouds ``[N_c, p, 3]`` of one class."""
        return self.points[self.labels == label]


class ShapesDataModule(L.LightningDataModule):
    """ShapeNet-style point clouds; generates the procedural default dataset when ``root`` is missing.

    Args:
        root: dataset root; ``outputs/shapes/data`` holds the procedural set written by ``make data-shapes``.
        classes: class folder names (index = label); default all.
        points: points per stored cloud (files are resampled to this count; the test split is served at it).
        train_points: random subset size served per training item, and (a fixed subset per item) per
            validation item (0: all ``points``).
        normalize: see the module docstring.
        batch_size: clouds per batch.
        generate_if_missing: write the procedural dataset to ``root`` if it does not exist.
        train_limit: keep only the first ``train_limit`` training clouds per class (0: all).
        generate_sizes: shapes per class and split when generating (default: train 160, val 16, test 48).
        seed: seed of resampling / shuffling.
    """

    def __init__(
        self,
        root: str = "outputs/shapes/data",
        classes: list[str] | None = None,
        points: int = 2048,
        train_points: int = 0,
        normalize: Normalize = "unit_sphere",
        batch_size: int = 32,
        generate_if_missing: bool = True,
        train_limit: int = 0,
        generate_sizes: dict[str, int] | None = None,
        seed: int = 0,
    ):
        super().__init__()
        self.root, self.classes, self.points, self.train_points = root, classes, points, train_points
        self.normalize, self.batch_size, self.generate_if_missing = normalize, batch_size, generate_if_missing
        self.train_limit, self.generate_sizes, self.seed = train_limit, generate_sizes, seed

    def prepare_data(self) -> None:
        if not Path(self.root).exists() and self.generate_if_missing:
            from ditkit_shapes.procedural import write_dataset

            write_dataset(self.root, sizes=self.generate_sizes, points=self.points, seed=self.seed)

    def dataset(self, split: str, stats: tuple[np.ndarray, float] | None = None) -> ShapeFolderDataset:
        return ShapeFolderDataset(
            self.root,
            split,
            self.classes,
            self.points,
            self.normalize,
            stats=stats,
            subsample=self.train_points if split in ("train", "val") else 0,
            fixed_subsample=split == "val",
            seed=self.seed,
        )

    def setup(self, stage: str | None = None) -> None:
        if hasattr(self, "train"):
            return
        self.prepare_data()
        self.train = self.dataset("train")
        if self.train_limit:
            keep = torch.cat(
                [torch.nonzero(self.train.labels == c)[: self.train_limit, 0] for c in range(len(self.train.classes))]
            )
            self.train.points, self.train.labels = self.train.points[keep], self.train.labels[keep]
        self.class_names = self.train.classes
        self.val = self.dataset("val", self.train.stats)
        self.test = self.dataset("test", self.train.stats)

    def train_dataloader(self):
        return seeded_loader(self.train, self.batch_size, shuffle=True, seed=self.seed, drop_last=True)

    def val_dataloader(self):
        return seeded_loader(self.val, self.batch_size, shuffle=False)

    def test_dataloader(self):
        return seeded_loader(self.test, self.batch_size, shuffle=False)
