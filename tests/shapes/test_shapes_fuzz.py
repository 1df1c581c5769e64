"""Fuzz suite of every shapes load path, each case in a child process (:mod:`ditkit_core.testing.fuzz`).

Load paths: :func:`~ditkit_shapes.readers.read_points` (``.ply`` ASCII / binary little and big endian, ``.off``,
``.obj``, ``.npy``; it is what every other path calls), the ShapeNet-style folder dataset
(:class:`~ditkit_shapes.data.ShapeFolderDataset`, in both ``bad_files`` modes; :class:`ShapesDataModule` builds its
splits with it) and checkpoint loading (:func:`ditkit_shapes.cli.load`). The package keeps no dataset cache.

Contract checked for every case: no crash, hang or memory blow-up; a failure is a ``ValueError`` / ``DataError``
naming the file; a success returns finite points ``[p, 3]``. Hand-written invalid cases must fail. Seeded random
mutations of valid files (``hypothesis`` is not installed here) widen the sweep; the slow test runs a larger one.
"""

from __future__ import annotations

import io
import random
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from ditkit_core.testing.fuzz import Outcome, assert_clean, hostile_files, run_cases

READ = "ditkit_shapes.readers:read_points"
HOSTILE_NUMBERS = ["-1", "0", "1e400", "nan", "-inf", "4294967296", "10000000000000", "1.5", "x", "", "1e39"]


