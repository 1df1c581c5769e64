"""Checked readers of point-cloud and mesh files: ``.npy``, ``.ply`` (:mod:`ditkit_shapes.ply`), ``.off``, ``.obj``.

Every reader is pure Python / numpy (no native mesh library sees the bytes): counts in headers are compared with
what the file holds before anything is allocated, face indices with the vertex count, coordinates are checked for
NaN / Inf and float32 range. Bad input raises :class:`PointCloudError` (a :class:`~ditkit_core.errors.DataError`)
whose message names the file, the line (text) or record (binary), the field and the value. A reader returns only
coordinates the file contains (or, for meshes, points sampled on the faces the file defines); ``.npy`` files are
read with ``allow_pickle=False`` after their header has been checked, so loading never executes code.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ditkit_core.errors import DataError, check_array, check_count, naming_file, read_text

FLOAT32_MAX = float(np.finfo(np.float32).max)  # coordinates beyond it do not fit the float32 clouds
EXTENSIONS = (".npy", ".ply", ".obj", ".off")
MAX_FILE_BYTES = 1 << 32  # larger files are refused instead of read into memory
MAX_VERTICES = (1 << 31) - 1  # int32 indices


class PointCloudError(DataError):
    """An invalid point cloud or mesh file; the message names the file (or source), field and value."""


def _as_cloud_error(e: DataError) -> PointCloudError:
    """The same message and fields as a :class:`PointCloudError` (for errors of the core checks)."""
    err = PointCloudError(str(e))
    err.reason, err.path, err.line, err.field, err.value = e.reason, e.path, e.line, e.field, e.value
    return err


@contextmanager
def cloud_errors() -> Iterator[None]:
    """Re-raise a :class:`DataError` from the block as a :class:`PointCloudError` with the same message."""
    try:
        yield
    except PointCloudError:
        raise
    except DataError as e:
        raise _as_cloud_error(e) from e


def validate_points(pts: np.ndarray, where: str = "points", eps: float = 1e-9, field: str = "points") -> np.ndarray:
    """Check a cloud and return it as float32 ``[p, 3]``.

    Args:
        pts: the cloud ``[p, 3]`` (any real numeric dtype).
        where: the file (or source) named in errors.
        eps: clouds whose extent is at most ``eps`` on every axis are degenerate.
        field: the field named in errors.

    Raises:
        PointCloudError: non-numeric or complex dtype, wrong shape, empty cloud, NaN/Inf coordinates (first bad row
            named), values beyond float32 range, or a degenerate cloud (all points equal within ``eps``).
    """
    pts = np.asarray(pts)
    with cloud_errors():
        check_array(pts, path=where, field=field, allow_nan=True, allow_inf=True, float32=False)
    if pts.dtype.kind == "b":
        raise PointCloudError("expected numbers, got booleans", path=where, field=field, value=pts.dtype)
    if pts.ndim != 2 or pts.shape[-1] != 3:
        raise PointCloudError(
            f"expected points of shape [p, 3], got shape {tuple(pts.shape)}", path=where, field="shape", value=pts.shape
        )
    if pts.shape[0] == 0:
        raise PointCloudError("empty point cloud (0 points)", path=where, field="shape", value=pts.shape)
    pts64 = pts.astype(np.float64)
    bad = ~np.isfinite(pts64).all(axis=1) | (np.abs(pts64) > FLOAT32_MAX).any(axis=1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        what = "NaN/Inf coordinates" if not np.isfinite(pts64[i]).all() else "coordinates beyond float32 range"
        raise PointCloudError(
            f"{int(bad.sum())} point(s) with {what}, first at row {i}: {pts64[i].tolist()}",
            path=where,
            field=field,
            value=pts64[i].tolist(),
        )
    if float(np.ptp(pts64, axis=0).max()) <= eps:
        raise PointCloudError(
            f"degenerate cloud: all {pts.shape[0]} points equal {pts64[0].tolist()}",
            path=where,
            field=field,
            value=pts64[0].tolist(),
        )
    return pts.astype(np.float32)


@dataclass
class Polygons:
    """Face lists as one flat index array with a length per face; ``where[k]`` locates face ``k`` in the file."""

    flat: np.ndarray  # [sum(counts)] int64
    counts: np.ndarray  # [faces] int64
    where: np.ndarray  # [faces] int64: line (text) or record number (binary), 1-based
    record: bool  # where counts records, not lines


def triangulate(polys: Polygons | None, n_vertices: int, path: Path, name: str) -> np.ndarray:
    """Check face lists (>= 3 vertices, indices in ``[0, n_vertices)``) and fan-triangulate them to ``[f, 3]``."""
    if polys is None or len(polys.counts) == 0:
        return np.zeros((0, 3), dtype=np.int64)
    small = np.flatnonzero(polys.counts < 3)
    if small.size:
        k = int(small[0])
        raise PointCloudError(
            "a face needs at least 3 vertices",
            path=path,
            line=int(polys.where[k]),
            record=polys.record,
            field=name,
            value=int(polys.counts[k]),
        )
    bad = np.flatnonzero((polys.flat < 0) | (polys.flat >= n_vertices))
    if bad.size:
        k = int(np.searchsorted(np.cumsum(polys.counts), bad[0], side="right"))
        raise PointCloudError(
            f"vertex index outside [0, {n_vertices})",
            path=path,
            line=int(polys.where[k]),
            record=polys.record,
            field=name,
            value=int(polys.flat[bad[0]]),
        )
    if (polys.counts == polys.counts[0]).all():
        faces = polys.flat.reshape(len(polys.counts), int(polys.counts[0]))
        return np.concatenate([faces[:, [0, i, i + 1]] for i in range(1, faces.shape[1] - 1)])
    starts = np.concatenate([[0], np.cumsum(polys.counts)[:-1]])
    pairs = zip(starts.tolist(), polys.counts.tolist())
    tris = [polys.flat[[s, s + i, s + i + 1]] for s, n in pairs for i in range(1, n - 1)]
    return np.stack(tris)


def parse_table(rows: list[tuple[int, str]], ncols: int, path: Path, name: str, exact: bool) -> np.ndarray:
    """``rows`` of ``(line, text)`` as a float64 table ``[len(rows), ncols]`` (the first ``ncols`` values of each).

    With ``exact`` every row must have exactly ``ncols`` values, otherwise at least ``ncols`` (the rest is ignored).
    A bad row is named by its line.
    """
    split = [s.split() for _, s in rows]
    if all(len(w) == ncols if exact else len(w) >= ncols for w in split):
        try:
            return np.array([w[:ncols] for w in split], dtype=np.float64).reshape(len(rows), ncols)
        except ValueError:
            pass
    for (line, s), words in zip(rows, split):
        if len(words) < ncols or (exact and len(words) != ncols):
            want = ncols if exact else f"at least {ncols}"
            raise PointCloudError(
                f"expected {want} values, got {len(words)}", path=path, line=line, field=name, value=s.strip()[:60]
            )
        for w in words[:ncols]:
            try:
                float(w)
            except ValueError:
                raise PointCloudError("not a number", path=path, line=line, field=name, value=w) from None
    raise PointCloudError("unreadable numbers", path=path, field=name)  # pragma: no cover - a row above fails


def check_vertex_rows(vertices: np.ndarray, lines: np.ndarray | None, path: Path, record: bool = False) -> None:
    """NaN / Inf / beyond-float32 vertices, named by the line (or record) they came from."""
    bad = ~np.isfinite(vertices).all(axis=1) | (np.abs(vertices) > FLOAT32_MAX).any(axis=1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        line = int(lines[i]) if lines is not None else i + 1
        raise PointCloudError(
            f"{int(bad.sum())} vertices with NaN/Inf or beyond-float32 coordinates (first: vertex {i})",
            path=path,
            line=line,
            record=record or lines is None,
            field="vertex",
            value=vertices[i].tolist(),
        )


def _text_rows(path: Path) -> list[tuple[int, str]]:
    """Non-blank lines of a UTF-8 text file as ``(line number, text without comment)``."""
    with cloud_errors():
        text = read_text(path, max_bytes=MAX_FILE_BYTES)
    rows = []
    for i, s in enumerate(text.splitlines(), start=1):
        s = s.split("#", 1)[0]
        if s.strip():
            rows.append((i, s))
    return rows


def read_off(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read an ``.off`` mesh (``OFF``, ``COFF``, ``NOFF``, ``CNOFF``, ``STOFF``; extra per-vertex values ignored).

    Returns:
        ``(vertices [v, 3] float64, faces [f, 3] int64)``.
    """
    path = Path(path)
    rows = _text_rows(path)
    if not rows:
        raise PointCloudError("no OFF header (the file has no data lines)", path=path)
    line, head = rows[0]
    key = head.split()[0]
    kind = key.rstrip("0123456789+-.")  # ModelNet writes "OFF490 518 0" on one line
    if kind not in ("OFF", "COFF", "NOFF", "CNOFF", "STOFF", "STCOFF", "STNOFF", "STCNOFF"):
        raise PointCloudError(
            "not an OFF file (the first word must be OFF)", path=path, line=line, field="header", value=key[:20]
        )
    counts = head[head.index(key) + len(kind) :].split()
    at = 1
    if not counts:
        if len(rows) < 2:
            raise PointCloudError("truncated: no vertex / face count line", path=path, line=line, field="counts")
        line, s = rows[1]
        counts, at = s.split(), 2
    if len(counts) < 2:
        raise PointCloudError(
            "expected '<vertices> <faces> [<edges>]'", path=path, line=line, field="counts", value=" ".join(counts)
        )
    left = len(rows) - at
    nv = check_count(_int(counts[0]), MAX_VERTICES, path=path, field="vertices", line=line)
    nf = check_count(_int(counts[1]), MAX_VERTICES, path=path, field="faces", line=line)
    if nv + nf > left:  # every vertex and face has a line of its own
        raise PointCloudError(
            f"truncated: the header claims {nv} vertices and {nf} faces, the file has {left} more data lines",
            path=path,
            line=line,
            field="vertices",
            value=nv,
        )
    vrows, frows = rows[at : at + nv], rows[at + nv : at + nv + nf]
    if at + nv + nf < len(rows):
        ln, s = rows[at + nv + nf]
        raise PointCloudError(
            "unexpected data after the last face (header counts disagree)",
            path=path,
            line=ln,
            field="body",
            value=s.strip()[:40],
        )
    vertices = parse_table(vrows, 3, path, "vertex", exact=False) if nv else np.zeros((0, 3))
    check_vertex_rows(vertices, np.array([ln for ln, _ in vrows], dtype=np.int64), path)
    flat: list[int] = []
    sizes = np.zeros(nf, dtype=np.int64)
    for r, (ln, s) in enumerate(frows):
        words = s.split()
        n = _face_int(words[0], path, ln)
        if n < 0 or n + 1 > len(words):
            raise PointCloudError(
                f"face claims {n} vertices, the line has {len(words) - 1} values",
                path=path,
                line=ln,
                field="face",
                value=n,
            )
        flat.extend(_face_int(w, path, ln) for w in words[1 : n + 1])
        sizes[r] = n
    where = np.array([ln for ln, _ in frows], dtype=np.int64)
    polys = Polygons(np.array(flat, dtype=np.int64), sizes, where, False)
    return vertices, triangulate(polys, nv, path, "face")


