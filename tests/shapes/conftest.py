"""Writers of mesh and cloud files for the I/O and fuzz tests (independent of the readers under test)."""

from __future__ import annotations

import numpy as np
import pytest

# unit cube [-0.5, 0.5]^3 as 6 quads (the readers fan-triangulate them into 12 triangles)
CUBE_V = np.array([[x, y, z] for z in (-0.5, 0.5) for y in (-0.5, 0.5) for x in (-0.5, 0.5)], dtype=np.float64)
CUBE_Q = np.array(
    [[0, 2, 3, 1], [4, 5, 7, 6], [0, 1, 5, 4], [2, 6, 7, 3], [0, 4, 6, 2], [1, 3, 7, 5]],
    dtype=np.int64,
)
PLY_TYPES = {"float": "f4", "double": "f8", "uchar": "u1", "int": "i4", "uint": "u4", "short": "i2"}


class Writers:
    """Byte content of ``.ply`` / ``.off`` / ``.obj`` files from vertices ``[v, 3]`` and faces ``[f, k]``."""

    @staticmethod
    def ply(
        vertices: np.ndarray,
        faces: np.ndarray | None = None,
        fmt: str = "ascii",
        vertex_type: str = "float",
        count_type: str = "uchar",
        index_type: str = "int",
        n_vertex: int | None = None,
        n_face: int | None = None,
        comment: bool = True,
    ) -> bytes:
        n_vertex = len(vertices) if n_vertex is None else n_vertex
        head = ["ply", f"format {fmt} 1.0"] + (["comment written by the tests"] if comment else [])
        head += [f"element vertex {n_vertex}"] + [f"property {vertex_type} {a}" for a in "xyz"]
        if faces is not None:
            n_face = len(faces) if n_face is None else n_face
            head += [f"element face {n_face}", f"property list {count_type} {index_type} vertex_indices"]
        head.append("end_header")
        out = ("\n".join(head) + "\n").encode()
        if fmt == "ascii":
            body = [" ".join(repr(float(c)) for c in v) for v in vertices]
            body += [" ".join(str(int(i)) for i in [len(f), *f]) for f in faces] if faces is not None else []
            return out + ("\n".join(body) + "\n").encode()
        order = "<" if fmt == "binary_little_endian" else ">"
        out += np.asarray(vertices, dtype=order + PLY_TYPES[vertex_type]).tobytes()
        parts = [out]
        for f in faces if faces is not None else []:
            parts.append(np.array([len(f)], dtype=order + PLY_TYPES[count_type]).tobytes())
            parts.append(np.asarray(f, dtype=order + PLY_TYPES[index_type]).tobytes())
        return b"".join(parts)

    @staticmethod
    def off(vertices: np.ndarray, faces: np.ndarray, counts: str | None = None) -> bytes:
        lines = ["OFF", counts or f"{len(vertices)} {len(faces)} 0"]
        lines += [" ".join(repr(float(c)) for c in v) for v in vertices]
        lines += [" ".join(str(int(i)) for i in [len(f), *f]) for f in faces]
        return ("\n".join(lines) + "\n").encode()

    @staticmethod
    def obj(vertices: np.ndarray, faces: np.ndarray) -> bytes:
        lines = ["# cube", "o cube"] + ["v " + " ".join(repr(float(c)) for c in v) for v in vertices]
        lines += ["vn 0 0 1"] + ["f " + " ".join(f"{int(i) + 1}//1" for i in f) for f in faces]
        return ("\n".join(lines) + "\n").encode()


@pytest.fixture
def writers() -> type[Writers]:
    return Writers


@pytest.fixture
def cube() -> tuple[np.ndarray, np.ndarray]:
    return CUBE_V.copy(), CUBE_Q.copy()
