"""Procedural data, file I/O, validation, resampling and normalisation."""

import numpy as np
import pytest
import torch

from ditkit_shapes.data import (
    PointCloudError,
    ShapeFolderDataset,
    ShapesDataModule,
    normalize_points,
    read_points,
    resample,
    validate_points,
    write_ply,
)
from ditkit_shapes.procedural import CLASSES, make_shape, write_dataset

CUBE_OFF = """OFF
8 12 0
-0.5 -0.5 -0.5
0.5 -0.5 -0.5
0.5 0.5 -0.5
-0.5 0.5 -0.5
-0.5 -0.5 0.5
0.5 -0.5 0.5
0.5 0.5 0.5
-0.5 0.5 0.5
3 0 2 1
3 0 3 2
3 4 5 6
3 4 6 7
3 0 1 5
3 0 5 4
3 2 3 7
3 2 7 6
3 1 2 6
3 1 6 5
3 0 4 7
3 0 7 3
"""


def cube_obj() -> str:
    lines = CUBE_OFF.splitlines()[2:]
    verts = ["v " + line for line in lines[:8]]
    faces = ["f " + " ".join(str(int(i) + 1) for i in line.split()[1:]) for line in lines[8:]]
    return "\n".join(verts + faces) + "\n"


@pytest.mark.parametrize("name", CLASSES)
def test_procedural_shapes_are_deterministic_and_finite(name):
    a, b = make_shape(name, 2048, 7), make_shape(name, 2048, 7)
    assert a.shape == (2048, 3) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert np.isfinite(a).all() and np.ptp(a, 0).min() > 0.1
    assert not np.array_equal(a, make_shape(name, 2048, 8))


def test_classes_differ_in_shape_statistics():
    # mean Chamfer distance within a class is smaller than across classes (the dataset is learnable by class)
    from ditkit_shapes.metrics import pairwise_chamfer

    clouds = torch.stack(
        [torch.from_numpy(normalize_points(make_shape(c, 256, s), "unit_sphere")) for c in CLASSES for s in range(4)]
    )
    d = pairwise_chamfer(clouds, clouds, symmetric=True)
    same = torch.block_diag(*[torch.ones(4, 4)] * len(CLASSES)).bool() & ~torch.eye(len(clouds), dtype=torch.bool)
    assert d[same].mean() < 0.5 * d[~torch.block_diag(*[torch.ones(4, 4)] * len(CLASSES)).bool()].mean()


def test_write_dataset_layout_and_loader(tmp_path):
    root = write_dataset(tmp_path / "d", classes=("chair", "mug"), sizes={"train": 3, "test": 2}, points=64)
    assert sorted(p.name for p in (root / "chair" / "train").iterdir()) == ["0000.npy", "0001.npy", "0002.npy"]
    ds = ShapeFolderDataset(root, "train", points=32, normalize="unit_sphere")
    assert ds.classes == ["chair", "mug"] and ds.points.shape == (6, 32, 3)
    assert ds.labels.tolist() == [0, 0, 0, 1, 1, 1]
    torch.testing.assert_close(ds.points.norm(dim=-1).amax(1), torch.ones(6))
    item = ds[4]
    assert item["points"].shape == (32, 3) and int(item["label"]) == 1


def test_datamodule_generates_and_uses_train_stats(tmp_path):
    dm = ShapesDataModule(
        root=str(tmp_path / "gen"),
        classes=["lamp", "table"],
        points=128,
        train_points=64,
        normalize="dataset",
        batch_size=4,
        train_limit=5,
    )
    # small procedural set written on demand
    write_dataset(dm.root, classes=("lamp", "table"), sizes={"train": 6, "val": 2, "test": 2}, points=128)
    dm.setup()
    assert len(dm.train) == 10 and dm.class_names == ["lamp", "table"]
    flat = dm.train.points.reshape(-1, 3)
    np.testing.assert_allclose(flat.mean(0).numpy(), 0, atol=0.05)  # train_limit keeps 5 of the 6 per class
    assert dm.val.stats is dm.train.stats
    batch = next(iter(dm.train_dataloader()))
    assert batch["points"].shape == (4, 64, 3) and batch["label"].shape == (4,)


def test_read_npy_ply_off_obj(tmp_path):
    pts = np.random.default_rng(0).normal(size=(100, 3)).astype(np.float32)
    np.save(tmp_path / "a.npy", pts)
    np.testing.assert_array_equal(read_points(tmp_path / "a.npy"), pts)
    write_ply(tmp_path / "a.ply", pts)
    np.testing.assert_allclose(read_points(tmp_path / "a.ply"), pts, atol=1e-5)
    (tmp_path / "cube.off").write_text(CUBE_OFF)
    (tmp_path / "cube.obj").write_text(cube_obj())
    for name in ("cube.off", "cube.obj"):
        s = read_points(tmp_path / name, mesh_points=500, seed=1)
        assert s.shape == (500, 3)
        np.testing.assert_allclose(np.abs(s).max(1), 0.5, atol=1e-5)  # every sample lies on a face of the cube


@pytest.mark.parametrize(
    "content, message",
    [
        (np.zeros((0, 3)), "empty point cloud"),
        (np.ones((10, 3)), "degenerate"),
        (np.zeros((10, 4)), r"shape \[p, 3\]"),
        (np.zeros(30), r"shape \[p, 3\]"),
    ],
)
def test_invalid_npy_files_name_file_and_problem(tmp_path, content, message):
    path = tmp_path / "bad.npy"
    np.save(path, content)
    with pytest.raises(PointCloudError, match=message) as e:
        read_points(path)
    assert "bad.npy" in str(e.value)


def test_nan_names_row_and_empty_file(tmp_path):
    pts = np.random.default_rng(0).normal(size=(10, 3))
    pts[7, 1] = np.inf
    with pytest.raises(PointCloudError, match="first at row 7"):
        validate_points(pts, "x.npy")
    (tmp_path / "empty.ply").write_text("")
    with pytest.raises(PointCloudError, match="empty file"):
        read_points(tmp_path / "empty.ply")
    with pytest.raises(PointCloudError, match="unsupported extension"):
        read_points(tmp_path / "x.xyz")


def test_resample_rules():
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(10, 3)).astype(np.float32)
    up = resample(pts, 16, rng)
    assert up.shape == (16, 3)
    np.testing.assert_array_equal(up[:10], pts)  # every original point is kept, the rest are duplicates
    assert {tuple(p) for p in up} == {tuple(p) for p in pts}
    down = resample(pts, 4, rng)
    assert len({tuple(p) for p in down}) == 4 and {tuple(p) for p in down} <= {tuple(p) for p in pts}
    with pytest.raises(PointCloudError, match="has 10 points, the config expects 16"):
        resample(pts, 16, rng, "f.npy", count="error")


def test_normalisation_modes():
    pts = np.random.default_rng(1).uniform(-3, 5, size=(200, 3)).astype(np.float32)
    s = normalize_points(pts, "unit_sphere")
    assert np.isclose(np.linalg.norm(s, axis=1).max(), 1, atol=1e-6)
    b = normalize_points(pts, "unit_box")
    assert np.isclose(np.ptp(b, 0).max(), 1, atol=1e-6) and np.allclose((b.max(0) + b.min(0)) / 2, 0, atol=1e-6)
    d = normalize_points(pts, "dataset", (pts.mean(0), float((pts - pts.mean(0)).std())))
    assert np.allclose(d.mean(0), 0, atol=1e-5) and np.isclose(d.std(), 1, atol=1e-5)
    with pytest.raises(ValueError, match="unknown mode"):
        normalize_points(pts, "sphere")