class Marker:
    """Unpickling this object creates ``path`` (a loader that executes code from a file would leave it behind)."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return (Path(self.path).touch, ())


def npy_bytes(array: np.ndarray, allow_pickle: bool = False) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=allow_pickle)
    return buf.getvalue()


def valid_files(writers, cube) -> dict[str, bytes]:
    v, q = cube
    pts = np.random.default_rng(0).normal(size=(64, 3))
    return {
        "ascii.ply": writers.ply(v, q, "ascii"),
        "le.ply": writers.ply(v, q, "binary_little_endian"),
        "be.ply": writers.ply(v, q, "binary_big_endian", vertex_type="double", index_type="uint"),
        "points.ply": writers.ply(pts, None, "binary_little_endian", vertex_type="double"),
        "cube.off": writers.off(v, q),
        "cube.obj": writers.obj(v, q),
        "cloud.npy": npy_bytes(pts.astype(np.float32)),
    }


def also_valid(writers, cube) -> dict[str, bytes]:
    """Unusual but legal files: each must load."""
    v, q = cube
    pts = np.random.default_rng(1).normal(size=(20, 3))
    ply = writers.ply(v, q, "ascii").decode()
    head = "ply\nformat ascii 1.0\nelement face 1\nproperty list uchar int vertex_indices\nelement vertex 3\n"
    head += "property float x\nproperty float y\nproperty float z\nproperty uchar red\nend_header\n"
    return {
        "crlf.ply": ply.replace("\n", "\r\n").encode(),
        "crlf.off": writers.off(v, q).replace(b"\n", b"\r\n"),
        "face_first.ply": (head + "3 0 1 2\n0 0 0 1\n1 0 0 2\n0 1 0 3\n").encode(),
        "extra_element.ply": (
            b"ply\nformat binary_little_endian 1.0\nelement vertex 3\nproperty double x\nproperty double y\n"
            b"property double z\nelement material 2\nproperty list uchar uchar name\nproperty float shine\n"
            b"end_header\n"
        )
        + np.eye(3).tobytes()
        + b"\x02ab"
        + np.float32(1).tobytes()
        + b"\x00"
        + np.float32(2).tobytes(),
        "mixed_faces.obj": b"v 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nvt 0 0\nf 1/1 2/1 3/1 4/1\nf 1 2 3\ng x\n",
        "fortran.npy": npy_bytes(np.asfortranarray(pts)),
        "big_endian.npy": npy_bytes(pts.astype(">f8")),
        "half.npy": npy_bytes(pts.astype(np.float16)),
        "ints.npy": npy_bytes(np.arange(60, dtype=np.int64).reshape(20, 3)),
    }


def invalid_files(writers, cube, tmp: Path) -> dict[str, bytes]:
    """Hand-written hostile files: each must be refused with an error naming it."""
    v, q = cube
    pts = np.random.default_rng(2).normal(size=(16, 3))
    ply = writers.ply(v, q, "ascii").decode()
    le = writers.ply(v, q, "binary_little_endian")
    off = writers.off(v, q).decode()
    bad_index = q.copy()
    bad_index[2, 1] = 10**6
    negative = q.copy()
    negative[0, 0] = -1
    nan_v, big_v = v.copy(), v.copy()
    nan_v[3, 1], big_v[6, 2] = np.nan, 1e300
    line = np.array([[0.0, 0, 0], [1, 0, 0], [2, 0, 0]])
    body = le.split(b"end_header\n", 1)[1]
    return {
        # PLY: counts
        "ply_count_1e12.ply": writers.ply(v, q, "ascii", n_vertex=10**12),
        "ply_count_fits_header.ply": writers.ply(v, q, "binary_little_endian", n_vertex=10**9),
        "ply_count_negative.ply": ply.replace("element vertex 8", "element vertex -1").encode(),
        "ply_count_word.ply": ply.replace("element vertex 8", "element vertex eight").encode(),
        "ply_faces_1e9.ply": writers.ply(v, q, "binary_big_endian", n_face=10**9),
        "ply_list_255.ply": le[: -len(body)] + body[:96] + b"\xff" + body[97:],  # first face claims 255 indices
        # PLY: indices and faces
        "ply_index_1e6.ply": writers.ply(v, bad_index, "ascii"),
        "ply_index_1e6_le.ply": writers.ply(v, bad_index, "binary_little_endian"),
        "ply_index_negative.ply": writers.ply(v, negative, "binary_little_endian"),
        "ply_two_vertex_face.ply": writers.ply(v, np.array([[0, 1]]), "ascii"),
        "ply_zero_area.ply": writers.ply(line, np.array([[0, 1, 2]]), "ascii"),
        # PLY: values
        "ply_nan.ply": writers.ply(nan_v, q, "ascii"),
        "ply_inf.ply": writers.ply(v, q, "ascii").replace(b"\n0.5 0.5 0.5", b"\n0.5 inf 0.5"),
        "ply_1e300.ply": writers.ply(big_v, q, "binary_big_endian", vertex_type="double"),
        "ply_words.ply": ply.replace("\n0.5 0.5 0.5", "\n0.5 abc 0.5").encode(),
        "ply_degenerate.ply": writers.ply(np.ones((5, 3)), None, "ascii"),
        "ply_no_vertices.ply": writers.ply(np.zeros((0, 3)), None, "ascii") + b"\n",
        # PLY: header
        "ply_format.ply": ply.replace("format ascii", "format binary_middle_endian").encode(),
        "ply_no_format.ply": ply.replace("format ascii 1.0\n", "").encode(),
        "ply_no_end_header.ply": ply.replace("end_header", "end_heder").encode(),
        "ply_long_header.ply": b"ply\nformat ascii 1.0\n" + b"comment " + b"x" * 70_000 + b"\nend_header\n",
        "ply_type.ply": ply.replace("property float x", "property flt x").encode(),
        "ply_float_index.ply": ply.replace("list uchar int", "list uchar float").encode(),
        "ply_float_count.ply": ply.replace("list uchar int", "list float int").encode(),
        "ply_no_z.ply": ply.replace("property float z\n", "property float w\n").encode(),
        "ply_keyword.ply": ply.replace("comment", "colour").encode(),
        "ply_header_latin1.ply": ply.replace("comment written", "comment caf\u00e9").encode("latin-1"),
        "ply_body_latin1.ply": ply.replace("\n0.5 0.5 0.5", "\n0.5 0.5 0.5\u00e9").encode("latin-1"),
        "ply_trailing.ply": le + b"\x00" * 7,
        "ply_extra_values.ply": ply.replace("\n4 0 2 3 1", "\n4 0 2 3 1 9").encode(),
        "ply_not_ply.ply": b"plx\n" + ply.encode()[4:],
        # OFF
        "off_count_1e12.off": writers.off(v, q, counts=f"{10**12} 6 0"),
        "off_count_negative.off": writers.off(v, q, counts="-8 6 0"),
        "off_count_missing.off": writers.off(v, q, counts="8"),
        "off_index.off": writers.off(v, bad_index),
        "off_face_1e6.off": off.replace("\n4 0 2 3 1", "\n1000000 0 2 3 1").encode(),
        "off_nan.off": writers.off(nan_v, q),
        "off_short_vertex.off": off.replace("\n0.5 0.5 0.5", "\n0.5 0.5").encode(),
        "off_header_only.off": b"OFF\n",
        "off_magic.off": off.replace("OFF", "MOFF", 1).encode(),
        "off_4d.off": off.replace("OFF", "4OFF", 1).encode(),
        "off_trailing.off": (off + "1 2 3\n").encode(),
        "off_latin1.off": off.replace("\n0.5 0.5 0.5", "\n0.5 0.5 0.5 # caf\u00e9").encode("latin-1"),
        # OBJ
        "obj_index_zero.obj": b"v 0 0 0\nv 1 0 0\nv 0 1 0\nf 0 1 2\n",
        "obj_index_99.obj": b"v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 99\n",
        "obj_relative.obj": b"v 0 0 0\nv 1 0 0\nv 0 1 0\nf -1 -2 -99\n",
        "obj_nan.obj": b"v 0 0 0\nv 1 nan 0\nv 0 1 0\nf 1 2 3\n",
        "obj_1e300.obj": b"v 0 0 0\nv 1 1e300 0\nv 0 1 0\n",
        "obj_words.obj": b"v 0 0 0\nv 1 0 0\nv 0 1 0\nf a b c\n",
        "obj_faces_only.obj": b"f 1 2 3\n",
        "obj_short_vertex.obj": b"v 0 0 0\nv 1 0\nv 0 1 0\n",
        "obj_comments.obj": b"# nothing\n# here\n",
        "obj_latin1.obj": b"v 0 0 0\nv 1 0 0\ng caf\xe9\nv 0 1 0\n",
        # NPY
        "npy_n2.npy": npy_bytes(pts[:, :2]),
        "npy_flat.npy": npy_bytes(pts.reshape(-1)),
        "npy_3d.npy": npy_bytes(pts[:, :, None]),
        "npy_object.npy": npy_bytes(np.array([[Marker(tmp / "executed")] * 3], dtype=object), allow_pickle=True),
        "npy_complex.npy": npy_bytes(pts.astype(np.complex128)),
        "npy_strings.npy": npy_bytes(pts.astype(str)),
        "npy_structured.npy": npy_bytes(np.zeros(4, dtype=[("x", "f4"), ("y", "f4"), ("z", "f4")])),
        "npy_bool.npy": npy_bytes(pts > 0),
        "npy_nan.npy": npy_bytes(np.where(np.arange(48).reshape(16, 3) == 7, np.nan, pts)),
        "npy_inf.npy": npy_bytes(np.where(np.arange(48).reshape(16, 3) == 7, -np.inf, pts)),
        "npy_1e300.npy": npy_bytes(pts * 1e300),
        "npy_empty.npy": npy_bytes(np.zeros((0, 3))),
        "npy_truncated.npy": npy_bytes(pts)[:-3],
        "npy_trailing.npy": npy_bytes(pts) + b"\x00" * 8,
        "npy_shape_1e12.npy": _npy_header((10**12, 3)) + pts.tobytes(),
        "npy_magic.npy": b"\x93NUMPX" + npy_bytes(pts)[6:],
    }


def _npy_header(shape: tuple[int, ...]) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f8", "fortran_order": False, "shape": shape})
    return buf.getvalue()


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One seeded random mutation: a hostile number for a numeric token, a line dropped or doubled (text), or a few
    bytes overwritten anywhere (header included)."""
    text = None
    if b"\x00" not in data and rng.random() < 0.7:
        try:
            text = data.decode("ascii")
        except UnicodeDecodeError:
            text = None
    if text is not None:
        kind = rng.randrange(3)
        numbers = list(re.finditer(r"-?\d+(\.\d+)?(e[-+]?\d+)?", text))
        if kind == 0 and numbers:
            m = rng.choice(numbers)
            return (text[: m.start()] + rng.choice(HOSTILE_NUMBERS) + text[m.end() :]).encode()
        lines = text.split("\n")
        k = rng.randrange(len(lines))
        lines[k : k + 1] = [] if kind == 1 else [lines[k], lines[k]]
        return "\n".join(lines).encode()
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        k = rng.randrange(len(out))
        out[k] = rng.randrange(256)
    return bytes(out)


