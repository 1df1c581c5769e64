"""A checked reader of ``.ply`` files (ASCII, binary little endian, binary big endian) for points and meshes.

Nothing is allocated from a header count before the count has been compared with the bytes the file really holds,
and every face index is compared with the vertex count, so a hostile, truncated or inconsistent file gives a
:class:`~ditkit_shapes.readers.PointCloudError` naming the file, the header line, body line (ASCII) or record
(binary), the field and the value; never a crash and never coordinates the file does not contain.

Supported: any elements and scalar / list properties of the standard types; the ``vertex`` element must have
``x``, ``y``, ``z``; faces are the ``vertex_indices`` (or ``vertex_index``) list of the ``face`` element, polygons
of 3 or more vertices (fan-triangulated). Other elements are read past and dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ditkit_core.errors import DataError, check_count
from ditkit_shapes.readers import PointCloudError, Polygons, parse_table, triangulate

MAX_HEADER_BYTES = 1 << 16
MAX_ELEMENTS = (1 << 31) - 1  # int32 indices
TYPES = {
    "char": "i1",
    "int8": "i1",
    "uchar": "u1",
    "uint8": "u1",
    "short": "i2",
    "int16": "i2",
    "ushort": "u2",
    "uint16": "u2",
    "int": "i4",
    "int32": "i4",
    "uint": "u4",
    "uint32": "u4",
    "float": "f4",
    "float32": "f4",
    "double": "f8",
    "float64": "f8",
}
FORMATS = {"ascii": "", "binary_little_endian": "<", "binary_big_endian": ">"}
FACE_LISTS = ("vertex_indices", "vertex_index")


def _error(path: Path, reason: str, **kw) -> DataError:
    return PointCloudError(reason, path=path, **kw)


@dataclass
class _Prop:
    name: str
    dtype: str  # numpy type code without byte order
    count_dtype: str | None = None  # list properties: the type of the length prefix


@dataclass
class _Element:
    name: str
    count: int
    line: int
    props: list[_Prop] = field(default_factory=list)

    @property
    def has_lists(self) -> bool:
        return any(p.count_dtype for p in self.props)

    def min_bytes(self) -> int:
        """Fewest bytes one binary record can take (lists empty)."""
        return sum(np.dtype(p.count_dtype or p.dtype).itemsize for p in self.props)


def _header(data: bytes, path: Path) -> tuple[str, list[_Element], int, int]:
    """``(byte order or '' for ASCII, elements, body offset, header line count)``."""
    if not data.startswith(b"ply"):
        raise _error(path, "not a PLY file (the first line must be 'ply')", field="magic", value=data[:8])
    end = data.find(b"\nend_header", 0, MAX_HEADER_BYTES) + 1  # at the start of a line
    if end <= 0:
        raise _error(path, f"no 'end_header' line in the first {MAX_HEADER_BYTES} bytes (not a PLY header)")
    nl = data.find(b"\n", end)
    tail = data[end + len(b"end_header") : nl if nl >= 0 else len(data)]
    if tail.strip():
        raise _error(path, "unexpected text after 'end_header'", field="end_header", value=tail[:40])
    offset = nl + 1 if nl >= 0 else len(data)
    try:
        text = data[:end].decode("ascii")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise _error(path, f"non-ASCII byte 0x{data[e.start]:02x} in the header", line=line) from e
    lines = text.split("\n")
    if lines[0].strip() != "ply":
        raise _error(path, "not a PLY file (the first line must be 'ply')", line=1, field="magic", value=lines[0][:20])
    n_header_lines = len(lines)
    order: str | None = None
    elements: list[_Element] = []
    for i, raw in enumerate(lines[1:], start=2):
        words = raw.strip().split()
        if not words or words[0] in ("comment", "obj_info"):
            continue
        key = words[0]
        if key == "format":
            if len(words) != 3 or words[1] not in FORMATS or words[2] != "1.0":
                raise _error(path, f"unsupported format line {raw.strip()!r}", line=i, field="format", value=words[1:])
            order = FORMATS[words[1]]
        elif key == "element":
            if len(words) != 3:
                raise _error(path, "expected 'element <name> <count>'", line=i, field="element", value=raw.strip())
            n = check_count(_int(words[2]), MAX_ELEMENTS, path=path, field=f"element {words[1]}", line=i)
            elements.append(_Element(words[1], n, i))
        elif key == "property":
            if not elements:
                raise _error(path, "property before any element", line=i, field="property", value=raw.strip())
            elements[-1].props.append(_property(words, path, i, raw))
        else:
            raise _error(path, "unknown header keyword", line=i, field="header", value=key)
    if order is None:
        raise _error(path, "the header has no 'format' line", field="format")
    _check_sizes(elements, order, len(data) - offset, path)
    return order, elements, offset, n_header_lines


def _int(word: str) -> int | str:
    try:
        return int(word)
    except ValueError:
        return word


def _property(words: list[str], path: Path, line: int, raw: str) -> _Prop:
    if len(words) == 3 and words[1] in TYPES:
        return _Prop(words[2], TYPES[words[1]])
    if len(words) == 5 and words[1] == "list" and words[2] in TYPES and words[3] in TYPES:
        count, item = TYPES[words[2]], TYPES[words[3]]
        if count[0] not in "iu":
            raise _error(path, "list length type must be an integer type", line=line, field="property", value=words[2])
        return _Prop(words[4], item, count)
    raise _error(
        path,
        "expected 'property <type> <name>' or 'property list <type> <type> <name>'",
        line=line,
        field="property",
        value=raw.strip(),
    )


def _check_sizes(elements: list[_Element], order: str, body: int, path: Path) -> None:
    """Reject header counts the body cannot hold, before anything is allocated."""
    for el in elements:
        if not el.props and el.count:
            raise _error(path, "element without properties", line=el.line, field=f"element {el.name}", value=el.count)
        # a binary record takes at least min_bytes; an ASCII one at least one character and one separator per value
        per = max(1, el.min_bytes() if order else 2 * len(el.props))
        if el.count > body // per:
            raise _error(
                path,
                f"truncated or hostile header: claims {el.count} {el.name} records, the {body}-byte body holds at "
                f"most {body // per}",
                line=el.line,
                field=f"element {el.name}",
                value=el.count,
            )
    vertex = next((el for el in elements if el.name == "vertex"), None)
    if vertex is None:
        raise _error(path, "no 'vertex' element in the header", field="element")
    if vertex.has_lists:
        raise _error(path, "list properties in the vertex element are not supported", line=vertex.line, field="vertex")
    names = [p.name for p in vertex.props]
    for axis in "xyz":
        if axis not in names:
            raise _error(path, f"the vertex element has no '{axis}' property", line=vertex.line, field="vertex")
    face = next((el for el in elements if el.name == "face"), None)
    if face is not None:
        lists = [p for p in face.props if p.name in FACE_LISTS]
        if lists and lists[0].dtype[0] not in "iu":
            raise _error(path, "face indices must have an integer type", line=face.line, field=lists[0].name)


def read_ply(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a ``.ply`` file's vertices and triangulated faces.

    Returns:
        ``(vertices [v, 3] float64, faces [f, 3] int64)``; ``faces`` is empty for a point cloud.

    Raises:
        PointCloudError: malformed header, counts the file cannot hold, truncated or trailing body, bad numbers,
            faces indexing missing vertices (file, line / record, field and value named).
    """
    path = Path(path)
    data = path.read_bytes()
    order, elements, offset, n_header = _header(data, path)
    if order:
        vertices, polys = _binary(data, offset, elements, order, path)
    else:
        vertices, polys = _ascii(data, offset, elements, n_header, path)
    return vertices, triangulate(polys, len(vertices), path, "face.vertex_indices")