def read_obj(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read an ``.obj`` mesh: ``v`` lines (first three values) and ``f`` lines (``i``, ``i/t``, ``i//n``, ``i/t/n``;
    1-based, negative = relative to the vertices read so far). Other statements are ignored.

    Returns:
        ``(vertices [v, 3] float64, faces [f, 3] int64)``.
    """
    path = Path(path)
    vrows: list[tuple[int, str]] = []
    flat: list[int] = []
    sizes: list[int] = []
    where: list[int] = []
    for ln, s in _text_rows(path):
        words = s.split()
        if words[0] == "v":
            vrows.append((ln, s.split(None, 1)[1] if len(words) > 1 else ""))
        elif words[0] == "f":
            for w in words[1:]:
                i = _face_int(w.split("/", 1)[0], path, ln)
                if i == 0:
                    raise PointCloudError(
                        "OBJ indices start at 1 (0 is invalid)", path=path, line=ln, field="f", value=w
                    )
                flat.append(i - 1 if i > 0 else len(vrows) + i)
            sizes.append(len(words) - 1)
            where.append(ln)
    vertices = parse_table(vrows, 3, path, "v", exact=False) if vrows else np.zeros((0, 3))
    check_vertex_rows(vertices, np.array([ln for ln, _ in vrows], dtype=np.int64), path)
    polys = Polygons(np.array(flat, dtype=np.int64), np.array(sizes, dtype=np.int64), np.array(where), False)
    return vertices, triangulate(polys, len(vertices), path, "f")


def _int(word: str) -> int | str:
    try:
        return int(word)
    except ValueError:
        return word


def _face_int(word: str, path: Path, line: int) -> int:
    try:
        return int(word)
    except ValueError:
        raise PointCloudError(
            "expected an integer vertex index", path=path, line=line, field="face", value=word
        ) from None


def read_npy(path: str | Path) -> np.ndarray:
    """Read a ``.npy`` cloud ``[p, 3]`` as validated float32, checking the header before any data is read.

    Raises:
        PointCloudError: bad magic or header, object / structured / string / complex dtype (never unpickled), a
            shape other than ``[p, 3]``, a data size that disagrees with the header, invalid coordinates.
    """
    path = Path(path)
    fmt = np.lib.format
    with cloud_errors(), naming_file(path, "not a readable .npy array"), open(path, "rb") as f:
        version = fmt.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = fmt.read_array_header_2_0(f)
        else:
            raise PointCloudError("unsupported .npy format version", path=path, field="version", value=version)
        offset = f.tell()
    if dtype.hasobject or dtype.fields is not None or dtype.kind not in "biufc":
        raise PointCloudError(
            "expected a numeric array; object, structured and string arrays are not loaded",
            path=path,
            field="dtype",
            value=str(dtype),
        )
    if dtype.kind == "c":
        raise PointCloudError("complex coordinates are not accepted", path=path, field="dtype", value=str(dtype))
    if len(shape) != 2 or shape[1] != 3:
        raise PointCloudError(
            f"expected points of shape [p, 3], got shape {tuple(shape)}", path=path, field="shape", value=tuple(shape)
        )
    need = int(np.prod(shape, dtype=object)) * dtype.itemsize
    have = path.stat().st_size - offset
    if have != need:
        what = "truncated" if have < need else "trailing data"
        raise PointCloudError(
            f"{what}: shape {tuple(shape)} of {dtype} needs {need} data bytes, the file has {have}",
            path=path,
            field="shape",
            value=tuple(shape),
        )
    with cloud_errors(), naming_file(path, "not a readable .npy array"):
        pts = np.load(path, allow_pickle=False)
    return validate_points(pts, str(path))


def read_mesh(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read the vertices and triangles of a ``.ply``, ``.off`` or ``.obj`` file (checked readers).

    Returns:
        ``(vertices [v, 3] float64, faces [f, 3] int64)``; ``faces`` is empty for a bare point set.
    """
    from ditkit_shapes.ply import read_ply

    path = Path(path)
    readers = {".ply": read_ply, ".off": read_off, ".obj": read_obj}
    ext = path.suffix.lower()
    if ext not in readers:
        raise PointCloudError(f"unsupported mesh extension {ext!r}", path=path, field="extension", value=ext)
    _check_file(path)
    with cloud_errors(), naming_file(path):
        vertices, faces = readers[ext](path)
    check_vertex_rows(vertices, None, path)
    return vertices, faces


def sample_surface(vertices: np.ndarray, faces: np.ndarray, n: int, seed: int = 0, where: str = "mesh") -> np.ndarray:
    """``n`` points uniformly on the surface of a triangle mesh (area-weighted faces, uniform barycentric).

    Args:
        vertices: ``[v, 3]``.
        faces: ``[f, 3]`` vertex indices.
        n: points to draw.
        seed: sampling seed.
        where: named in errors.

    Returns:
        ``[n, 3]`` float64.
    """
    a, b, c = (vertices[faces[:, k]].astype(np.float64) for k in range(3))
    area = 0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1)
    total = float(area.sum())
    if not np.isfinite(total) or total <= 0:
        raise PointCloudError(
            f"mesh with {len(faces)} faces has zero surface area", path=where, field="faces", value=len(faces)
        )
    rng = np.random.default_rng(seed)
    k = rng.choice(len(faces), size=n, p=area / total)
    r1, r2 = rng.random((2, n, 1))
    s = np.sqrt(r1)
    return (1 - s) * a[k] + s * (1 - r2) * b[k] + s * r2 * c[k]


