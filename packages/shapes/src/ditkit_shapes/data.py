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

import logging
from pathlib import Path
from typing import Literal, get_args

import lightning as L
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from ditkit_core.errors import DataError, LoadReport, atomic_write, safe_join
from ditkit_core.lightning.data import seeded_loader
from ditkit_shapes.readers import EXTENSIONS, PointCloudError, read_points, validate_points
from ditkit_shapes.validation import finite_float, positive_int

Normalize = Literal["unit_sphere", "unit_box", "dataset", "none"]
NORMALIZE_MODES = get_args(Normalize)
BadFiles = Literal["error", "skip"]
log = logging.getLogger("ditkit.shapes")


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
        raise PointCloudError(
            f"has {p} points, the config expects {points} (set count='resample')", path=where, field="points", value=p
        )
    if p > points:
        return pts[rng.choice(p, points, replace=False)]
    return np.concatenate([pts, pts[rng.choice(p, points - p, replace=True)]])


def normalize_points(pts: np.ndarray, mode: Normalize, stats: tuple[np.ndarray, float] | None = None) -> np.ndarray:
    """Normalise one cloud ``[p, 3]`` (``stats = (mean [3], std)`` for ``mode='dataset'``); float32 out.

    The arithmetic runs in float64, so clouds whose extent overflows float32 (values near its limit) still
    normalise to finite coordinates.
    """
    if mode == "none":
        return pts
    x = np.asarray(pts, dtype=np.float64)
    if mode == "dataset":
        if stats is None:
            raise ValueError("normalize_points: mode 'dataset' needs stats=(mean, std) from the training split")
        return ((x - np.asarray(stats[0], dtype=np.float64)) / float(stats[1])).astype(np.float32)
    center = (x.max(0) + x.min(0)) / 2
    x = x - center
    if mode == "unit_sphere":
        scale = float(np.linalg.norm(x, axis=1).max())
    elif mode == "unit_box":
        scale = float(np.ptp(x, axis=0).max())
    else:
        raise ValueError(f"normalize_points: unknown mode {mode!r}; choose unit_sphere, unit_box, dataset or none")
    return (x / scale).astype(np.float32)


def write_ply(path: str | Path, pts: np.ndarray | Tensor) -> Path:
    """Write a cloud ``[p, 3]`` as an ASCII ``.ply`` atomically (read back by :func:`read_points`, open3d, MeshLab)."""
    pts = np.asarray(pts.detach().cpu() if isinstance(pts, Tensor) else pts, dtype=np.float32)
    validate_points(pts, str(path))
    path = Path(path)
    header = (
        f"ply\nformat ascii 1.0\nelement vertex {len(pts)}\nproperty float x\nproperty float y\n"
        "property float z\nend_header\n"
    )
    with atomic_write(path, "w") as f:
        f.write(header)
        np.savetxt(f, pts, fmt="%.6f")
    return path