def write(directory: Path, files: dict[str, bytes]) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (directory / name).write_bytes(data)
    return [directory / n for n in files]


def read_cases(paths: list[Path]) -> list[dict]:
    return [{"path": str(p), "mesh_points": 64} for p in paths]


def assert_points(outcomes: list[Outcome]) -> None:
    for o in outcomes:
        if o.status == "ok":
            shape = o.summary.get("shape")
            assert shape is not None and len(shape) == 2 and shape[1] == 3 and shape[0] > 0, o


def test_read_points_refuses_every_hand_written_hostile_file(tmp_path, writers, cube):
    files = invalid_files(writers, cube, tmp_path)
    paths = write(tmp_path / "bad", files)
    (tmp_path / "bad" / "folder.ply").mkdir()
    (tmp_path / "bad" / "cloud.xyz").write_bytes(b"0 0 0\n")
    paths += [tmp_path / "bad" / "folder.ply", tmp_path / "bad" / "cloud.xyz"]
    good = write(tmp_path / "good", also_valid(writers, cube))
    outcomes = run_cases(READ, read_cases(paths + good), timeout=300)
    bad_out, good_out = outcomes[: len(paths)], outcomes[len(paths) :]
    assert_clean(bad_out, name_key="path", expect_error=True)
    assert all(o.error_type == "PointCloudError" for o in bad_out), [str(o) for o in bad_out]
    assert not (tmp_path / "executed").exists()  # the pickled object array was never unpickled
    assert [o.status for o in good_out] == ["ok"] * len(good), [str(o) for o in good_out if o.status != "ok"]
    assert_clean(good_out)
    assert_points(good_out)