def _check_file(path: Path) -> None:
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if not path.is_file():
        raise PointCloudError("not a regular file", path=path)
    size = path.stat().st_size
    if size == 0:
        raise PointCloudError("empty file (0 bytes)", path=path)
    if size > MAX_FILE_BYTES:
        raise PointCloudError(f"file larger than the {MAX_FILE_BYTES}-byte limit", path=path, field="size", value=size)


def read_points(path: str | Path, mesh_points: int = 2048, seed: int = 0) -> np.ndarray:
    """Read one file as a validated float32 cloud ``[p, 3]``.

    Args:
        path: ``.npy`` (``[p, 3]``; extra columns such as normals are rejected), ``.ply`` (points, or a mesh
            when it has faces), ``.obj`` or ``.off`` (meshes, or bare vertices when there are no faces).
        mesh_points: surface samples drawn from a mesh (a positive integer).
        seed: seed of the mesh surface sampling.

    Raises:
        PointCloudError: unreadable, truncated, empty or invalid content (the message names the file, and the
            line / record, field and value where there is one).
        FileNotFoundError: ``path`` does not exist.
        ValueError: ``mesh_points`` is not a positive integer.
    """
    from ditkit_shapes.validation import positive_int

    path = Path(path)
    positive_int(mesh_points, "mesh_points", "read_points")
    ext = path.suffix.lower()
    if ext not in EXTENSIONS:
        raise PointCloudError(
            f"unsupported extension {ext!r}; expected one of {EXTENSIONS}", path=path, field="extension", value=ext
        )
    _check_file(path)
    if ext == ".npy":
        return read_npy(path)
    vertices, faces = read_mesh(path)
    pts = sample_surface(vertices, faces, mesh_points, seed, str(path)) if len(faces) else vertices
    return validate_points(pts, str(path))


__all__ = [
    "EXTENSIONS",
    "PointCloudError",
    "read_mesh",
    "read_npy",
    "read_obj",
    "read_off",
    "read_points",
    "sample_surface",
    "validate_points",
]