def list_files(root: str | Path, split: str, classes: list[str] | None = None) -> dict[str, list[Path]]:
    """``{class: sorted files}`` of ``split`` under a ShapeNet-style ``root`` (see the module docstring).

    Class and split names must stay inside ``root`` (``..`` and absolute names are refused); only regular files
    with a known extension are listed (folders or pipes named ``*.ply`` are not).
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"shapes dataset root {root} does not exist (run `make data-shapes`)")
    names = classes or sorted(p.name for p in root.iterdir() if p.is_dir())
    out: dict[str, list[Path]] = {}
    for name in names:
        d = safe_join(root, name, path=root, field="classes")
        if not d.is_dir():
            found = sorted(p.name for p in root.iterdir() if p.is_dir())
            raise FileNotFoundError(f"{root}: class folder {name!r} is missing; found {found}")
        sub = safe_join(d, split, path=d, field="split")
        folder = sub if sub.is_dir() else d
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in EXTENSIONS and p.is_file())
        if not files:
            raise FileNotFoundError(f"{folder}: no {'/'.join(EXTENSIONS)} files for split {split!r}")
        out[name] = files
    return out


class ShapeFolderDataset(Dataset):
    """All clouds of one split, loaded to memory as ``points [N, p, 3]`` and ``labels [N]``.

    Bad files: with ``bad_files="error"`` (default) the first unreadable or invalid file stops loading with a
    :class:`PointCloudError` naming it (file, line / record, field, value). With ``bad_files="skip"`` such files are
    left out and counted per reason in ``self.report`` (a :class:`~ditkit_core.errors.LoadReport`, logged at
    WARNING naming the first files); a class left without any file is still an error.

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
        bad_files: ``error`` (stop at the first bad file) or ``skip`` (leave it out, counted in ``report``).
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
        bad_files: BadFiles = "error",
    ):
        owner = "ShapeFolderDataset"
        positive_int(points, "points", owner)
        positive_int(subsample, "subsample", owner, minimum=0)
        if subsample > points:
            raise ValueError(f"{owner}: subsample={subsample} > points={points}")
        _choice(normalize, NORMALIZE_MODES, "normalize", owner)
        _choice(count, ("resample", "error"), "count", owner)
        _choice(bad_files, ("error", "skip"), "bad_files", owner)
        if stats is not None:
            mean, std = np.asarray(stats[0], dtype=np.float64), finite_float(stats[1], "stats std", owner)
            if mean.shape != (3,) or not np.isfinite(mean).all() or std <= 0:
                raise ValueError(f"{owner}: stats=({mean.tolist()}, {std}): need a finite mean [3] and std > 0")
        files = list_files(root, split, classes)
        self.classes = list(files)
        self.report = LoadReport(f"{root} ({split})")
        rng = np.random.default_rng(seed)
        clouds, labels = [], []
        for label, paths in enumerate(files.values()):
            kept = 0
            for path in paths:
                try:
                    pts = read_points(path, mesh_points=points, seed=seed)
                    clouds.append(resample(pts, points, rng, str(path), count))
                except DataError as e:
                    if bad_files == "error":
                        raise
                    self.report.skip(e.reason, path=path, line=e.line, field=e.field, value=e.value)
                    continue
                labels.append(label)
                kept += 1
            if not kept:
                raise PointCloudError(
                    f"no readable file for class {self.classes[label]!r} ({len(paths)} skipped, see the warning)",
                    path=paths[0].parent,
                    field="classes",
                    value=self.classes[label],
                )
        self.report.kept = len(clouds)
        if self.report.skipped:
            self.report.log(log)
        raw = np.stack(clouds)  # [N, p, 3]
        if normalize == "dataset" and stats is None:
            flat = raw.reshape(-1, 3).astype(np.float64)
            mean = flat.mean(0)
            stats = (mean, float((flat - mean).std()))
        self.stats = stats
        self.points = torch.from_numpy(np.stack([normalize_points(c, normalize, stats) for c in raw]))
        self.labels = torch.tensor(labels, dtype=torch.long)
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


def _choice(value: object, options: tuple, field: str, owner: str) -> None:
    if value not in options:
        raise ValueError(f"{owner}: {field}={value!r}: choose one of {list(options)}")


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
        bad_files: ``error`` (stop at the first unreadable file, naming it) or ``skip`` (leave bad files out,
            counted per reason in each dataset's ``report`` and logged at WARNING); see :class:`ShapeFolderDataset`.
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
        bad_files: BadFiles = "error",
    ):
        super().__init__()
        owner = "ShapesDataModule"
        positive_int(points, "points", owner)
        positive_int(train_points, "train_points", owner, minimum=0)
        if train_points > points:
            raise ValueError(f"{owner}: train_points={train_points} > points={points}")
        positive_int(batch_size, "batch_size", owner)
        positive_int(train_limit, "train_limit", owner, minimum=0)
        _choice(normalize, NORMALIZE_MODES, "normalize", owner)
        _choice(bad_files, ("error", "skip"), "bad_files", owner)
        for split, n in (generate_sizes or {}).items():
            positive_int(n, f"generate_sizes[{split!r}]", owner, minimum=0)
        self.bad_files = bad_files
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
            bad_files=self.bad_files,
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