def test_read_points_survives_hostile_variants_and_mutations(tmp_path, writers, cube):
    paths = []
    rng = random.Random(0)
    for name, data in valid_files(writers, cube).items():
        stem, ext = name.rsplit(".", 1)
        paths += hostile_files(data, tmp_path / stem, f".{ext}").values()
        mutants = {f"mutant{i}.{ext}": mutate(data, rng) for i in range(8)}
        paths += write(tmp_path / stem, mutants)
    outcomes = run_cases(READ, read_cases(paths), timeout=300)
    assert_clean(outcomes, name_key="path")
    assert_points(outcomes)
    # the empty / cut-after-one-byte / NUL variants of every format are refused
    refused = {Path(o.case["path"]).stem for o in outcomes if o.status == "error"}
    assert {"empty", "truncated_1", "nul"} <= refused


def _folders(tmp_path: Path, writers, cube, variants: tuple[str, ...]) -> tuple[list[dict], list[str]]:
    """One dataset root per hostile file: 2 classes x 2 good clouds, plus the hostile file in class ``a``."""
    rng = np.random.default_rng(0)
    cases, names = [], []
    for fname, data in valid_files(writers, cube).items():
        if fname in ("points.ply", "be.ply"):
            continue
        stem, ext = fname.rsplit(".", 1)
        hostile = hostile_files(data, tmp_path / "src" / f"{stem}_{ext}", f".{ext}")
        for variant in variants:
            root = tmp_path / f"root_{stem}_{ext}_{variant}"
            for cls in ("a", "b"):
                (root / cls / "train").mkdir(parents=True)
                for i in range(2):
                    np.save(root / cls / "train" / f"good{i}.npy", rng.normal(size=(32, 3)))
            name = f"hostile_{stem}_{ext}_{variant}.{ext}"
            (root / "a" / "train" / name).write_bytes(hostile[variant].read_bytes())
            for mode in ("error", "skip"):
                cases.append({"root": str(root), "split": "train", "points": 16, "bad_files": mode})
                names.append(name)
    return cases, names


