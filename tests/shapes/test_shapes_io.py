"""Checked readers and argument validation: one regression test per input defect, plus reader round trips."""

from __future__ import annotations

import logging
import math
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch

from ditkit_core.errors import DataError
from ditkit_core.nn import DiTConfig
from ditkit_core.testing.fuzz import run_cases
from ditkit_shapes import cli, procedural
from ditkit_shapes.data import ShapeFolderDataset, ShapesDataModule, normalize_points
from ditkit_shapes.module import ShapesModule
from ditkit_shapes.procedural import write_dataset
from ditkit_shapes.readers import PointCloudError, read_mesh, read_points
from ditkit_shapes.tokenizer import PointTokenizer

PLY_FORMATS = ["ascii", "binary_little_endian", "binary_big_endian"]


class Marker:
    """Unpickling this object creates the file ``path``: proof that a loader executed code from a file."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return (Path(self.path).touch, ())


# ---------------------------------------------------------------------------------------------- readers agree


@pytest.mark.parametrize("fmt", PLY_FORMATS)
@pytest.mark.parametrize("vertex_type, index_type", [("float", "int"), ("double", "uint")])
def test_ply_reader_returns_the_file_content(tmp_path, writers, cube, fmt, vertex_type, index_type):
    v, q = cube
    path = tmp_path / "cube.ply"
    path.write_bytes(writers.ply(v, q, fmt, vertex_type=vertex_type, index_type=index_type))
    verts, tris = read_mesh(path)
    np.testing.assert_array_equal(verts, v)
    assert tris.shape == (12, 3)  # 6 quads, fan-triangulated
    assert {frozenset(t) for t in tris.tolist()} >= {frozenset(f[[0, 1, 2]].tolist()) for f in q}
    s = read_points(path, mesh_points=400, seed=3)
    assert s.shape == (400, 3) and s.dtype == np.float32
    np.testing.assert_allclose(np.abs(s).max(1), 0.5, atol=1e-6)  # every sample lies on a face of the cube
    np.testing.assert_array_equal(s, read_points(path, mesh_points=400, seed=3))  # seeded


def test_off_obj_and_point_ply_readers(tmp_path, writers, cube):
    v, q = cube
    (tmp_path / "c.off").write_bytes(writers.off(v, q))
    (tmp_path / "c.obj").write_bytes(writers.obj(v, q))
    for name in ("c.off", "c.obj"):
        verts, tris = read_mesh(tmp_path / name)
        np.testing.assert_array_equal(verts, v)
        assert tris.shape == (12, 3)
    # ModelNet's "OFF<v> <f> <e>" on one line, and OBJ's negative (relative) indices
    (tmp_path / "m.off").write_text(writers.off(v, q).decode().replace("OFF\n", "OFF", 1))
    np.testing.assert_array_equal(read_mesh(tmp_path / "m.off")[1], read_mesh(tmp_path / "c.off")[1])
    (tmp_path / "r.obj").write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nf -3 -2 -1\n")
    assert read_mesh(tmp_path / "r.obj")[1].tolist() == [[0, 1, 2]]
    pts = np.random.default_rng(0).normal(size=(50, 3))
    for fmt in PLY_FORMATS:
        (tmp_path / "p.ply").write_bytes(writers.ply(pts, None, fmt, vertex_type="double"))
        np.testing.assert_array_equal(read_points(tmp_path / "p.ply"), pts.astype(np.float32))


# ------------------------------------------------------------------- defect 1: memory-unsafe mesh reading


def test_ply_face_indexing_a_missing_vertex_is_an_error_not_a_crash(tmp_path, writers, cube):
    v, q = cube
    q[3, 2] = 10**6
    cases = []
    for fmt in PLY_FORMATS:
        path = tmp_path / f"missing_vertex_{fmt}.ply"
        path.write_bytes(writers.ply(v, q, fmt))
        cases.append({"path": str(path)})
    outcomes = run_cases("ditkit_shapes.readers:read_points", cases, timeout=120)
    for case, o in zip(cases, outcomes):
        assert o.status == "error" and o.error_type == "PointCloudError", o
        assert Path(case["path"]).name in o.message and "face.vertex_indices=1000000" in o.message, o
        assert "vertex index outside [0, 8)" in o.message
    assert " line 22:" in outcomes[0].message and " record 4:" in outcomes[1].message  # ASCII line, binary record


@pytest.mark.parametrize(
    "name, cut",
    [
        ("ascii.ply", lambda b: b[: b.rindex(b"\n4 ")]),  # last faces missing
        ("ascii_vertices.ply", lambda b: b[: b.index(b"end_header") + 40]),  # inside the vertex lines
        ("binary_little_endian.ply", lambda b: b[:-7]),  # inside the face records
        ("binary_big_endian.ply", lambda b: b[: b.index(b"end_header") + 11 + 30]),  # inside the vertex records
        ("cube.off", lambda b: b[: b.rindex(b"\n4 ")]),
    ],
)
def test_truncated_files_raise_naming_the_file_not_garbage(tmp_path, writers, cube, name, cut):
    v, q = cube
    fmt = name.split(".")[0].removesuffix("_vertices")
    full = writers.off(v, q) if name.endswith(".off") else writers.ply(v, q, fmt)
    path = tmp_path / name
    path.write_bytes(cut(full))
    with pytest.raises(PointCloudError, match="truncated") as e:
        read_points(path)
    assert str(e.value).startswith(str(path))


@pytest.mark.parametrize("fmt", [*PLY_FORMATS, "off"])
def test_header_claiming_1e12_vertices_is_rejected_before_allocating(tmp_path, writers, cube, fmt):
    v, q = cube
    path = tmp_path / f"huge.{'off' if fmt == 'off' else 'ply'}"
    if fmt == "off":
        path.write_bytes(writers.off(v, q, counts=f"{10**12} 6 0"))
    else:
        path.write_bytes(writers.ply(v, q, fmt, n_vertex=10**12))
    tracemalloc.start()
    try:
        with pytest.raises(PointCloudError, match=r"1000000000000") as e:
            read_points(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert path.name in str(e.value) and ("element vertex=" in str(e.value) or "vertices=" in str(e.value))
    assert peak < 16 << 20  # nothing near 10**12 * 12 bytes was allocated


def test_vertex_values_are_checked_with_their_line(tmp_path, writers, cube):
    v, q = cube
    v[5] = [0.0, math.inf, 0.0]
    path = tmp_path / "inf.off"
    path.write_bytes(writers.off(v, q))
    with pytest.raises(PointCloudError, match=r"inf.off line 8: vertex=\[0.0, inf, 0.0\]"):
        read_points(path)
    v[5] = [0.0, 1e300, 0.0]  # finite in float64, inf in float32
    path = tmp_path / "big.ply"
    path.write_bytes(writers.ply(v, q, "binary_big_endian", vertex_type="double"))
    with pytest.raises(PointCloudError, match=r"big.ply record 6: vertex="):
        read_points(path)
    path = tmp_path / "latin1.obj"
    path.write_bytes(b"v 0 0 0\n# caf\xe9\nv 1 0 0\n")
    with pytest.raises(DataError, match=r"latin1.obj line 2: not UTF-8"):
        read_points(path)
    path = tmp_path / "zero.obj"
    path.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 0 1 2\n")
    with pytest.raises(PointCloudError, match=r"zero.obj line 4: f='0': OBJ indices start at 1"):
        read_points(path)


# ---------------------------------------------------------------------------------------- defect 2: .npy


@pytest.mark.parametrize(
    "array, field, message",
    [
        (np.zeros((10, 2)), "shape", r"shape \[p, 3\], got shape \(10, 2\)"),
        (np.zeros(30), "shape", r"shape \[p, 3\], got shape \(30,\)"),
        (np.ones((4, 3), dtype=np.complex64), "dtype", "complex"),
        (np.full((4, 3), "1.0"), "dtype", "object, structured and string"),
        (np.array([[0, 0, 0], [1, np.nan, 0]]), "points", "NaN/Inf coordinates, first at row 1"),
        (np.array([[0, 0, 0], [1, -np.inf, 0]]), "points", "NaN/Inf coordinates, first at row 1"),
        (np.array([[0, 0, 0], [1, 1e300, 0]]), "points", "beyond float32 range, first at row 1"),
    ],
)
def test_npy_clouds_with_wrong_shape_dtype_or_values_name_file_and_field(tmp_path, array, field, message):
    path = tmp_path / "cloud.npy"
    np.save(path, array)
    with pytest.raises(PointCloudError, match=message) as e:
        read_points(path)
    assert str(e.value).startswith(f"{path}: {field}=")


def test_npy_object_arrays_are_never_unpickled(tmp_path):
    marker = tmp_path / "executed"
    path = tmp_path / "evil.npy"
    np.save(path, np.array([[Marker(marker)] * 3], dtype=object), allow_pickle=True)
    with pytest.raises(PointCloudError, match=r"evil.npy: dtype='object'"):
        read_points(path)
    assert not marker.exists()
    np.load(path, allow_pickle=True)  # the file really is hostile: unpickling it runs code
    assert marker.exists()


def test_npy_header_and_size_are_checked_before_reading(tmp_path):
    path = tmp_path / "cut.npy"
    np.save(path, np.random.default_rng(0).normal(size=(100, 3)))
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(
        PointCloudError, match=r"cut.npy: shape=\(100, 3\): truncated: .* needs 2400 data bytes, .* 2395"
    ):
        read_points(path)
    huge = tmp_path / "huge.npy"
    with open(huge, "wb") as f:  # a valid header claiming 10**12 points, followed by 2 points
        np.lib.format.write_array_header_1_0(f, {"descr": "<f8", "fortran_order": False, "shape": (10**12, 3)})
        f.write(np.zeros((2, 3)).tobytes())
    tracemalloc.start()
    try:
        with pytest.raises(PointCloudError, match=r"huge.npy: shape=\(1000000000000, 3\): truncated"):
            read_points(huge)
        assert tracemalloc.get_traced_memory()[1] < 16 << 20
    finally:
        tracemalloc.stop()


# --------------------------------------------------------------- defect 3: errors name the file in folders


def _folder(tmp_path: Path) -> Path:
    return write_dataset(tmp_path / "d", classes=("chair", "mug"), sizes={"train": 3}, points=32)


def test_a_corrupt_file_in_a_folder_is_named_by_default(tmp_path):
    root = _folder(tmp_path)
    bad = root / "mug" / "train" / "0001.npy"
    bad.write_bytes(bad.read_bytes()[:-10])
    with pytest.raises(PointCloudError, match=r"mug/train/0001.npy: shape=\(32, 3\): truncated"):
        ShapeFolderDataset(root, "train", points=16)


def test_skip_mode_leaves_bad_files_out_and_logs_a_report(tmp_path, caplog, writers, cube):
    root = _folder(tmp_path)
    (root / "mug" / "train" / "0001.npy").write_bytes(b"\x93NUMPY garbage")
    v, q = cube
    q[0, 1] = 99
    (root / "chair" / "train" / "mesh.off").write_bytes(writers.off(v, q))
    (root / "chair" / "train" / "folder.ply").mkdir()  # not a file: never listed
    with caplog.at_level(logging.WARNING, logger="ditkit"):
        ds = ShapeFolderDataset(root, "train", points=16, bad_files="skip")
    assert len(ds) == 5 and ds.labels.tolist() == [0, 0, 0, 1, 1]
    assert ds.report.kept == 5 and ds.report.skipped == 2
    assert sorted(Path(s.path).name for s in ds.report.skips) == ["0001.npy", "mesh.off"]
    assert [s.field for s in ds.report.skips if s.path.endswith("mesh.off")] == ["face"]
    assert "kept 5, skipped 2" in caplog.text and "0001.npy" in caplog.text and "mesh.off line 11" in caplog.text
    assert any(r.levelno == logging.WARNING for r in caplog.records)
    for p in (root / "mug" / "train").glob("*.npy"):
        p.write_bytes(b"")
    with pytest.raises(PointCloudError, match="no readable file for class 'mug'"):
        ShapeFolderDataset(root, "train", points=16, bad_files="skip")


def test_class_and_split_names_cannot_leave_the_root(tmp_path):
    root = _folder(tmp_path)
    (tmp_path / "outside").mkdir()
    with pytest.raises(DataError, match=r"classes='../outside': leaves the data folder"):
        ShapeFolderDataset(root, "train", classes=["../outside"], points=16)
    with pytest.raises(DataError, match=r"split='../../../x': leaves the data folder"):
        ShapeFolderDataset(root, "../../../x", points=16)


def test_killed_dataset_generation_leaves_no_partial_root(tmp_path, monkeypatch):
    calls = []

    def dying(*a, **k):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return np.random.default_rng(len(calls)).normal(size=(8, 3)).astype(np.float32)

    monkeypatch.setattr(procedural, "make_shape", dying)
    with pytest.raises(KeyboardInterrupt):
        write_dataset(tmp_path / "gen", classes=("chair",), sizes={"train": 4}, points=8)
    assert list(tmp_path.iterdir()) == []  # neither the root nor a temporary folder is left


# ------------------------------------------------------------------------ defect 4: silent argument defaults


@pytest.fixture(scope="module")
def small_model() -> ShapesModule:
    cfg = DiTConfig(in_dim=3, dim=16, depth=1, heads=2, num_classes=3)
    return ShapesModule(PointTokenizer(), cfg, sampler={"steps": 2}, sample_points=8)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"points": 0}, r"sample_clouds: points=0: must be an integer >= 1"),
        ({"steps": 0}, r"sample_clouds: steps=0: must be an integer >= 1"),
        ({"steps": -2}, r"sample_clouds: steps=-2"),
        ({"cfg_scale": float("nan")}, r"sample_clouds: cfg_scale=nan"),
        ({"labels": [0, 3]}, r"class id 3, outside \[0, 3\)"),
        ({"labels": [-1]}, r"class id -1, outside \[0, 3\)"),
        ({"labels": [1.5]}, r"labels=\[1.5\]: class ids must be integers"),
        ({"labels": []}, r"n=0"),
    ],
)
def test_sampling_arguments_are_not_replaced_by_defaults(small_model, kwargs, message):
    kwargs = {"labels": [0, 1], **kwargs}
    with pytest.raises(ValueError, match=message):
        small_model.sample_clouds(**kwargs)


def test_sampling_defaults_and_completion_inputs(small_model):
    assert small_model.sample_clouds([2], steps=None).shape == (1, 8, 3)  # None still means the module's default
    partial = torch.zeros(1, 8, 3)
    partial[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN/Inf coordinates at known points"):
        small_model.complete(partial, torch.ones(1, 8, dtype=torch.bool), torch.tensor([0]))
    with pytest.raises(ValueError, match=r"complete: labels contains class id 7"):
        small_model.complete(torch.zeros(1, 8, 3), torch.ones(1, 8, dtype=torch.bool), torch.tensor([7]))
    cfg = DiTConfig(in_dim=3, dim=16, depth=1, heads=2)
    for field in ("sample_points", "point_hidden", "window_every"):
        with pytest.raises(ValueError, match=rf"ShapesModule: {field}=0"):
            ShapesModule(PointTokenizer(), cfg, **{field: 0})
    with pytest.raises(ValueError, match=r"SamplerConfig.steps=0"):
        ShapesModule(PointTokenizer(), cfg, sampler={"steps": 0})


def test_dataset_and_datamodule_arguments_name_field_and_value(tmp_path):
    root = _folder(tmp_path)
    for kw, message in [
        ({"points": 0}, "points=0"),
        ({"normalize": "sphere"}, "normalize='sphere'"),
        ({"subsample": 64, "points": 16}, "subsample=64 > points=16"),
        ({"bad_files": "ignore"}, "bad_files='ignore'"),
        ({"stats": (np.zeros(3), 0.0)}, "std > 0"),
    ]:
        with pytest.raises(ValueError, match=message):
            ShapeFolderDataset(root, "train", **kw)
    for kw, message in [({"batch_size": 0}, "batch_size=0"), ({"train_points": 4096}, "train_points=4096")]:
        with pytest.raises(ValueError, match=message):
            ShapesDataModule(str(root), **kw)


@pytest.mark.parametrize(
    "argv, option",
    [
        (["sample", "--points", "0"], "--points"),
        (["sample", "--steps", "0"], "--steps"),
        (["eval", "--n", "-3"], "--n"),
        (["eval", "--cfg", "nan"], "--cfg"),
        (["eval", "--normalize", "sphere"], "--normalize"),
    ],
)
def test_cli_rejects_bad_numbers_naming_the_option(capsys, argv, option):
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}" in err and argv[-1] in err


def test_evaluate_and_load_name_bad_arguments_and_files(small_model, tmp_path):
    with pytest.raises(ValueError, match=r"evaluate: classes=\['lamp'\] are not classes of this model"):
        cli.evaluate(small_model, str(tmp_path), classes=["lamp"])
    with pytest.raises(ValueError, match=r"evaluate: points=0"):
        cli.evaluate(small_model, str(tmp_path), points=0)
    marker, ckpt = tmp_path / "executed", tmp_path / "evil.ckpt"
    torch.save({"x": Marker(marker)}, ckpt)
    with pytest.raises(DataError, match=r"evil.ckpt: not a readable checkpoint"):
        cli.load(str(ckpt))
    assert not marker.exists()


def test_normalisation_of_clouds_near_the_float32_limit_stays_finite():
    big = np.array([[3e38, 0, 0], [-3e38, 1e38, 0], [0, -1e38, 2e38]], dtype=np.float32)
    for mode in ("unit_sphere", "unit_box"):
        out = normalize_points(big, mode)
        assert np.isfinite(out).all() and np.ptp(out, 0).max() > 0.5