def _xyz(columns: dict[str, np.ndarray]) -> np.ndarray:
    return np.stack([columns[a].astype(np.float64) for a in "xyz"], axis=1)


def _binary(
    data: bytes, pos: int, elements: list[_Element], order: str, path: Path
) -> tuple[np.ndarray, Polygons | None]:
    vertices, polys = None, None
    for el in elements:
        if not el.has_lists:
            dt = np.dtype([(f"p{i}", order + p.dtype) for i, p in enumerate(el.props)])
            need = el.count * dt.itemsize
            if pos + need > len(data):
                raise _truncated(path, el, need, len(data) - pos, pos)
            arr = np.frombuffer(data, dt, el.count, pos)
            pos += need
            if el.name == "vertex":
                vertices = _xyz({p.name: arr[f"p{i}"] for i, p in enumerate(el.props)})
            continue
        got, pos = _binary_lists(data, pos, el, order, path)
        if el.name == "face" and got is not None:
            polys = got
    if pos != len(data):
        raise _error(path, f"{len(data) - pos} bytes of trailing data after the last element (header counts disagree)")
    return vertices, polys


def _truncated(path: Path, el: _Element, need: int, have: int, pos: int) -> DataError:
    return _error(
        path,
        f"truncated: {el.count} {el.name} records need {need} bytes at offset {pos}, the file has {have}",
        field=f"element {el.name}",
        value=el.count,
    )