def _check_folder_outcomes(outcomes: list[Outcome], names: list[str]) -> None:
    assert_clean(outcomes, name_key="root")
    for o, name in zip(outcomes, names):
        if o.case["bad_files"] == "error" and o.status == "error":
            assert name in o.message, o  # the error names the bad file, not only the folder
        if o.case["bad_files"] == "skip":
            assert o.status == "ok", o  # class "a" keeps its two good clouds
    for err, skip in zip(outcomes[::2], outcomes[1::2]):
        skipped = skip.summary["items"]["report"]["items"]["skips"]["len"]
        assert skipped == (1 if err.status == "error" else 0), (err, skip)
        assert skip.summary["items"]["points"]["shape"] == [5 - skipped, 16, 3]


def test_folder_dataset_names_or_skips_every_hostile_file(tmp_path, writers, cube):
    cases, names = _folders(tmp_path, writers, cube, ("empty", "truncated_half", "random", "flipped", "latin1"))
    root = cases[0]["root"]
    traversal = [
        {"root": root, "split": "train", "classes": ["../outside"], "points": 16},
        {"root": root, "split": "../../../etc", "points": 16},
        {"root": root, "split": "train", "points": 0},
    ]
    outcomes = run_cases("ditkit_shapes.data:ShapeFolderDataset", cases + traversal, timeout=300)
    _check_folder_outcomes(outcomes[: len(cases)], names)
    assert_clean(outcomes[len(cases) :], name_key=None, expect_error=True)
    assert "classes='../outside'" in outcomes[-3].message and "split='../../../etc'" in outcomes[-2].message
    assert "points=0" in outcomes[-1].message


def test_checkpoint_loading_refuses_hostile_files_without_running_code(tmp_path):
    buf = io.BytesIO()
    torch.save({"state_dict": {"w": torch.zeros(2)}, "hyper_parameters": {}}, buf)
    paths = list(hostile_files(buf.getvalue(), tmp_path / "ckpt", ".ckpt").values())
    evil = tmp_path / "ckpt" / "evil.ckpt"
    torch.save({"state_dict": {}, "x": Marker(tmp_path / "executed")}, evil)
    outcomes = run_cases("ditkit_shapes.cli:load", [{"ckpt": str(p)} for p in [*paths, evil]], timeout=300)
    assert_clean(outcomes, name_key="ckpt", expect_error=True)
    assert not (tmp_path / "executed").exists()


@pytest.mark.slow
def test_wide_random_sweep_of_readers_and_folders(tmp_path, writers, cube):
    rng = random.Random(1)
    paths = []
    for name, data in valid_files(writers, cube).items():
        stem, ext = name.rsplit(".", 1)
        mutants, cur = {}, data
        for i in range(600):
            cur = mutate(cur if rng.random() < 0.5 else data, rng)  # single and stacked mutations
            mutants[f"m{i}.{ext}"] = cur
        paths += write(tmp_path / stem, mutants)
    outcomes = run_cases(READ, read_cases(paths), timeout=600)
    assert_clean(outcomes, name_key="path")
    assert_points(outcomes)
    variants = (
        "empty",
        "truncated_1",
        "truncated_half",
        "truncated_90",
        "random",
        "flipped",
        "nul",
        "latin1",
        "doubled",
    )
    cases, names = _folders(tmp_path / "folders", writers, cube, variants)
    _check_folder_outcomes(run_cases("ditkit_shapes.data:ShapeFolderDataset", cases, timeout=600), names)