def _binary_lists(data: bytes, pos: int, el: _Element, order: str, path: Path) -> tuple[Polygons | None, int]:
    """Read an element with list properties; returns its face lists (if it has them) and the new offset."""
    key = next((i for i, p in enumerate(el.props) if p.name in FACE_LISTS), None)
    if len(el.props) == 1 and el.count and pos + np.dtype(el.props[0].count_dtype).itemsize <= len(data):
        # fast path: one list property whose lists all have the length of the first one
        p = el.props[0]
        k = int(np.frombuffer(data, order + p.count_dtype, 1, pos)[0])
        if 0 <= k <= (len(data) - pos) // np.dtype(p.dtype).itemsize:
            dt = np.dtype([("n", order + p.count_dtype), ("i", order + p.dtype, (k,))])
            if pos + el.count * dt.itemsize <= len(data):
                arr = np.frombuffer(data, dt, el.count, pos)
                if (arr["n"] == k).all():
                    idx = arr["i"].astype(np.int64).reshape(-1)
                    counts = np.full(el.count, k, dtype=np.int64)
                    polys = Polygons(idx, counts, np.arange(1, el.count + 1), True) if key is not None else None
                    return polys, pos + el.count * dt.itemsize
    flat: list[np.ndarray] = []
    counts = np.zeros(el.count, dtype=np.int64)
    for r in range(el.count):
        for j, p in enumerate(el.props):
            size = np.dtype(p.count_dtype or p.dtype).itemsize
            if pos + size > len(data):
                raise _error(path, "truncated inside the record", line=r + 1, record=True, field=f"{el.name}.{p.name}")
            if p.count_dtype is None:
                pos += size
                continue
            n = int(np.frombuffer(data, order + p.count_dtype, 1, pos)[0])
            pos += size
            isize = np.dtype(p.dtype).itemsize
            if n < 0 or pos + n * isize > len(data):
                raise _error(
                    path,
                    f"truncated: a list of {n} values needs {n * isize} bytes, {len(data) - pos} are left",
                    line=r + 1,
                    record=True,
                    field=f"{el.name}.{p.name}",
                    value=n,
                )
            if j == key:
                flat.append(np.frombuffer(data, order + p.dtype, n, pos).astype(np.int64))
                counts[r] = n
            pos += n * isize
    if key is None:
        return None, pos
    idx = np.concatenate(flat) if flat else np.zeros(0, dtype=np.int64)
    return Polygons(idx, counts, np.arange(1, el.count + 1), True), pos


def _ascii(
    data: bytes, offset: int, elements: list[_Element], n_header: int, path: Path
) -> tuple[np.ndarray, Polygons | None]:
    body = data[offset:]
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError as e:
        line = n_header + body[: e.start].count(b"\n") + 1
        raise _error(path, f"non-ASCII byte 0x{body[e.start]:02x} in an ASCII PLY body", line=line) from e
    rows = [(n_header + i + 1, s) for i, s in enumerate(text.split("\n")) if s.strip()]
    vertices, polys, at = None, None, 0
    for el in elements:
        chunk = rows[at : at + el.count]
        if len(chunk) < el.count:
            raise _error(
                path,
                f"truncated: header claims {el.count} {el.name} lines, the file has {len(chunk)}",
                line=el.line,
                field=f"element {el.name}",
                value=el.count,
            )
        at += el.count
        if not el.has_lists:
            table = parse_table(chunk, len(el.props), path, el.name, exact=True)
            if el.name == "vertex":
                vertices = _xyz({p.name: table[:, i] for i, p in enumerate(el.props)})
        else:
            got = _ascii_lists(chunk, el, path)
            if el.name == "face" and got is not None:
                polys = got
    if at < len(rows):
        line, s = rows[at]
        raise _error(
            path,
            "unexpected data after the last element (header counts disagree)",
            line=line,
            field="body",
            value=s.strip()[:40],
        )
    return vertices, polys


def _ascii_lists(chunk: list[tuple[int, str]], el: _Element, path: Path) -> Polygons | None:
    key = next((i for i, p in enumerate(el.props) if p.name in FACE_LISTS), None)
    flat: list[int] = []
    counts = np.zeros(len(chunk), dtype=np.int64)
    for r, (line, s) in enumerate(chunk):
        words, k = s.split(), 0
        for j, p in enumerate(el.props):
            n = 1
            if p.count_dtype is not None:
                n = _ascii_int(words, k, path, line, f"{el.name}.{p.name}")
                if n < 0 or k + 1 + n > len(words):
                    raise _error(
                        path,
                        f"list length beyond the {len(words) - k - 1} values on the line",
                        line=line,
                        field=f"{el.name}.{p.name}",
                        value=n,
                    )
                k += 1
                if j == key:
                    flat.extend(_ascii_int(words, k + m, path, line, f"{el.name}.{p.name}") for m in range(n))
                    counts[r] = n
            elif k >= len(words):
                raise _error(path, "missing value", line=line, field=f"{el.name}.{p.name}")
            k += n
        if k != len(words):
            raise _error(path, f"expected {k} values, got {len(words)}", line=line, field=el.name, value=s.strip()[:60])
    if key is None:
        return None
    return Polygons(np.array(flat, dtype=np.int64), counts, np.array([ln for ln, _ in chunk]), False)


def _ascii_int(words: list[str], k: int, path: Path, line: int, name: str) -> int:
    try:
        return int(words[k])
    except ValueError:
        raise _error(path, "expected an integer", line=line, field=name, value=words[k]) from None
